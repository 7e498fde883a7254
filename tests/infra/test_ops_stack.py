"""The ops stack: registry shared with exactly the environment accounts, and the images."""

from __future__ import annotations

import json

import pytest

from offline.plan.capture import StackPlan
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


def test_ops_has_no_identity_and_reaches_no_other_account(ops: StackPlan) -> None:
    """CI's ops stack cannot touch IAM or assume into the environment accounts."""
    assert not [r for r in ops.resources if r.type.startswith("aws:iam/")]
    (provider,) = ops.of_type("pulumi:providers:aws")
    assert provider.inputs.get("assumeRoles") is None
    assert ops.outputs["image_tag"] == TEST_TAG
