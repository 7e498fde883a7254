"""An environment stack (dev, staging, prod): storage, identity, pipeline, deployer, network."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.components.access_logs import AccessLogBucket, AccessLogBucketArgs
from infra.components.drift_monitor import DriftMonitor, DriftMonitorArgs
from infra.components.execution_role import ExecutionRoleArgs, SageMakerExecutionRole
from infra.components.experiment_tracking import (
    ExperimentTracking,
    ExperimentTrackingArgs,
)
from infra.components.model_deployer import ModelDeployer, ModelDeployerArgs
from infra.components.private_network import FlowLogsArgs, PrivateNetwork, PrivateNetworkArgs
from infra.components.retraining_schedule import RetrainingSchedule, RetrainingScheduleArgs
from infra.components.secure_bucket import (
    ARTIFACTS_LIFECYCLE_RULES,
    DATA_CAPTURE_PREFIX,
    SecureBucket,
    SecureBucketArgs,
)
from infra.components.studio import Studio, StudioArgs
from infra.components.training_pipeline import TrainingPipeline, TrainingPipelineArgs
from infra.context import IMAGE_NAMES, StackContext
from infra.deploy_permissions import boundary_arn
from infra.images import resolve_image
from infra.promotion import VERIFICATION, gate
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


def build_workspace(settings: EnvironmentSettings, ctx: StackContext, base: Foundation) -> None:
    """Optional VPC and Studio domain for notebooks."""
    if not settings.network.enabled:
        return
    account = settings.accounts.for_stack(ctx.stack)
    zones = aws.get_availability_zones(state="available")
    network = PrivateNetwork(
        f"{ctx.prefix}-network",
        PrivateNetworkArgs(
            cidr=settings.network.cidr,
            availability_zones=zones.names,
            nat_gateway=settings.network.nat_gateway,
            region=settings.region,
            tags=ctx.tags,
            flow_logs=FlowLogsArgs(
                account=account,
                kms_key_arn=base.key_arn,
                permissions_boundary=boundary_arn(ctx.project, ctx.stack, account),
            ),
        ),
    )
    if settings.studio.enabled:
        Studio(
            f"{ctx.prefix}-studio",
            StudioArgs(
                domain_name=f"{ctx.prefix}-studio",
                vpc_id=network.vpc.id,
                subnet_ids=[s.id for s in network.private_subnets],
                security_group_id=network.workload_security_group.id,
                execution_role_arn=base.execution.role.arn,
                kms_key_arn=base.key_arn,
                user_profiles=settings.studio.user_profiles,
                tags=ctx.tags,
            ),
        )


def request_gpu_quotas(settings: EnvironmentSettings, ctx: StackContext) -> None:
    for request in settings.gpu_quotas:
        quota = aws.servicequotas.get_service_quota(
            service_code="sagemaker", quota_name=request.quota_name
        )
        slug = f"{request.instance_type}-{request.usage}".replace(".", "-").replace(" ", "-")
        aws.servicequotas.ServiceQuota(
            f"{ctx.prefix}-quota-{slug}",
            service_code="sagemaker",
            quota_code=quota.quota_code,
            value=request.value,
        )


def stack_images(settings: EnvironmentSettings, ctx: StackContext) -> dict[str, str]:
    """The images this stack runs: its source stack's exact references, else this commit's."""
    repositories = {image: ctx.repository_name(image) for image in IMAGE_NAMES}
    if (source := settings.promotion.source_stack) is not None:
        passed = gate(
            f"{ctx.prefix}-promotion",
            ctx.stack,
            source,
            ctx.image_tag,
            repositories,
            ops_account=settings.accounts.ops,
            region=settings.region,
        )
        return passed.images
    return {
        image: resolve_image(settings.accounts.ops, settings.region, repository, ctx.image_tag)
        for image, repository in repositories.items()
    }


def build_environment(
    settings: EnvironmentSettings, ctx: StackContext
) -> dict[str, pulumi.Input[object]]:
    account = settings.accounts.for_stack(ctx.stack)
    region = settings.region
    names = Names.of(ctx, account)
    images = stack_images(settings, ctx)
    base = build_foundation(settings, ctx, names)
    build_workspace(settings, ctx, base)
    request_gpu_quotas(settings, ctx)

    training = TrainingPipeline(
        f"{ctx.prefix}-training",
        TrainingPipelineArgs(
            pipeline_name=names.pipeline,
            region=region,
            # Built from names the settings fix, so prod's definition is known at preview.
            role_arn=names.execution_role_arn(account),
            data_bucket=base.data.bucket.bucket,
            artifacts_bucket=base.artifacts.bucket.bucket,
            kms_key_arn=base.key_arn,
            model_package_group_name=base.group.model_package_group_name,
            training_image_uri=images["training"],
            inference_instance_type=settings.endpoint.instance_type,
            settings=settings.pipeline,
            tags=ctx.tags,
            commit=ctx.image_tag,
            mlflow_tracking_arn=base.tracking.arn if base.tracking else None,
            mlflow_experiment=base.tracking.experiment_name if base.tracking else None,
            waits_for=[base.execution, *([base.tracking] if base.tracking else [])],
        ),
    )
    deployer = ModelDeployer(
        f"{ctx.prefix}-deployer",
        ModelDeployerArgs(
            endpoint_name=names.endpoint,
            model_package_group_name=base.group.model_package_group_name,
            model_package_group_arn=base.group.arn,
            execution_role_arn=base.execution.role.arn,
            deployer_image_uri=images["deployer"],
            data_capture_s3_uri=pulumi.Output.concat(
                "s3://", base.artifacts.bucket.bucket, "/", DATA_CAPTURE_PREFIX.rstrip("/")
            ),
            kms_key_arn=base.key_arn,
            endpoint=settings.endpoint,
            account=account,
            region=region,
            tags=ctx.tags,
            permissions_boundary=names.boundary,
        ),
    )
    if settings.retraining.enabled:
        RetrainingSchedule(
            f"{ctx.prefix}-retraining",
            RetrainingScheduleArgs(
                schedule_name=f"{ctx.prefix}-retraining",
                role_name=f"{ctx.prefix}-retraining-scheduler",
                account=account,
                pipeline_name=names.pipeline,
                pipeline_arn=training.pipeline.arn,
                schedule_expression=settings.retraining.schedule_expression,
                timezone=settings.retraining.timezone,
                tags=ctx.tags,
                permissions_boundary=names.boundary,
            ),
        )

    monitor = None
    if settings.monitoring.enabled:
        monitoring = settings.monitoring
        monitor = DriftMonitor(
            # No "retrain" in the name: the retraining rule reads schedule names.
            f"{ctx.prefix}-drift",
            DriftMonitorArgs(
                name_prefix=ctx.prefix,
                account=account,
                region=region,
                endpoint_name=names.endpoint,
                model_package_group_name=names.model_package_group,
                pipeline_name=names.pipeline,
                pipeline_arn=training.pipeline.arn,
                artifacts_bucket=names.artifacts_bucket,
                kms_key_arn=base.key_arn,
                image_uri=images["training"],
                ops_repository_arn=ops_training_repository(settings, ctx),
                metric_namespace=f"{ctx.project}/{ctx.stack}/drift",
                tags=ctx.tags,
                instance_type=settings.pipeline.processing_instance_type,
                schedule_expression=monitoring.schedule_expression,
                timezone=monitoring.timezone,
                drift_threshold=monitoring.drift_threshold,
                min_records=monitoring.min_records,
                retrain_on_drift=monitoring.retrain_on_drift,
                retrain_min_interval_seconds=monitoring.retrain_min_interval_days * 86400,
                permissions_boundary=names.boundary,
            ),
        )

    outputs: dict[str, pulumi.Input[object]] = {
        "region": region,
        "account": account,
        "deployed_commit": ctx.image_tag,
        "images": images,
        "data_bucket_name": base.data.bucket.bucket,
        "artifacts_bucket_name": base.artifacts.bucket.bucket,
        "kms_key_arn": base.key_arn,
        "execution_role_arn": base.execution.role.arn,
        "model_package_group_name": base.group.model_package_group_name,
        "training_image_uri": images["training"],
        "deployer_image_uri": images["deployer"],
        "pipeline_name": training.pipeline.pipeline_name,
        "endpoint_name": names.endpoint,
        "deployer_environment": deployer.environment,
    }
    if base.tracking is not None:
        outputs["mlflow_tracking_arn"] = base.tracking.arn
        outputs["mlflow_experiment"] = base.tracking.experiment_name
        outputs["mlflow_ui_url"] = base.tracking.ui_url
    if monitor is not None:
        outputs["drift_alarm_name"] = monitor.alarm.name
        outputs["drift_report_s3_uri"] = monitor.report_s3_uri
    if ctx.verification is not None:
        outputs[VERIFICATION] = dict(ctx.verification)
    return outputs
