"""IAM least privilege: no broad AWS managed policies, no `*`/`s3:*` on every resource."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping

from pulumi_policy import (
    EnforcementLevel,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)

from ._props import UNKNOWN, DocumentError, as_list, get_path, json_document, props_of, statements

BROAD_MANAGED = "iam-no-broad-managed-policies"
WILDCARD_STATEMENTS = "iam-no-wildcard-statements"

FORBIDDEN_MANAGED_POLICIES = (
    "AdministratorAccess",
    "AmazonSageMakerFullAccess",
    "AmazonS3FullAccess",
)
_MANAGED_ARN = re.compile(r"arn:aws[a-z-]*:iam::aws:policy/(?:[\w+=,.@-]+/)*(?P<name>[\w+=,.@-]+)")

# Resource types whose input names one managed policy ARN, or a list of them.
POLICY_ARN_INPUTS: Mapping[str, tuple[str, bool]] = {
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": ("policyArn", False),
    "aws:iam/userPolicyAttachment:UserPolicyAttachment": ("policyArn", False),
    "aws:iam/groupPolicyAttachment:GroupPolicyAttachment": ("policyArn", False),
    "aws:iam/policyAttachment:PolicyAttachment": ("policyArn", False),
    "aws:iam/role:Role": ("managedPolicyArns", True),
    "aws:iam/rolePolicyAttachmentsExclusive:RolePolicyAttachmentsExclusive": ("policyArns", True),
}

# Resource types carrying identity-policy documents (JSON strings).
POLICY_DOCUMENT_INPUTS: Mapping[str, str] = {
    "aws:iam/policy:Policy": "policy",
    "aws:iam/rolePolicy:RolePolicy": "policy",
    "aws:iam/userPolicy:UserPolicy": "policy",
    "aws:iam/groupPolicy:GroupPolicy": "policy",
}


def managed_policy_violations(resource_type: str, props: Mapping[str, object]) -> list[str]:
    spec = POLICY_ARN_INPUTS.get(resource_type)
    if spec is None:
        return []
    key, is_list = spec
    values = as_list(props.get(key)) if is_list else [props.get(key)]
    messages = []
    for value in values:
        match = _MANAGED_ARN.fullmatch(value) if isinstance(value, str) else None
        if match and match.group("name") in FORBIDDEN_MANAGED_POLICIES:
            messages.append(
                f"{key} attaches {match.group('name')}; grant the specific actions on the "
                "specific resources instead"
            )
    return messages


def _documents(resource_type: str, props: Mapping[str, object]) -> Iterator[tuple[str, object]]:
    key = POLICY_DOCUMENT_INPUTS.get(resource_type)
    if key is not None:
        yield key, props.get(key)
    if resource_type == "aws:iam/role:Role":
        for index, inline in enumerate(as_list(props.get("inlinePolicies"))):
            yield f"inlinePolicies[{index}].policy", get_path(inline, "policy")


def _is_broad_action(action: object) -> bool:
    return isinstance(action, str) and action.lower() in ("*", "*:*", "s3:*")


def wildcard_statement_violations(resource_type: str, props: Mapping[str, object]) -> list[str]:
    messages = []
    for where, raw in _documents(resource_type, props):
        if raw is None:
            continue
        try:
            document = json_document(raw)
            if document is UNKNOWN:
                continue
            parsed = list(statements(document))
        except DocumentError as error:
            messages.append(f"{where} is not a readable IAM document: {error}")
            continue
        for statement in parsed:
            if statement.effect != "Allow":
                continue
            every_resource = "*" in statement.resources or bool(statement.not_resources)
            if not every_resource:
                continue
            broad = [a for a in statement.actions if _is_broad_action(a)]
            if broad:
                messages.append(
                    f"{where} {statement.label} allows {', '.join(map(str, broad))} on every "
                    "resource; list the actions and resources the role needs"
                )
            if statement.not_actions:
                messages.append(
                    f"{where} {statement.label} allows everything except "
                    f"{list(statement.not_actions)} (NotAction) on every resource"
                )
    return messages


def iam_no_broad_managed_policies_validator(
    args: ResourceValidationArgs, report_violation: ReportViolation
) -> None:
    for message in managed_policy_violations(args.resource_type, props_of(args.props)):
        report_violation(message, None)


def iam_no_wildcard_statements_validator(
    args: ResourceValidationArgs, report_violation: ReportViolation
) -> None:
    for message in wildcard_statement_violations(args.resource_type, props_of(args.props)):
        report_violation(message, None)


BROAD_MANAGED_POLICY = ResourceValidationPolicy(
    name=BROAD_MANAGED,
    description=(
        "No AdministratorAccess, AmazonSageMakerFullAccess or AmazonS3FullAccess attachments."
    ),
    validate=iam_no_broad_managed_policies_validator,
    enforcement_level=EnforcementLevel.MANDATORY,
)

WILDCARD_STATEMENTS_POLICY = ResourceValidationPolicy(
    name=WILDCARD_STATEMENTS,
    description="No IAM statement allows '*' or 's3:*' (or NotAction) on resource '*'.",
    validate=iam_no_wildcard_statements_validator,
    enforcement_level=EnforcementLevel.MANDATORY,
)
