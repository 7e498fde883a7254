"""What the GitHub deploy and preview roles may do in each account, and why.

No AdministratorAccess: each statement covers one kind of resource this
project's stacks manage, scoped by name prefix (`<project>-<stack>-`), by the
`project` tag where AWS cannot scope by name (KMS keys, VPC resources), or to
the few read-only or account-level actions that have no resource form
(`ecr:GetAuthorizationToken`, `kms:CreateKey`, Describe calls).

Known limit, written down on purpose: a role that manages IAM roles named
`<project>-*` could widen its own policy. Organizations adopting this template
should add an SCP or permissions boundary that stops the deploy roles from
touching `*-github-*` roles outside the ops stack run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from infra.iam import Statement

READ_ONLY_PREFIXES = ("Describe", "Get", "List")


@dataclass(frozen=True)
class AccountScope:
    project: str
    stack: str
    """The stack whose resources live in this account (ops, dev, staging or prod)."""
    account: str
    region: str
    ops_account: str
    state_bucket: str | None
    state_secrets_key_arn: str | None = None

    @property
    def prefix(self) -> str:
        return f"{self.project}-{self.stack}"

    def arn(self, service: str, resource: str, *, regional: bool = True) -> str:
        region = self.region if regional else ""
        return f"arn:aws:{service}:{region}:{self.account}:{resource}"

    @property
    def ops_repositories(self) -> str:
        return f"arn:aws:ecr:{self.region}:{self.ops_account}:repository/{self.project}/*"


def _tagged(scope: AccountScope, sid: str, actions: Sequence[str]) -> Statement:
    return Statement(
        sid=sid,
        actions=actions,
        resources=["*"],
        conditions={"StringEquals": {"aws:ResourceTag/project": scope.project}},
    )


def _create_tagged(scope: AccountScope, sid: str, actions: Sequence[str]) -> Statement:
    return Statement(
        sid=sid,
        actions=actions,
        resources=["*"],
        conditions={"StringEquals": {"aws:RequestTag/project": scope.project}},
    )


def state_statements(scope: AccountScope, *, write: bool) -> list[Statement]:
    """Self-managed Pulumi state in S3 (even a preview writes a lock) and its secrets key."""
    statements: list[Statement] = []
    if scope.state_bucket is not None:
        bucket = f"arn:aws:s3:::{scope.state_bucket}"
        statements += [
            Statement(sid="StateList", actions=["s3:ListBucket"], resources=[bucket]),
            Statement(sid="StateRead", actions=["s3:GetObject"], resources=[f"{bucket}/*"]),
            Statement(
                sid="StateWrite",
                actions=["s3:DeleteObject", "s3:PutObject"],
                resources=[f"{bucket}/*" if write else f"{bucket}/.pulumi/locks/*"],
            ),
        ]
    if scope.state_secrets_key_arn is not None:
        statements.append(
            Statement(
                sid="StateSecrets",
                actions=["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"],
                resources=[scope.state_secrets_key_arn],
            )
        )
    return statements


def _kms(scope: AccountScope) -> list[Statement]:
    return [
        _create_tagged(scope, "KmsCreateTaggedKeys", ["kms:CreateKey", "kms:TagResource"]),
        _tagged(
            scope,
            "KmsManageProjectKeys",
            [
                "kms:CreateAlias",
                "kms:CreateGrant",
                "kms:DeleteAlias",
                "kms:Describe*",
                "kms:EnableKeyRotation",
                "kms:Get*",
                "kms:List*",
                "kms:PutKeyPolicy",
                "kms:ScheduleKeyDeletion",
                "kms:TagResource",
                "kms:UntagResource",
                "kms:UpdateKeyDescription",
            ],
        ),
        Statement(sid="KmsListAliases", actions=["kms:ListAliases"], resources=["*"]),
    ]


def ops_deploy_statements(scope: AccountScope, assume_roles: Sequence[str]) -> list[Statement]:
    """The ops stack: its ECR repositories, images, and the GitHub identity in all accounts."""
    statements = [
        Statement(
            sid="EcrManageProjectRepositories",
            actions=["ecr:*"],
            resources=[scope.arn("ecr", f"repository/{scope.project}/*")],
        ),
        Statement(sid="EcrLogin", actions=["ecr:GetAuthorizationToken"], resources=["*"]),
        *_kms(scope),
        Statement(
            sid="IamGithubIdentity",
            actions=["iam:*OpenIDConnectProvider*", "iam:*Role*", "iam:TagRole", "iam:UntagRole"],
            resources=[
                scope.arn(
                    "iam", "oidc-provider/token.actions.githubusercontent.com", regional=False
                ),
                scope.arn("iam", f"role/{scope.project}-github-*", regional=False),
            ],
        ),
        *state_statements(scope, write=True),
    ]
    if assume_roles:
        statements.append(
            Statement(
                sid="ManageIdentityInEnvironmentAccounts",
                actions=["sts:AssumeRole"],
                resources=list(assume_roles),
            )
        )
    return statements


def environment_deploy_statements(scope: AccountScope) -> list[Statement]:
    """An environment stack: buckets, keys, roles, SageMaker, deployer, schedule, network."""
    prefix = scope.prefix
    return [
        Statement(
            sid="S3ProjectBuckets",
            actions=["s3:*"],
            resources=[f"arn:aws:s3:::{prefix}-*", f"arn:aws:s3:::{prefix}-*/*"],
        ),
        *_kms(scope),
        Statement(
            sid="IamProjectRoles",
            actions=["iam:*Role*", "iam:TagRole", "iam:UntagRole"],
            resources=[scope.arn("iam", f"role/{prefix}-*", regional=False)],
        ),
        Statement(
            sid="IamPassProjectRoles",
            actions=["iam:PassRole"],
            resources=[scope.arn("iam", f"role/{prefix}-*", regional=False)],
            conditions={
                "StringEquals": {
                    "iam:PassedToService": [
                        "lambda.amazonaws.com",
                        "sagemaker.amazonaws.com",
                        "scheduler.amazonaws.com",
                    ]
                }
            },
        ),
        Statement(
            sid="SageMakerThisAccount",
            actions=["sagemaker:*"],
            resources=[scope.arn("sagemaker", "*")],
        ),
        Statement(
            sid="DeployerAndEvents",
            actions=["lambda:*", "events:*", "scheduler:*", "sqs:*", "cloudwatch:*Alarm*"],
            resources=[
                scope.arn("lambda", f"function:{prefix}-*"),
                scope.arn("events", f"rule/{prefix}-*"),
                scope.arn("scheduler", f"schedule/default/{prefix}-*"),
                scope.arn("sqs", f"{prefix}-*"),
                scope.arn("cloudwatch", f"alarm:{prefix}-*"),
            ],
        ),
        Statement(
            sid="Logs",
            actions=["logs:*"],
            resources=[scope.arn("logs", f"log-group:/aws/lambda/{prefix}-*")],
        ),
        Statement(sid="Ec2Read", actions=["ec2:Describe*"], resources=["*"]),
        _create_tagged(scope, "Ec2CreateTagged", ["ec2:Create*", "ec2:AllocateAddress"]),
        _tagged(scope, "Ec2ManageTagged", ["ec2:*"]),
        Statement(
            sid="GpuQuotaRequests",
            actions=[
                "servicequotas:GetServiceQuota",
                "servicequotas:GetRequestedServiceQuotaChange",
                "servicequotas:ListRequestedServiceQuotaChangeHistoryByQuota",
                "servicequotas:RequestServiceQuotaIncrease",
            ],
            resources=[scope.arn("servicequotas", "sagemaker/*")],
        ),
        Statement(
            sid="ResolveOpsImages",
            actions=["ecr:DescribeImages", "ecr:BatchGetImage"],
            resources=[scope.ops_repositories],
        ),
        *state_statements(scope, write=True),
    ]


def preview_statements(scope: AccountScope) -> list[Statement]:
    """Read-only: what `pulumi preview` reads (data sources, state), never data objects."""
    services = ("ecr", "iam", "kms", "sagemaker", "lambda", "events", "scheduler", "sqs")
    read_actions = [
        f"{s}:{verb}*"
        for s in (*services, "ec2", "cloudwatch", "servicequotas")
        for verb in READ_ONLY_PREFIXES
        if not (s == "ec2" and verb != "Describe")
    ]
    return [
        Statement(sid="ReadConfiguration", actions=sorted(set(read_actions)), resources=["*"]),
        Statement(
            sid="ReadBucketConfiguration",
            actions=["s3:GetBucket*", "s3:GetEncryptionConfiguration", "s3:ListAllMyBuckets"],
            resources=["*"],
        ),
        Statement(
            sid="ResolveOpsImages",
            actions=["ecr:DescribeImages", "ecr:GetAuthorizationToken"],
            resources=["*"],
        ),
        *state_statements(scope, write=False),
    ]
