"""ECR guardrails: immutable tags, scan on push, no repository policy open to `*`.

Immutable tags are what make "the image built from commit C" a fixed thing:
`training:<C>` can never be re-pushed to point at other bytes.
"""

from __future__ import annotations

from collections.abc import Mapping

from pulumi_policy import (
    EnforcementLevel,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)

from ._props import (
    UNKNOWN,
    DocumentError,
    get_path,
    is_everyone,
    json_document,
    props_of,
    statements,
)

REPOSITORY = "aws:ecr/repository:Repository"
REPOSITORY_POLICY = "aws:ecr/repositoryPolicy:RepositoryPolicy"
REGISTRY_POLICY = "aws:ecr/registryPolicy:RegistryPolicy"

HARDENING = "ecr-repository-hardening"
NO_WILDCARD_PRINCIPAL = "ecr-policy-no-wildcard-principal"


def repository_violations(resource_type: str, props: Mapping[str, object]) -> list[str]:
    if resource_type != REPOSITORY:
        return []
    messages = []
    mutability = props.get("imageTagMutability")
    # The provider default is MUTABLE, so a missing value is a violation too.
    if mutability != "IMMUTABLE" and mutability is not UNKNOWN:
        messages.append(
            f"imageTagMutability is {mutability!r}; set IMMUTABLE so a commit tag always "
            "names the same image"
        )
    scan = get_path(props, "imageScanningConfiguration", "scanOnPush")
    if scan is not True and scan is not UNKNOWN:
        messages.append("imageScanningConfiguration.scanOnPush must be true")
    return messages


def wildcard_principal_violations(resource_type: str, props: Mapping[str, object]) -> list[str]:
    if resource_type not in (REPOSITORY_POLICY, REGISTRY_POLICY):
        return []
    try:
        document = json_document(props.get("policy"))
    except DocumentError as error:
        return [f"policy is not a readable IAM document: {error}"]
    if document is UNKNOWN:
        return []
    try:
        return [
            f"{statement.label} allows principal '*' (any AWS account); name the "
            "environment accounts instead"
            for statement in statements(document)
            if statement.effect == "Allow" and is_everyone(statement.principal)
        ]
    except DocumentError as error:
        return [f"policy is not a readable IAM document: {error}"]


def ecr_repository_hardening_validator(
    args: ResourceValidationArgs, report_violation: ReportViolation
) -> None:
    for message in repository_violations(args.resource_type, props_of(args.props)):
        report_violation(message, None)


def ecr_policy_no_wildcard_principal_validator(
    args: ResourceValidationArgs, report_violation: ReportViolation
) -> None:
    for message in wildcard_principal_violations(args.resource_type, props_of(args.props)):
        report_violation(message, None)


HARDENING_POLICY = ResourceValidationPolicy(
    name=HARDENING,
    description="ECR repositories have immutable tags and scan images on push.",
    validate=ecr_repository_hardening_validator,
    enforcement_level=EnforcementLevel.MANDATORY,
)

NO_WILDCARD_PRINCIPAL_POLICY = ResourceValidationPolicy(
    name=NO_WILDCARD_PRINCIPAL,
    description="ECR repository and registry policies never allow the principal '*'.",
    validate=ecr_policy_no_wildcard_principal_validator,
    enforcement_level=EnforcementLevel.MANDATORY,
)
