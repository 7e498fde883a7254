"""What the GitHub deploy and preview roles may do in each account, and why.

No AdministratorAccess: each statement covers one kind of resource this
project's stacks manage, scoped by name prefix (`<project>-<stack>-`), by the
`project` tag where AWS cannot scope by name (VPC resources, key deletion), or
to the few actions that have no resource form (`ecr:GetAuthorizationToken`,
`kms:CreateKey`, Describe calls).

Escalation through IAM is closed by a permissions boundary: the ops stack puts
`<project>-<stack>-workload-boundary` in each environment account, and that
environment's deploy role may create and edit roles only with that boundary
attached, and may never remove it. A role it makes can never do more than the
boundary allows (no IAM beyond PassRole to SageMaker, no STS), however its
inline policy is edited.

Who applies this: only the identity bootstrap stack (`infra/stacks/identity.py`), run
by an administrator; no GitHub role can change any `<project>-github-*` role, its
policy, its trust or a boundary, and none can assume a role outside the project's.

Known limits, written down on purpose:
- Tag-scoped permissions (VPC resources) trust the `project` tag; an SCP that
  reserves that tag key to the deploy roles closes the gap.
- KMS key reads are allowed on every key of the account (the data key is made by
  the bootstrap; reading a key's metadata reveals no data).
- An environment deploy role creates its stack's workload roles (under the
  boundary), and IAM has no condition key on a new role's trust policy; a
  resource control policy denying `sts:AssumeRole*` from outside the organization
  closes that path (README, "Who may do what").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from infra.iam import ECR_PULL_ACTIONS, MLFLOW_LOGGING_ACTIONS, Statement, in_account

READ_ONLY_PREFIXES = ("Describe", "Get", "List")


@dataclass(frozen=True)
class StateBackend:
    """The self-managed Pulumi state: an S3 bucket in one account, a KMS key per account."""

    bucket: str
    account: str
    key_alias: str
    """Alias of the `awskms://` secrets key each account holds for its own stack."""


@dataclass(frozen=True)
class AccountScope:
    project: str
    stack: str
    """The stack whose resources live in this account (ops, dev, staging or prod)."""
    account: str
    region: str
    ops_account: str
    state: StateBackend | None
    source_stack: str | None = None
    """The stack this one promotes from, whose state (outputs) a StackReference reads."""

    @property
    def prefix(self) -> str:
        return f"{self.project}-{self.stack}"

    def arn(self, service: str, resource: str, *, regional: bool = True) -> str:
        region = self.region if regional else ""
        return f"arn:aws:{service}:{region}:{self.account}:{resource}"

    @property
    def ops_repositories(self) -> str:
        return f"arn:aws:ecr:{self.region}:{self.ops_account}:repository/{self.project}/*"


def _stack_buckets(scope: AccountScope, sid: str) -> Statement:
    """Every bucket (and object) named `<project>-<stack>-*` of this account."""
    prefix = f"arn:aws:s3:::{scope.prefix}-*"
    return Statement(
        sid=sid,
        actions=["s3:*"],
        resources=[prefix, f"{prefix}/*"],
        conditions=in_account(scope.account),
    )


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


def state_objects(project: str, stack: str) -> list[str]:
    """Object keys of one stack in a Pulumi DIY backend (pkg/backend/diy/store.go, lock.go)."""
    return [
        f".pulumi/stacks/{project}/{stack}.json*",
        f".pulumi/history/{project}/{stack}/*",
        f".pulumi/backups/{project}/{stack}/*",
    ]


def state_statements(scope: AccountScope, *, write: bool) -> list[Statement]:
    """This stack's state objects only (and, read-only, its source stack's outputs).

    Even a preview writes its stack's lock; the secrets key is the one of this account.
    """
    if scope.state is None:
        return []
    state = scope.state
    bucket = f"arn:aws:s3:::{state.bucket}"
    own = [f"{bucket}/{key}" for key in state_objects(scope.project, scope.stack)]
    lock = f"{bucket}/.pulumi/locks/organization/{scope.project}/{scope.stack}/*"
    readable = [f"{bucket}/.pulumi/meta.yaml", *own]
    if scope.source_stack is not None:
        readable.append(f"{bucket}/.pulumi/stacks/{scope.project}/{scope.source_stack}.json*")
    account = in_account(state.account)
    return [
        Statement(
            sid="StateList", actions=["s3:ListBucket"], resources=[bucket], conditions=account
        ),
        Statement(
            sid="StateRead",
            actions=["s3:GetObject"],
            resources=[*readable, lock],
            conditions=account,
        ),
        Statement(
            sid="StateWrite",
            actions=["s3:DeleteObject", "s3:PutObject"],
            resources=[*own, lock] if write else [lock],
            conditions=account,
        ),
        Statement(
            sid="StateSecrets",
            actions=["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"],
            resources=[scope.arn("kms", "key/*")],
            conditions={"ForAnyValue:StringEquals": {"kms:ResourceAliases": state.key_alias}},
        ),
    ]


def _kms(scope: AccountScope) -> list[Statement]:
    """Read the stack's data key (made by the identity bootstrap) and let services use it.

    No CreateKey, alias or key-deletion action: the key outlives any CI run.
    """
    keys = scope.arn("kms", "key/*")
    return [
        Statement(
            sid="KmsReadKeys",
            actions=[
                "kms:DescribeKey",
                "kms:GetKeyPolicy",
                "kms:GetKeyRotationStatus",
                "kms:ListResourceTags",
            ],
            resources=[keys],
        ),
        # Grants only for AWS services (SageMaker, EFS, Lambda) acting for this account.
        Statement(
            sid="KmsGrantsForServices",
            actions=["kms:CreateGrant", "kms:RetireGrant"],
            resources=[keys],
            conditions={"Bool": {"kms:GrantIsForAWSResource": "true"}},
        ),
        Statement(sid="KmsListAliases", actions=["kms:ListAliases"], resources=["*"]),
    ]


ECR_PUSH_ACTIONS: tuple[str, ...] = (
    "ecr:BatchCheckLayerAvailability",
    "ecr:BatchGetImage",
    "ecr:CompleteLayerUpload",
    "ecr:DescribeImages",
    "ecr:DescribeRepositories",
    "ecr:GetDownloadUrlForLayer",
    "ecr:InitiateLayerUpload",
    "ecr:ListImages",
    "ecr:ListTagsForResource",
    "ecr:PutImage",
    "ecr:UploadLayerPart",
)
"""Pushing a new tag (and reading back what is there). Tags are IMMUTABLE, so PutImage of a
tag that exists fails: without the registry-changing actions below, CI adds, never rewrites."""

ECR_HISTORY_ACTIONS: tuple[str, ...] = (
    "ecr:BatchDeleteImage",
    "ecr:DeleteLifecyclePolicy",
    "ecr:DeleteRepository",
    "ecr:DeleteRepositoryPolicy",
    "ecr:PutImageTagMutability",
    "ecr:PutLifecyclePolicy",
    "ecr:SetRepositoryPolicy",
)
"""What could make `training:<commit>` name other bytes, or hide an image from an account."""


def ops_deploy_statements(scope: AccountScope) -> list[Statement]:
    """The ops stack in CI: push this commit's images; the registry itself is the admin's."""
    repositories = scope.arn("ecr", f"repository/{scope.project}/*")
    return [
        Statement(sid="EcrPushNewTags", actions=ECR_PUSH_ACTIONS, resources=[repositories]),
        Statement(sid="EcrLogin", actions=["ecr:GetAuthorizationToken"], resources=["*"]),
        # Also denied outright, so a later broad Allow cannot bring them back.
        Statement(
            sid="EcrNeverRewriteHistory",
            effect="Deny",
            actions=ECR_HISTORY_ACTIONS,
            resources=["*"],
        ),
        *state_statements(scope, write=True),
    ]


def boundary_arn(project: str, stack: str, account: str) -> str:
    """The permissions boundary every role of an environment stack carries."""
    return f"arn:aws:iam::{account}:policy/{project}-{stack}-workload-boundary"


def _iam_under_boundary(scope: AccountScope) -> list[Statement]:
    roles = scope.arn("iam", f"role/{scope.prefix}-*", regional=False)
    boundary = boundary_arn(scope.project, scope.stack, scope.account)
    return [
        Statement(
            sid="IamRolesOnlyWithBoundary",
            actions=[
                "iam:CreateRole",
                "iam:DeleteRolePolicy",
                "iam:PutRolePermissionsBoundary",
                "iam:PutRolePolicy",
            ],
            resources=[roles],
            conditions={"StringEquals": {"iam:PermissionsBoundary": boundary}},
        ),
        Statement(
            sid="IamManageProjectRoles",
            actions=[
                "iam:DeleteRole",
                "iam:GetRole",
                "iam:GetRolePolicy",
                "iam:ListAttachedRolePolicies",
                "iam:ListInstanceProfilesForRole",
                "iam:ListRolePolicies",
                "iam:ListRoleTags",
                "iam:TagRole",
                "iam:UntagRole",
                "iam:UpdateRole",
                "iam:UpdateRoleDescription",
            ],
            resources=[roles],
        ),
        Statement(
            sid="IamPassProjectRoles",
            actions=["iam:PassRole"],
            resources=[roles],
            conditions={
                "StringEquals": {
                    "iam:PassedToService": [
                        "events.amazonaws.com",
                        "lambda.amazonaws.com",
                        "sagemaker.amazonaws.com",
                        "scheduler.amazonaws.com",
                        "states.amazonaws.com",
                        "vpc-flow-logs.amazonaws.com",
                    ]
                }
            },
        ),
        # A workload role's trust is set when the stack creates it, never re-pointed later
        # (at another account or a GitHub subject), and no GitHub role is touched at all.
        Statement(
            sid="IamNeverDropTheBoundaryOrRetrust",
            effect="Deny",
            actions=["iam:DeleteRolePermissionsBoundary", "iam:UpdateAssumeRolePolicy"],
            resources=["*"],
        ),
        Statement(
            sid="IamNeverTouchGithubRoles",
            effect="Deny",
            actions=["iam:*"],
            resources=[scope.arn("iam", f"role/{scope.project}-github-*", regional=False)],
        ),
    ]


def environment_deploy_statements(scope: AccountScope) -> list[Statement]:
    """An environment stack: buckets, keys, roles, SageMaker, deployer, schedule, network."""
    prefix = scope.prefix
    return [
        _stack_buckets(scope, "S3ProjectBuckets"),
        *_kms(scope),
        # Uploading step code to SSE-KMS buckets encrypts with the stack key, via S3 only.
        Statement(
            sid="KmsThroughS3",
            actions=["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey*"],
            resources=[scope.arn("kms", "key/*")],
            conditions={"StringEquals": {"kms:ViaService": f"s3.{scope.region}.amazonaws.com"}},
        ),
        *_iam_under_boundary(scope),
        Statement(
            sid="SageMakerThisAccount",
            actions=["sagemaker:*"],
            resources=[scope.arn("sagemaker", "*")],
        ),
        Statement(
            sid="DeployerAndEvents",
            actions=[
                "cloudwatch:*Alarm*",
                "cloudwatch:ListTagsForResource",
                "cloudwatch:TagResource",
                "cloudwatch:UntagResource",
                "events:*",
                "lambda:*",
                "scheduler:*",
                "sqs:*",
                "states:*",
            ],
            resources=[
                scope.arn("lambda", f"function:{prefix}-*"),
                scope.arn("events", f"rule/{prefix}-*"),
                scope.arn("scheduler", f"schedule/default/{prefix}-*"),
                scope.arn("sqs", f"{prefix}-*"),
                scope.arn("cloudwatch", f"alarm:{prefix}-*"),
                scope.arn("states", f"stateMachine:{prefix}-*"),
            ],
        ),
        # Event source mappings are named by UUID; each call is allowed only for a mapping that
        # feeds a function of this stack (lambda:FunctionArn). CreateEventSourceMapping has no
        # resource type (Service Authorization Reference), the others the mapping.
        Statement(
            sid="CreateDeployerMappings",
            actions=["lambda:CreateEventSourceMapping"],
            resources=["*"],
            conditions={
                "ArnLike": {"lambda:FunctionArn": scope.arn("lambda", f"function:{prefix}-*")}
            },
        ),
        Statement(
            sid="ManageDeployerMappings",
            actions=[
                "lambda:DeleteEventSourceMapping",
                "lambda:GetEventSourceMapping",
                "lambda:UpdateEventSourceMapping",
            ],
            resources=[scope.arn("lambda", "event-source-mapping:*")],
            conditions={
                "ArnLike": {"lambda:FunctionArn": scope.arn("lambda", f"function:{prefix}-*")}
            },
        ),
        Statement(
            sid="ListDeployerMappings", actions=["lambda:ListEventSourceMappings"], resources=["*"]
        ),
        Statement(
            sid="Logs",
            actions=["logs:*"],
            resources=[
                scope.arn("logs", f"log-group:/aws/lambda/{prefix}-*"),
                scope.arn("logs", f"log-group:/aws/vpc-flow-logs/{prefix}-*"),
            ],
        ),
        Statement(
            sid="LogsFind",
            actions=["logs:DescribeLogGroups"],
            resources=[scope.arn("logs", "log-group:*")],
        ),
        Statement(sid="Ec2Read", actions=["ec2:Describe*"], resources=["*"]),
        _create_tagged(scope, "Ec2CreateTagged", ["ec2:AllocateAddress", "ec2:Create*"]),
        _tagged(scope, "Ec2ManageTagged", ["ec2:*"]),
        Statement(
            sid="PrivateDnsForVpcEndpoints",
            actions=["route53:AssociateVPCWithHostedZone"],
            resources=["arn:aws:route53:::hostedzone/*"],
        ),
        Statement(
            sid="GpuQuotaRequests",
            actions=[
                "servicequotas:GetRequestedServiceQuotaChange",
                "servicequotas:GetServiceQuota",
                "servicequotas:ListRequestedServiceQuotaChangeHistoryByQuota",
                "servicequotas:RequestServiceQuotaIncrease",
            ],
            resources=[scope.arn("servicequotas", "sagemaker/*")],
        ),
        # Looking a quota up by name lists the service's defaults (no resource form).
        Statement(
            sid="GpuQuotaLookup",
            actions=[
                "servicequotas:GetAWSDefaultServiceQuota",
                "servicequotas:ListAWSDefaultServiceQuotas",
            ],
            resources=["*"],
        ),
        # CreateFunction from another account's image needs both of the pull actions.
        Statement(
            sid="ResolveOpsImages",
            actions=["ecr:BatchGetImage", "ecr:DescribeImages", "ecr:GetDownloadUrlForLayer"],
            resources=[scope.ops_repositories],
        ),
        *state_statements(scope, write=True),
    ]


def workload_boundary_statements(scope: AccountScope) -> list[Statement]:
    """The ceiling of every role an environment stack creates (its permissions boundary)."""
    prefix = scope.prefix
    return [
        _stack_buckets(scope, "StackBuckets"),
        Statement(
            sid="StackDataKey",
            actions=[
                "kms:CreateGrant",
                "kms:Decrypt",
                "kms:DescribeKey",
                "kms:Encrypt",
                "kms:GenerateDataKey*",
            ],
            resources=[scope.arn("kms", "key/*")],
            # Only the stack's data key, never e.g. the state secrets key of the account.
            conditions={
                "ForAnyValue:StringEquals": {"kms:ResourceAliases": f"alias/{scope.prefix}"}
            },
        ),
        Statement(
            sid="PullOpsImages",
            actions=ECR_PULL_ACTIONS,
            resources=[scope.ops_repositories],
        ),
        Statement(sid="EcrLogin", actions=["ecr:GetAuthorizationToken"], resources=["*"]),
        Statement(
            sid="SageMakerThisAccount",
            actions=["sagemaker:*"],
            resources=[scope.arn("sagemaker", "*")],
        ),
        Statement(
            sid="Logs",
            actions=[
                "logs:CreateLogGroup",
                "logs:CreateLogStream",
                "logs:DescribeLogStreams",
                "logs:PutLogEvents",
            ],
            resources=[scope.arn("logs", "log-group:*")],
        ),
        Statement(
            sid="RollbackAlarms",
            actions=["cloudwatch:DescribeAlarms"],
            resources=[scope.arn("cloudwatch", "alarm:*")],
        ),
        # PutMetricData has no resource form.
        Statement(sid="JobMetrics", actions=["cloudwatch:PutMetricData"], resources=["*"]),
        Statement(
            sid="StackQueues",
            actions=[
                "sqs:ChangeMessageVisibility",
                "sqs:DeleteMessage",
                "sqs:GetQueueAttributes",
                "sqs:ReceiveMessage",
                "sqs:SendMessage",
            ],
            resources=[scope.arn("sqs", f"{prefix}-*")],
        ),
        Statement(
            sid="VpcJobs",
            actions=[
                "ec2:CreateNetworkInterface",
                "ec2:CreateNetworkInterfacePermission",
                "ec2:DeleteNetworkInterface",
                "ec2:DeleteNetworkInterfacePermission",
                "ec2:Describe*",
            ],
            resources=["*"],
        ),
        Statement(
            sid="PassStackRolesToSageMaker",
            actions=["iam:PassRole"],
            resources=[scope.arn("iam", f"role/{prefix}-*", regional=False)],
            conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
        ),
        # The drift alarm's rule starts the stack's retraining state machine, nothing else.
        Statement(
            sid="StartStackStateMachines",
            actions=["states:StartExecution"],
            resources=[scope.arn("states", f"stateMachine:{prefix}-*")],
        ),
        Statement(
            sid="StackMlflow",
            actions=list(MLFLOW_LOGGING_ACTIONS),
            resources=[scope.arn("sagemaker", f"mlflow-tracking-server/{prefix}-*")],
        ),
    ]


def preview_statements(scope: AccountScope) -> list[Statement]:
    """Read-only: what `pulumi preview` reads (data sources, state), never data objects."""
    services = (
        "ecr",
        "iam",
        "kms",
        "sagemaker",
        "lambda",
        "events",
        "scheduler",
        "sqs",
        "states",
    )
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
            actions=["s3:GetBucket*", "s3:GetEncryptionConfiguration"],
            resources=["arn:aws:s3:::*"],
            conditions=in_account(scope.account),
        ),
        Statement(sid="ListBuckets", actions=["s3:ListAllMyBuckets"], resources=["*"]),
        *state_statements(scope, write=False),
    ]
