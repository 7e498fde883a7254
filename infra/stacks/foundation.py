"""What the ML parts of an environment stack are built on: its physical names, data key,
buckets (with their access-log bucket), MLflow tracking server, SageMaker execution role
and model package group."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.components.access_logs import AccessLogBucket, AccessLogBucketArgs
from infra.components.execution_role import ExecutionRoleArgs, SageMakerExecutionRole
from infra.components.experiment_tracking import (
    ExperimentTracking,
    ExperimentTrackingArgs,
)
from infra.components.secure_bucket import (
    ARTIFACTS_LIFECYCLE_RULES,
    SecureBucket,
    SecureBucketArgs,
)
from infra.context import StackContext
from infra.deploy_permissions import boundary_arn
from infra.settings import EnvironmentSettings
from infra.stacks.identity import data_key_alias


@dataclass(frozen=True)
class Names:
    """Physical names, derived from project, stack and account so stacks never collide."""

    data_bucket: str
    artifacts_bucket: str
    access_logs_bucket: str
    execution_role: str
    model_package_group: str
    pipeline: str
    endpoint: str
    tracking_server: str
    boundary: str
    """ARN of the permissions boundary (made by the ops stack) every role here carries."""

    def execution_role_arn(self, account: str) -> str:
        return f"arn:aws:iam::{account}:role/{self.execution_role}"

    @classmethod
    def of(cls, ctx: StackContext, account: str) -> Names:
        return cls(
            data_bucket=f"{ctx.prefix}-data-{account}",
            artifacts_bucket=f"{ctx.prefix}-artifacts-{account}",
            access_logs_bucket=f"{ctx.prefix}-access-logs-{account}",
            execution_role=f"{ctx.prefix}-sagemaker-execution",
            model_package_group=f"{ctx.prefix}-models",
            pipeline=f"{ctx.prefix}-training",
            endpoint=f"{ctx.prefix}-endpoint",
            tracking_server=f"{ctx.prefix}-mlflow",
            boundary=boundary_arn(ctx.project, ctx.stack, account),
        )


@dataclass(frozen=True)
class Foundation:
    """What the ML parts of the stack are built on."""

    key_arn: str
    """The stack's data key (made by the identity bootstrap), known at preview time."""
    data: SecureBucket
    artifacts: SecureBucket
    execution: SageMakerExecutionRole
    group: aws.sagemaker.ModelPackageGroup
    tracking: ExperimentTracking | None


def data_key_arn(ctx: StackContext) -> str:
    """The ARN of the stack's data key, looked up by its alias (known at preview time)."""
    alias = data_key_alias(ctx.project, ctx.stack)
    try:
        return str(aws.kms.get_key(key_id=alias).arn)
    except Exception as error:
        if "NotFoundException" not in str(error):
            raise
        raise pulumi.RunError(
            f"the {ctx.stack} account has no KMS key {alias}: the identity bootstrap makes it; "
            "run `pulumi up --stack identity` with administrator credentials first"
        ) from None


def ops_training_repository(settings: EnvironmentSettings, ctx: StackContext) -> str:
    """The ARN of the ops repository of the training image (what the jobs pull)."""
    repository = ctx.repository_name("training")
    return f"arn:aws:ecr:{settings.region}:{settings.accounts.ops}:repository/{repository}"


def build_foundation(settings: EnvironmentSettings, ctx: StackContext, names: Names) -> Foundation:
    account = settings.accounts.for_stack(ctx.stack)
    tags = ctx.tags
    key = data_key_arn(ctx)
    logs = AccessLogBucket(
        f"{ctx.prefix}-access-logs",
        AccessLogBucketArgs(
            bucket_name=names.access_logs_bucket,
            account=account,
            source_buckets=[names.data_bucket, names.artifacts_bucket],
            tags=tags,
        ),
    )
    data = SecureBucket(
        f"{ctx.prefix}-data",
        SecureBucketArgs(
            bucket_name=names.data_bucket,
            kms_key_arn=key,
            tags=tags,
            access_log=logs.target(names.data_bucket),
        ),
    )
    artifacts = SecureBucket(
        f"{ctx.prefix}-artifacts",
        SecureBucketArgs(
            bucket_name=names.artifacts_bucket,
            kms_key_arn=key,
            tags=tags,
            access_log=logs.target(names.artifacts_bucket),
            lifecycle_rules=ARTIFACTS_LIFECYCLE_RULES,
        ),
    )
    tracking = None
    if settings.tracking.enabled:
        tracking = ExperimentTracking(
            names.tracking_server,
            ExperimentTrackingArgs(
                tracking_server_name=names.tracking_server,
                role_name=f"{ctx.prefix}-mlflow-server",
                account=account,
                region=settings.region,
                artifacts_bucket=artifacts.bucket.bucket,
                kms_key_arn=key,
                experiment_name=ctx.prefix,
                tags=tags,
                size=settings.tracking.size,
                permissions_boundary=names.boundary,
            ),
        )
    execution = SageMakerExecutionRole(
        f"{ctx.prefix}-execution",
        ExecutionRoleArgs(
            role_name=names.execution_role,
            account=account,
            region=settings.region,
            bucket_arns=[data.bucket.arn, artifacts.bucket.arn],
            kms_key_arn=key,
            ops_repository_arns=[ops_training_repository(settings, ctx)],
            model_package_group_name=names.model_package_group,
            pipeline_name=names.pipeline,
            tags=tags,
            permissions_boundary=names.boundary,
            mlflow_tracking_arn=tracking.arn if tracking else None,
        ),
    )
    group = aws.sagemaker.ModelPackageGroup(
        f"{ctx.prefix}-models",
        model_package_group_name=names.model_package_group,
        model_package_group_description=f"Models trained by the {ctx.stack} pipeline",
        tags=tags,
    )
    return Foundation(key, data, artifacts, execution, group, tracking)
