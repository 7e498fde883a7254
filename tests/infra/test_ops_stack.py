"""The ops stack: registry shared with exactly the environment accounts, images, OIDC roles."""

from __future__ import annotations

import json

import pytest

from infra.stack_files import read_stack_config
from offline.plan.capture import StackPlan
from offline.plan.harness import plan_stack
from tests.plan_helpers import TEST_TAG, as_list, policy_document, statements

OPS, DEV, STAGING, PROD = "111111111111", "222222222222", "333333333333", "444444444444"
ACCOUNTS = {"ops": OPS, "dev": DEV, "staging": STAGING, "prod": PROD}
REPO = "my-org/promote-code"


@pytest.fixture(scope="module")
def ops(stack_plans: dict[str, StackPlan]) -> StackPlan:
    return stack_plans["ops"]


def test_repositories_are_immutable_scanned_and_kms_encrypted(ops: StackPlan) -> None:
    repos = ops.of_type("aws:ecr/repository:Repository")
    assert sorted(r.inputs["name"] for r in repos) == [
        "promote-code/deployer",
        "promote-code/training",
    ]
    for repo in repos:
        assert repo.inputs["imageTagMutability"] == "IMMUTABLE"
        assert repo.inputs["imageScanningConfiguration"] == {"scanOnPush": True}
        assert repo.inputs["encryptionConfigurations"][0]["encryptionType"] == "KMS"
    key = ops.of_type("aws:kms/key:Key")[0]
    assert key.inputs["enableKeyRotation"] is True


def test_untagged_images_expire(ops: StackPlan) -> None:
    for policy in ops.of_type("aws:ecr/lifecyclePolicy:LifecyclePolicy"):
        rule = json.loads(policy.inputs["policy"])["rules"][0]
        assert rule["selection"]["tagStatus"] == "untagged"
        assert rule["selection"]["countNumber"] == 7
        assert rule["action"]["type"] == "expire"


def test_repository_policy_grants_pull_to_exactly_the_environment_accounts(
    ops: StackPlan,
) -> None:
    policies = ops.of_type("aws:ecr/repositoryPolicy:RepositoryPolicy")
    assert len(policies) == 2
    for policy in policies:
        accounts, lambda_, sagemaker = statements(policy_document(policy))
        assert sorted(accounts["Principal"]["AWS"]) == [
            f"arn:aws:iam::{a}:root" for a in (DEV, STAGING, PROD)
        ]
        assert sorted(accounts["Action"]) == [
            "ecr:BatchGetImage",
            "ecr:DescribeImages",
            "ecr:GetDownloadUrlForLayer",
        ]
        assert lambda_["Principal"] == {"Service": ["lambda.amazonaws.com"]}
        assert lambda_["Condition"]["StringLike"]["aws:SourceArn"] == [
            f"arn:aws:lambda:eu-west-1:{a}:function:*" for a in (DEV, STAGING, PROD)
        ]
        assert sagemaker["Principal"] == {"Service": ["sagemaker.amazonaws.com"]}
        assert sagemaker["Condition"]["StringEquals"]["aws:SourceAccount"] == [DEV, STAGING, PROD]
        for statement in (lambda_, sagemaker):
            assert sorted(statement["Action"]) == [
                "ecr:BatchGetImage",
                "ecr:GetDownloadUrlForLayer",
            ]
        for statement in statements(policy_document(policy)):
            for principals in statement["Principal"].values():
                assert "*" not in as_list(principals)


def test_images_are_built_from_the_repo_and_tagged_with_the_commit(ops: StackPlan) -> None:
    images = {r.name: r for r in ops.of_type("docker:index/image:Image")}
    assert set(images) == {"promote-code-ops-training-image", "promote-code-ops-deployer-image"}
    for short in ("training", "deployer"):
        image = images[f"promote-code-ops-{short}-image"]
        assert image.inputs["imageName"] == (
            f"{OPS}.dkr.ecr.eu-west-1.amazonaws.com/promote-code/{short}:{TEST_TAG}"
        )
        assert image.inputs["build"]["dockerfile"].endswith(f"ml/images/{short}/Dockerfile")
        assert image.inputs["build"]["platform"] == "linux/amd64"
        assert image.inputs["registry"]["password"] == "[secret]"
    assert set(ops.outputs["image_digests"]) == {"training", "deployer"}


def _account_of(ops: StackPlan, provider_ref: str | None) -> str:
    assert provider_ref is not None
    urn = provider_ref.rsplit("::", 1)[0]
    provider = next(r for r in ops.resources if r.urn == urn)
    return str(json.loads(provider.inputs["allowedAccountIds"])[0])


@pytest.mark.parametrize(
    ("stack", "subject"),
    [
        ("ops", f"repo:{REPO}:ref:refs/heads/main"),
        ("dev", f"repo:{REPO}:ref:refs/heads/main"),
        ("staging", f"repo:{REPO}:environment:staging"),
        ("prod", f"repo:{REPO}:environment:prod"),
    ],
)
def test_each_account_trusts_github_for_exactly_its_subject(
    ops: StackPlan, stack: str, subject: str
) -> None:
    provider = ops.one(
        "aws:iam/openIdConnectProvider:OpenIdConnectProvider",
        f"promote-code-ops-{stack}-identity-provider",
    )
    assert provider.inputs["url"] == "https://token.actions.githubusercontent.com"
    assert provider.inputs["clientIdLists"] == ["sts.amazonaws.com"]
    assert _account_of(ops, provider.provider) == ACCOUNTS[stack]
    for role_kind, expected_sub in (("deploy", subject), ("preview", f"repo:{REPO}:pull_request")):
        role = ops.one("aws:iam/role:Role", f"promote-code-ops-{stack}-identity-github-{role_kind}")
        assert _account_of(ops, role.provider) == ACCOUNTS[stack]
        trust, *chain = reversed(statements(policy_document(role, "assumeRolePolicy")))
        if role_kind == "preview" and stack != "ops":
            assert chain == [
                {
                    "Sid": "ChainedFromOpsPreview",
                    "Effect": "Allow",
                    "Action": ["sts:AssumeRole"],
                    "Principal": {"AWS": [f"arn:aws:iam::{OPS}:role/promote-code-github-preview"]},
                }
            ]
        else:
            assert chain == []
        assert trust["Action"] == ["sts:AssumeRoleWithWebIdentity"]
        assert trust["Principal"]["Federated"] == [
            f"arn:aws:iam::{ACCOUNTS[stack]}:oidc-provider/token.actions.githubusercontent.com"
        ]
        assert trust["Condition"] == {
            "StringEquals": {
                "token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
                "token.actions.githubusercontent.com:sub": expected_sub,
            }
        }


def test_no_role_is_administrator_or_wildcard(stack_plans: dict[str, StackPlan]) -> None:
    for plan in stack_plans.values():
        assert not plan.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        for policy in plan.of_type("aws:iam/rolePolicy:RolePolicy"):
            for statement in statements(policy_document(policy)):
                actions = as_list(statement["Action"])
                resources = as_list(statement.get("Resource", []))
                assert "*" not in actions, policy.name
                if "*" in resources and statement["Effect"] == "Allow":
                    assert "s3:*" not in actions, policy.name
                    assert "Condition" in statement or all(
                        a.split(":")[1].startswith(("Describe", "Get", "List")) for a in actions
                    ), (policy.name, statement["Sid"])
        text = json.dumps([r.inputs for r in plan.resources])
        assert "AdministratorAccess" not in text
        assert "AmazonSageMakerFullAccess" not in text


def test_ops_deploy_role_may_only_assume_the_configured_access_roles(ops: StackPlan) -> None:
    policy = ops.one(
        "aws:iam/rolePolicy:RolePolicy", "promote-code-ops-ops-identity-github-deploy-policy"
    )
    (assume,) = [
        s
        for s in statements(policy_document(policy))
        if s["Sid"] == "ManageIdentityInEnvironmentAccounts"
    ]
    assert assume["Resource"] == [
        f"arn:aws:iam::{a}:role/OrganizationAccountAccessRole" for a in (DEV, STAGING, PROD)
    ]


def test_outputs_name_every_role(ops: StackPlan) -> None:
    assert ops.outputs["deploy_role_arns"]["prod"] == (
        f"arn:aws:iam::{PROD}:role/promote-code-github-deploy"
    )
    assert ops.outputs["image_tag"] == TEST_TAG


def test_state_backend_access_is_granted_only_when_configured(ops: StackPlan) -> None:
    config = read_stack_config("ops")
    key = "arn:aws:kms:eu-west-1:111111111111:key/1b2c3d4e-0000-4000-8000-000000000000"
    config["promote:settings"] |= {"state_bucket": "acme-state", "state_secrets_key_arn": key}
    configured = plan_stack("ops", image_tag=TEST_TAG, config=config)

    def sids(plan: StackPlan, role: str) -> dict[str, dict[str, object]]:
        name = f"promote-code-ops-prod-identity-github-{role}-policy"
        policy = plan.one("aws:iam/rolePolicy:RolePolicy", name)
        return {s["Sid"]: s for s in statements(policy_document(policy))}

    for role in ("deploy", "preview"):
        assert sids(configured, role)["StateList"]["Resource"] == ["arn:aws:s3:::acme-state"]
        assert sids(configured, role)["StateSecrets"]["Resource"] == [key]
        assert not {"StateList", "StateSecrets"} & set(sids(ops, role))


def test_ops_preview_reads_other_accounts_through_their_preview_roles() -> None:
    normal = plan_stack("ops", image_tag=TEST_TAG)
    preview = plan_stack("ops", image_tag=TEST_TAG, preview_access=True)
    for stack, account in ACCOUNTS.items():
        name = f"promote-code-ops-{stack}-account"
        before = normal.one("pulumi:providers:aws", name).inputs.get("assumeRoles")
        after = preview.one("pulumi:providers:aws", name).inputs.get("assumeRoles")
        if stack == "ops":
            assert before is None and after is None
            continue
        assert f"arn:aws:iam::{account}:role/OrganizationAccountAccessRole" in before
        assert f"arn:aws:iam::{account}:role/promote-code-github-preview" in after
    policy = normal.one(
        "aws:iam/rolePolicy:RolePolicy", "promote-code-ops-ops-identity-github-preview-policy"
    )
    (chain,) = [s for s in statements(policy_document(policy)) if s["Sid"] == "ChainToPreviewRoles"]
    assert chain["Resource"] == [
        f"arn:aws:iam::{a}:role/promote-code-github-preview" for a in (DEV, STAGING, PROD)
    ]


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_environment_deploy_role_creates_roles_only_under_the_ops_made_boundary(
    ops: StackPlan, stack: str
) -> None:
    boundary_name = f"promote-code-{stack}-workload-boundary"
    boundary = ops.one("aws:iam/policy:Policy", f"promote-code-ops-{stack}-workload-boundary")
    assert boundary.inputs["name"] == boundary_name
    assert _account_of(ops, boundary.provider) == ACCOUNTS[stack]
    ceiling = {s["Sid"]: s for s in statements(policy_document(boundary))}
    assert not any(
        a.startswith(("iam:", "sts:"))
        for s in ceiling.values()
        for a in s["Action"]
        if a != "iam:PassRole"
    )
    policy = ops.one(
        "aws:iam/rolePolicy:RolePolicy", f"promote-code-ops-{stack}-identity-github-deploy-policy"
    )
    by_sid = {s["Sid"]: s for s in statements(policy_document(policy))}
    arn = f"arn:aws:iam::{ACCOUNTS[stack]}:policy/{boundary_name}"
    guarded = by_sid["IamRolesOnlyWithBoundary"]
    assert {"iam:CreateRole", "iam:PutRolePolicy"} <= set(guarded["Action"])
    assert guarded["Condition"] == {"StringEquals": {"iam:PermissionsBoundary": arn}}
    assert by_sid["IamNeverDropTheBoundary"]["Effect"] == "Deny"
    unguarded = {a for s in by_sid.values() if "Condition" not in s for a in s["Action"]}
    assert not unguarded & {"iam:CreateRole", "iam:PutRolePolicy", "iam:AttachRolePolicy"}
    assert not any(a.startswith("iam:*") for a in unguarded)
