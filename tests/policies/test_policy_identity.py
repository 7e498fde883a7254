"""github-oidc-trust, iam-no-broad-managed-policies, iam-no-wildcard-statements, ECR rules."""

from __future__ import annotations

import json

import pytest
from policy_helpers import GITHUB, OPS, REPOSITORY, policy_document, trust_policy
from rules._props import props_of
from rules.ecr import (
    REPOSITORY as ECR_REPOSITORY,
)
from rules.ecr import (
    REPOSITORY_POLICY,
    repository_violations,
    wildcard_principal_violations,
)
from rules.iam import managed_policy_violations, wildcard_statement_violations
from rules.oidc import ROLE, trust_violations

from offline.plan.capture import UNKNOWN

CONFIG = {"repository": REPOSITORY, "previewRoleNames": ["promote-code-github-preview"]}
DEPLOY = "promote-code-github-deploy"
PREVIEW = "promote-code-github-preview"


def _trust(role_name: str, document: str) -> list[str]:
    props = props_of({"name": role_name, "assumeRolePolicy": document})
    return trust_violations(ROLE, props, "pulumi-name", CONFIG)


@pytest.mark.parametrize(
    ("role", "document"),
    [
        (DEPLOY, trust_policy(f"repo:{REPOSITORY}:ref:refs/heads/main")),
        (DEPLOY, trust_policy(f"repo:{REPOSITORY}:environment:staging")),
        (DEPLOY, trust_policy([f"repo:{REPOSITORY}:environment:prod"])),
        (PREVIEW, trust_policy(f"repo:{REPOSITORY}:pull_request")),
        (DEPLOY, trust_policy(f"repo:{REPOSITORY}:ref:refs/heads/main", aud=["sts.amazonaws.com"])),
        (
            "promote-code-sagemaker-execution",
            policy_document(
                {
                    "Effect": "Allow",
                    "Action": "sts:AssumeRole",
                    "Principal": {"Service": "sagemaker.amazonaws.com"},
                }
            ),
        ),
    ],
)
def test_exact_github_trust_passes(role: str, document: str) -> None:
    assert _trust(role, document) == []


@pytest.mark.parametrize(
    ("role", "document", "expected"),
    [
        (DEPLOY, trust_policy("*"), "wildcard"),
        (DEPLOY, trust_policy("repo:my-org/*"), "wildcard"),
        (DEPLOY, trust_policy(f"repo:{REPOSITORY}:*"), "wildcard"),
        (DEPLOY, trust_policy(f"repo:{REPOSITORY}:ref:refs/heads/ma?n"), "wildcard"),
        (PREVIEW, trust_policy(f"repo:{REPOSITORY}:*"), "wildcard"),
        (
            DEPLOY,
            trust_policy(f"repo:{REPOSITORY}:ref:refs/heads/main", sub_operator="StringLike"),
            "with StringLike",
        ),
        (
            DEPLOY,
            trust_policy(
                f"repo:{REPOSITORY}:ref:refs/heads/main", sub_operator="ForAllValues:StringEquals"
            ),
            "ForAllValues",
        ),
        (
            DEPLOY,
            trust_policy(
                f"repo:{REPOSITORY}:ref:refs/heads/main", sub_operator="ForAnyValue:StringLike"
            ),
            "ForAnyValue",
        ),
        (DEPLOY, trust_policy(f"repo:{REPOSITORY}:pull_request"), "pull requests"),
        (
            DEPLOY,
            trust_policy(
                [f"repo:{REPOSITORY}:ref:refs/heads/main", f"repo:{REPOSITORY}:pull_request"]
            ),
            "pull requests",
        ),
        ("unnamed-role", trust_policy(f"repo:{REPOSITORY}:pull_request"), "pull requests"),
        (DEPLOY, trust_policy("repo:evil-org/promote-code:ref:refs/heads/main"), "repository"),
        (DEPLOY, trust_policy(f"repo:{REPOSITORY}:ref:refs/tags/v1"), "not a branch"),
        (DEPLOY, trust_policy(f"repo:{REPOSITORY}:ref:refs/heads/main", aud="sts.evil.com"), "aud"),
        (
            DEPLOY,
            trust_policy(f"repo:{REPOSITORY}:ref:refs/heads/main", aud=["sts.amazonaws.com", "x"]),
            "aud",
        ),
        (
            DEPLOY,
            trust_policy(
                f"repo:{REPOSITORY}:ref:refs/heads/main",
                operator="StringLike",
                sub_operator="StringEquals",
            ),
            "with StringLike",
        ),
        (DEPLOY, trust_policy(f"repo:{REPOSITORY}:main", principal="*"), "trusts principal '*'"),
        (
            DEPLOY,
            json.dumps(
                {
                    "Statement": {
                        "Effect": "Allow",
                        "Action": "sts:AssumeRoleWithWebIdentity",
                        "Principal": {"Federated": f"arn:aws:iam::{OPS}:oidc-provider/{GITHUB}"},
                        "Condition": {"StringEquals": {f"{GITHUB}:aud": "sts.amazonaws.com"}},
                    }
                }
            ),
            "does not pin",
        ),
        (DEPLOY, "{", "not a readable IAM document"),
    ],
)
def test_loose_github_trust_fails(role: str, document: str, expected: str) -> None:
    violations = _trust(role, document)
    assert violations, document
    assert any(expected in v for v in violations), violations


def test_unknown_trust_policy_is_left_to_the_update() -> None:
    assert _trust(DEPLOY, UNKNOWN) == []


ADMIN = "arn:aws:iam::aws:policy/AdministratorAccess"


@pytest.mark.parametrize(
    ("resource_type", "props", "violations"),
    [
        ("aws:iam/rolePolicyAttachment:RolePolicyAttachment", {"policyArn": ADMIN}, 1),
        (
            "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
            {"policyArn": "arn:aws:iam::aws:policy/AmazonSageMakerFullAccess"},
            1,
        ),
        (
            "aws:iam/userPolicyAttachment:UserPolicyAttachment",
            {"policyArn": "arn:aws-us-gov:iam::aws:policy/AmazonS3FullAccess"},
            1,
        ),
        ("aws:iam/role:Role", {"managedPolicyArns": [ADMIN]}, 1),
        (
            "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
            {"policyArn": "arn:aws:iam::aws:policy/AmazonSageMakerReadOnly"},
            0,
        ),
        (
            "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
            {"policyArn": f"arn:aws:iam::{OPS}:policy/promote-code-deploy"},
            0,
        ),
        ("aws:iam/rolePolicyAttachment:RolePolicyAttachment", {"policyArn": UNKNOWN}, 0),
    ],
)
def test_broad_managed_policies(
    resource_type: str, props: dict[str, object], violations: int
) -> None:
    assert len(managed_policy_violations(resource_type, props_of(props))) == violations


def _allow(action: object, resource: object = "*", **extra: object) -> dict[str, object]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


BUCKET_ARN = "arn:aws:s3:::promote-code-prod-data"


@pytest.mark.parametrize(
    ("statement", "violations"),
    [
        (_allow("*"), 1),
        (_allow("s3:*"), 1),
        (_allow(["s3:GetObject", "S3:*"]), 1),
        (_allow("*:*", ["*"]), 1),
        (_allow("s3:*", [BUCKET_ARN, f"{BUCKET_ARN}/*"]), 0),
        (_allow("s3:GetObject", "*"), 0),
        (_allow("sagemaker:DescribeEndpoint", "*"), 0),
        ({"Effect": "Deny", "Action": "*", "Resource": "*"}, 0),
        ({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}, 1),
        ({"Effect": "Allow", "Action": "s3:*", "NotResource": BUCKET_ARN}, 1),
        ({"Action": "*", "Resource": "*"}, 1),
    ],
)
def test_wildcard_statements(statement: dict[str, object], violations: int) -> None:
    props = props_of({"policy": policy_document(statement)})
    assert len(wildcard_statement_violations("aws:iam/rolePolicy:RolePolicy", props)) == violations


def test_wildcard_statements_in_inline_role_policies_and_single_statement_documents() -> None:
    document = json.dumps({"Statement": _allow("*")})
    props = props_of({"inlinePolicies": [{"name": "x", "policy": document}]})
    assert len(wildcard_statement_violations("aws:iam/role:Role", props)) == 1
    assert wildcard_statement_violations("aws:iam/policy:Policy", {"policy": UNKNOWN}) == []
    broken = wildcard_statement_violations("aws:iam/policy:Policy", {"policy": "[1]"})
    assert "not a readable IAM document" in broken[0]


@pytest.mark.parametrize(
    ("props", "expected"),
    [
        (
            {"imageTagMutability": "IMMUTABLE", "imageScanningConfiguration": {"scanOnPush": True}},
            [],
        ),
        (
            {"imageTagMutability": "MUTABLE", "imageScanningConfiguration": {"scanOnPush": True}},
            ["IMMUTABLE"],
        ),
        ({"imageScanningConfiguration": {"scanOnPush": True}}, ["IMMUTABLE"]),
        (
            {
                "imageTagMutability": "IMMUTABLE_WITH_EXCLUSION",
                "imageScanningConfiguration": {"scanOnPush": True},
            },
            ["IMMUTABLE"],
        ),
        (
            {
                "imageTagMutability": "IMMUTABLE",
                "imageScanningConfiguration": {"scanOnPush": False},
            },
            ["scanOnPush"],
        ),
        ({"imageTagMutability": "IMMUTABLE"}, ["scanOnPush"]),
    ],
)
def test_ecr_repository_hardening(props: dict[str, object], expected: list[str]) -> None:
    violations = repository_violations(ECR_REPOSITORY, props_of(props))
    assert len(violations) == len(expected)
    for message, word in zip(violations, expected, strict=True):
        assert word in message


@pytest.mark.parametrize(
    ("principal", "violations"),
    [
        ({"AWS": ["arn:aws:iam::222222222222:root", "arn:aws:iam::333333333333:root"]}, 0),
        ("*", 1),
        ({"AWS": "*"}, 1),
        ({"AWS": ["arn:aws:iam::222222222222:root", "*"]}, 1),
    ],
)
def test_ecr_policy_principals(principal: object, violations: int) -> None:
    document = policy_document(
        {"Effect": "Allow", "Principal": principal, "Action": ["ecr:BatchGetImage"]}
    )
    found = wildcard_principal_violations(REPOSITORY_POLICY, props_of({"policy": document}))
    assert len(found) == violations
