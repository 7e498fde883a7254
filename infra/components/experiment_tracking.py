"""SageMaker managed MLflow of one environment: a tracking server, its artifact store, its role.

Every environment tracks its own runs in its own account (prod's runs live in prod).
The server keeps run metadata itself; artifacts go to the stack's artifacts bucket
under `artifact_prefix`, encrypted with the stack's key.

Why `aws.sagemaker.MlflowTrackingServer` and not `aws.sagemaker.MlflowApp`
(both in pulumi-aws 7.51):
- The pipeline definition must be known at preview time, and it names the MLflow
  resource (`MlflowConfig.MlflowResourceArn`). A tracking server's ARN is built from
  the name we choose, `arn:aws:sagemaker:<region>:<account>:mlflow-tracking-server/<name>`
  (Service Authorization Reference, resource type `mlflow-tracking-server`); an MLflow
  App's ARN ends in an ID AWS assigns on creation (`mlflow-app/app-ABCD1234`, the
  provider's import example), unknown until the first `pulumi up`.
- IAM for a tracking server is per MLflow API call (`sagemaker-mlflow:CreateRun`,
  `LogBatch`, ... on the server's ARN), so the execution role gets exactly the calls
  the steps make. The sagemaker-mlflow plugin signs App calls for the `sagemaker`
  service instead (`auth_provider._get_auth_service_name`), whose MLflow actions the
  policy tooling here (parliament's IAM data) does not know.
- The cost: a tracking server is billed per hour while it runs, an App is not. Small
  is about USD 0.642 per hour (ml.t3.medium class, us-east-1), about USD 469 per
  month running all month (730 h), plus its metadata storage; source: a third-party
  summary of aws.amazon.com/sagemaker-ai/pricing (MLflow tab), the figure to check
  there for the stack's region. `ExperimentTrackingArgs.size` picks Small/Medium/Large.

Where artifacts travel: the MLflow client in a job writes and reads artifacts
directly in S3 with the job's own credentials. sagemaker-mlflow 0.5.0 registers
`S3PresignedArtifactRepository` for `s3://`, which is plain `S3ArtifactRepository`
unless `SAGEMAKER_PRESIGNED_URL_UPLOAD_ENABLED=true`; only the run metadata goes
through the server. So the execution role needs S3 and the key on the prefix (its
`StackObjects`/`StackKey` statements already cover the artifacts bucket), and the
server's role needs them only for what the server itself does (the MLflow UI shows
and lists artifacts through it).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import pulumi
import pulumi_aws as aws

from infra.components.service_role import service_role
from infra.iam import MLFLOW_LOGGING_ACTIONS, Statement, in_account

DEFAULT_ARTIFACT_PREFIX = "mlflow/"
"""Where in the artifacts bucket the server keeps run artifacts."""

TrackingServerSize = Literal["Small", "Medium", "Large"]


_NAME_RE = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,255}$")
"""CreateMlflowTrackingServer's TrackingServerName (botocore's sagemaker model)."""
_EXPERIMENT_RE = re.compile(r"^[a-zA-Z0-9\-_./]{1,256}$")
"""The strictest experiment-name pattern SageMaker states (AIMlflowConfig)."""
_PREFIX_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*(/[a-z0-9][a-z0-9._-]*)*/$")
_VERSION_RE = re.compile(r"^\d+\.\d+(\.\d+)?$")


def tracking_server_arn(region: str, account: str, name: str) -> str:
    """The ARN AWS gives the tracking server `name` (known before it exists)."""
    return f"arn:aws:sagemaker:{region}:{account}:mlflow-tracking-server/{name}"


@dataclass(frozen=True)
class ExperimentTrackingArgs:
    tracking_server_name: str
    """Physical name; part of the ARN, so the ARN is known at preview."""
    role_name: str
    """Name of the server's own role (the role the server reads and writes artifacts as)."""
    account: str
    region: str
    artifacts_bucket: pulumi.Input[str]
    """Name of the stack's artifacts bucket (pass the bucket's output so the server waits)."""
    kms_key_arn: pulumi.Input[str]
    experiment_name: str
    """The experiment the pipeline's runs go to (the pipeline's `MlflowConfig`)."""
    tags: Mapping[str, str]
    artifact_prefix: str = DEFAULT_ARTIFACT_PREFIX
    size: TrackingServerSize = "Small"
    mlflow_version: str | None = None
    """None: the service's current default version."""
    permissions_boundary: str | None = None

    def __post_init__(self) -> None:
        problems = []
        if not _NAME_RE.match(self.tracking_server_name):
            problems.append(
                f"tracking_server_name {self.tracking_server_name!r} must be letters, digits and "
                "single hyphens, 1-256 characters (e.g. promote-code-dev-mlflow)"
            )
        if not _PREFIX_RE.match(self.artifact_prefix):
            problems.append(
                f"artifact_prefix {self.artifact_prefix!r} must be lowercase path segments "
                "ending in '/', without a leading '/' or wildcards (e.g. mlflow/)"
            )
        if not _EXPERIMENT_RE.match(self.experiment_name):
            problems.append(
                f"experiment_name {self.experiment_name!r} must be 1-256 letters, digits or "
                "-_./ (e.g. promote-code-dev)"
            )
        if self.size not in ("Small", "Medium", "Large"):
            problems.append(f"size {self.size!r} must be Small, Medium or Large")
        if self.mlflow_version is not None and not _VERSION_RE.match(self.mlflow_version):
            problems.append(f"mlflow_version {self.mlflow_version!r} must look like 3.0")
        if problems:
            raise ValueError("experiment tracking: " + "; ".join(problems))

    @property
    def arn(self) -> str:
        return tracking_server_arn(self.region, self.account, self.tracking_server_name)


def server_statements(args: ExperimentTrackingArgs) -> list[Statement]:
    """What the server's role may do: the artifact prefix of one bucket, via the stack key."""
    bucket_arn = pulumi.Output.concat("arn:aws:s3:::", args.artifacts_bucket)
    prefix = args.artifact_prefix
    return [
        Statement(
            sid="ListArtifactPrefix",
            actions=["s3:ListBucket"],
            resources=[bucket_arn],
            conditions={
                "StringEquals": {"aws:ResourceAccount": args.account},
                "StringLike": {"s3:prefix": [prefix, f"{prefix}*"]},
            },
        ),
        # No delete: expiry is the bucket's lifecycle rules' job, and versioning keeps history.
        Statement(
            sid="ArtifactObjects",
            actions=["s3:AbortMultipartUpload", "s3:GetObject", "s3:PutObject"],
            resources=[pulumi.Output.concat(bucket_arn, "/", prefix, "*")],
            conditions=in_account(args.account),
        ),
        Statement(
            sid="StackKeyThroughS3",
            actions=["kms:Decrypt", "kms:GenerateDataKey"],
            resources=[args.kms_key_arn],
            conditions={"StringEquals": {"kms:ViaService": f"s3.{args.region}.amazonaws.com"}},
        ),
    ]


def tracking_use_statements(tracking_arn: str) -> list[Statement]:
    """The execution role's grant: log runs on this environment's tracking server only."""
    if not tracking_arn.startswith("arn:aws:sagemaker:") or ":mlflow-tracking-server/" not in (
        tracking_arn
    ):
        raise ValueError(f"tracking_arn must be a tracking server ARN, got {tracking_arn!r}")
    return [
        Statement(
            sid="OwnMlflowTrackingServer",
            actions=list(MLFLOW_LOGGING_ACTIONS),
            resources=[tracking_arn],
        )
    ]


class ExperimentTracking(pulumi.ComponentResource):
    server: aws.sagemaker.MlflowTrackingServer
    role: aws.iam.Role
    arn: str
    """The server's ARN, known at preview (what `MlflowConfig` and IAM name)."""
    tracking_uri: str
    """What `mlflow.set_tracking_uri` takes with the sagemaker-mlflow plugin: the ARN."""
    experiment_name: str
    artifact_store_uri: pulumi.Output[str]
    ui_url: pulumi.Output[str]
    """The server's own UI address (unknown until it exists; access needs a presigned URL)."""

    def __init__(
        self, name: str, args: ExperimentTrackingArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("promote:sagemaker:ExperimentTracking", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        access = service_role(
            name,
            # The trust the MLflow IAM guide gives the server's role, pinned to this account.
            service="sagemaker.amazonaws.com",
            account=args.account,
            statements=server_statements(args),
            tags=args.tags,
            opts=child,
            role_name=args.role_name,
            description=f"MLflow tracking server {args.tracking_server_name}: its artifact prefix",
            permissions_boundary=args.permissions_boundary,
        )
        self.role = access.role
        self.arn = args.arn
        self.tracking_uri = args.arn
        self.experiment_name = args.experiment_name
        self.artifact_store_uri = pulumi.Output.concat(
            "s3://", args.artifacts_bucket, "/", args.artifact_prefix
        )
        # Named like its physical name, so the resource's URN and its ARN say the same thing.
        self.server = aws.sagemaker.MlflowTrackingServer(
            args.tracking_server_name,
            tracking_server_name=args.tracking_server_name,
            artifact_store_uri=self.artifact_store_uri,
            role_arn=self.role.arn,
            tracking_server_size=args.size,
            mlflow_version=args.mlflow_version,
            # Registering in the SageMaker registry is the pipeline's RegisterModel step's job.
            automatic_model_registration=False,
            tags=dict(args.tags),
            # Never a server whose role cannot reach its artifact store yet.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[access.policy]),
        )
        self.ui_url = self.server.tracking_server_url
        self.register_outputs({"arn": self.arn, "role_arn": self.role.arn, "ui_url": self.ui_url})


__all__ = [
    "DEFAULT_ARTIFACT_PREFIX",
    "MLFLOW_LOGGING_ACTIONS",
    "ExperimentTracking",
    "ExperimentTrackingArgs",
    "TrackingServerSize",
    "server_statements",
    "tracking_server_arn",
    "tracking_use_statements",
]
