"""ECR repositories in the ops account, shared read-only with the environment accounts.

Tags are IMMUTABLE so `training:<commit>` always names the same bytes; the
environment stacks then pin the digest anyway. Pull access is granted to
exactly the environment accounts and, for SageMaker and Lambda pulling on their
behalf, to those service principals conditioned on the same accounts.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.iam import Statement, policy_json

PULL_ACTIONS = ("ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer")


@dataclass(frozen=True)
class ContainerRegistryArgs:
    repositories: Mapping[str, str]
    """Short image name -> ECR repository name."""
    pull_accounts: Sequence[str]
    region: str
    untagged_expiry_days: int
    tags: Mapping[str, str]


def lifecycle_policy(untagged_expiry_days: int) -> str:
    return json.dumps(
        {
            "rules": [
                {
                    "rulePriority": 1,
                    "description": "Expire untagged images (failed or superseded pushes)",
                    "selection": {
                        "tagStatus": "untagged",
                        "countType": "sinceImagePushed",
                        "countUnit": "days",
                        "countNumber": untagged_expiry_days,
                    },
                    "action": {"type": "expire"},
                }
            ]
        },
        sort_keys=True,
    )


def repository_policy(pull_accounts: Sequence[str], region: str) -> pulumi.Output[str]:
    """Pull for exactly the environment accounts, and for the services acting for them.

    Lambda is conditioned on its functions' ARNs in those accounts, the form AWS
    documents for cross-account container images; SageMaker on the source account.
    """
    accounts = list(pull_accounts)
    return policy_json(
        Statement(
            sid="PullFromEnvironmentAccounts",
            actions=[*PULL_ACTIONS, "ecr:DescribeImages"],
            principals={"AWS": [f"arn:aws:iam::{a}:root" for a in accounts]},
        ),
        Statement(
            sid="PullByLambdaForEnvironmentAccounts",
            actions=list(PULL_ACTIONS),
            principals={"Service": ["lambda.amazonaws.com"]},
            conditions={
                "StringLike": {
                    "aws:SourceArn": [f"arn:aws:lambda:{region}:{a}:function:*" for a in accounts]
                }
            },
        ),
        Statement(
            sid="PullBySageMakerForEnvironmentAccounts",
            actions=list(PULL_ACTIONS),
            principals={"Service": ["sagemaker.amazonaws.com"]},
            conditions={"StringEquals": {"aws:SourceAccount": accounts}},
        ),
    )


class ContainerRegistry(pulumi.ComponentResource):
    repositories: dict[str, aws.ecr.Repository]
    key: aws.kms.Key

    def __init__(
        self, name: str, args: ContainerRegistryArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("promote:aws:ContainerRegistry", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        tags = dict(args.tags)
        self.key = aws.kms.Key(
            f"{name}-key",
            description="Encrypts the promote-code ECR repositories",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            tags=tags,
            opts=child,
        )
        policy = repository_policy(args.pull_accounts, args.region)
        self.repositories = {}
        for short, repository_name in sorted(args.repositories.items()):
            repo = aws.ecr.Repository(
                f"{name}-{short}",
                name=repository_name,
                image_tag_mutability="IMMUTABLE",
                image_scanning_configuration={"scan_on_push": True},
                encryption_configurations=[{"encryption_type": "KMS", "kms_key": self.key.arn}],
                tags=tags,
                opts=child,
            )
            aws.ecr.LifecyclePolicy(
                f"{name}-{short}-lifecycle",
                repository=repo.name,
                policy=lifecycle_policy(args.untagged_expiry_days),
                opts=child,
            )
            aws.ecr.RepositoryPolicy(
                f"{name}-{short}-policy", repository=repo.name, policy=policy, opts=child
            )
            self.repositories[short] = repo
        self.register_outputs(
            {f"{short}_url": repo.repository_url for short, repo in self.repositories.items()}
        )
