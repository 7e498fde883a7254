"""github-oidc-trust: roles assumable from GitHub Actions trust one exact workflow identity.

With OIDC a role's trust policy is the whole access control: a wildcard `sub`
lets any branch, fork or pull request of (or beyond) the repository deploy.
`ForAllValues:`/`ForAnyValue:` operators are rejected because `ForAllValues`
with a missing claim evaluates to true.
"""

from __future__ import annotations

from collections.abc import Mapping

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)

from ._props import (
    UNKNOWN,
    DocumentError,
    PolicyStatement,
    as_list,
    config_str,
    config_strings,
    is_everyone,
    json_document,
    principal_values,
    props_of,
    statements,
)

NAME = "github-oidc-trust"
ROLE = "aws:iam/role:Role"
GITHUB_HOST = "token.actions.githubusercontent.com"
AUD_KEY = f"{GITHUB_HOST}:aud"
SUB_KEY = f"{GITHUB_HOST}:sub"
AUDIENCE = "sts.amazonaws.com"
DEFAULT_PREVIEW_ROLES = ("promote-code-github-preview",)


def _is_github_federated(statement: PolicyStatement) -> bool:
    """Trusts GitHub's OIDC provider, or tests GitHub claims (a provider ARN may be unknown)."""
    principals = principal_values(statement.principal)
    return any(isinstance(value, str) and GITHUB_HOST in value for value in principals) or any(
        GITHUB_HOST in key
        for block in statement.conditions.values()
        if isinstance(block, Mapping)
        for key in block
    )


def _condition_values(statement: PolicyStatement, operator: str, key: str) -> list[object] | None:
    block = statement.conditions.get(operator)
    if not isinstance(block, Mapping) or key not in block:
        return None
    return as_list(block[key])


def _subject_problem(subject: object, *, deploy: bool, repository: str | None) -> str | None:
    if not isinstance(subject, str):
        return f"sub {subject!r} is not a literal string"
    parts = subject.split(":", 2)
    context = parts[2] if len(parts) == 3 else ""
    checks = (
        ("*" in subject or "?" in subject, "contains a wildcard; trust one exact subject"),
        (
            repository is not None and not subject.startswith(f"repo:{repository}:"),
            f"is not a subject of the repository {repository}",
        ),
        (
            parts[0] != "repo" or not context,
            "is not of the form repo:<owner>/<name>:<context>",
        ),
        (
            deploy and context == "pull_request",
            "lets pull requests assume a deploy role; pull requests get the read-only preview role",
        ),
        (
            deploy and not context.startswith(("ref:refs/heads/", "environment:")),
            "is not a branch (ref:refs/heads/<branch>) or GitHub environment "
            "(environment:<name>) subject",
        ),
    )
    return next((f"sub {subject!r} {message}" for failed, message in checks if failed), None)


def _statement_violations(
    statement: PolicyStatement, where: str, *, deploy: bool, repository: str | None
) -> list[str]:
    messages = [
        f"{where} uses {operator}; set operators on single-valued claims match when the "
        "claim is missing. Use StringEquals"
        for operator in statement.conditions
        if operator.startswith(("ForAllValues:", "ForAnyValue:"))
    ]
    messages.extend(
        f"{where} tests {key} with {operator}; use StringEquals"
        for operator, block in statement.conditions.items()
        if operator != "StringEquals" and isinstance(block, Mapping)
        for key in (AUD_KEY, SUB_KEY)
        if key in block
    )
    audiences = _condition_values(statement, "StringEquals", AUD_KEY)
    if audiences != [AUDIENCE]:
        messages.append(
            f"{where} must require StringEquals {AUD_KEY} = {AUDIENCE!r}, got {audiences!r}"
        )
    subjects = _condition_values(statement, "StringEquals", SUB_KEY)
    if not subjects:
        messages.append(f"{where} does not pin {SUB_KEY} with StringEquals")
    for subject in subjects or []:
        problem = _subject_problem(subject, deploy=deploy, repository=repository)
        if problem is not None:
            messages.append(f"{where}: {problem}")
    return messages


def trust_violations(
    resource_type: str, props: Mapping[str, object], name: str, config: Mapping[str, object]
) -> list[str]:
    if resource_type != ROLE:
        return []
    try:
        document = json_document(props.get("assumeRolePolicy"))
        parsed = [] if document is UNKNOWN else list(statements(document))
    except DocumentError as error:
        return [f"assumeRolePolicy is not a readable IAM document: {error}"]
    role_name = props.get("name") if isinstance(props.get("name"), str) else name
    preview_roles = config_strings(config, "previewRoleNames") or DEFAULT_PREVIEW_ROLES
    deploy = role_name not in preview_roles
    repository = config_str(config, "repository")
    messages: list[str] = []
    for statement in parsed:
        if statement.effect != "Allow":
            continue
        if is_everyone(statement.principal):
            messages.append(f"{statement.label} trusts principal '*'")
        elif _is_github_federated(statement):
            where = f"{'deploy' if deploy else 'preview'} role {role_name!r} {statement.label}"
            messages.extend(
                _statement_violations(statement, where, deploy=deploy, repository=repository)
            )
    return messages


def github_oidc_trust_validator(
    args: ResourceValidationArgs, report_violation: ReportViolation
) -> None:
    props = props_of(args.props)
    for message in trust_violations(args.resource_type, props, args.name, args.get_config()):
        report_violation(message, None)


POLICY = ResourceValidationPolicy(
    name=NAME,
    description=(
        "IAM roles trusted by GitHub Actions OIDC pin aud = sts.amazonaws.com and one exact sub "
        "with StringEquals; deploy roles never trust pull requests."
    ),
    validate=github_oidc_trust_validator,
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=PolicyConfigSchema(
        properties={
            "repository": {
                "type": "string",
                "pattern": "^[A-Za-z0-9][A-Za-z0-9-]*/[A-Za-z0-9._-]+$",
                "description": "The GitHub owner/name every trusted sub must belong to.",
            },
            "previewRoleNames": {
                "type": "array",
                "items": {"type": "string"},
                "default": list(DEFAULT_PREVIEW_ROLES),
                "description": "Role names that are pull-request preview roles; every other "
                "GitHub-trusted role is held to the deploy-role rules.",
            },
        },
    ),
)
