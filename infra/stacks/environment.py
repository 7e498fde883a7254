"""An environment stack (dev, staging, prod): on its foundation (`infra.stacks.foundation`:
storage, key, execution role, tracking), the optional network and Studio, GPU quotas, the
images it runs, the pipeline, the deployer, retraining, drift monitoring and its outputs."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from infra.components.drift_monitor import DriftMonitor, DriftMonitorArgs
from infra.components.model_deployer import ModelDeployer, ModelDeployerArgs
from infra.components.private_network import FlowLogsArgs, PrivateNetwork, PrivateNetworkArgs
from infra.components.retraining_schedule import RetrainingSchedule, RetrainingScheduleArgs
from infra.components.secure_bucket import DATA_CAPTURE_PREFIX
from infra.components.studio import Studio, StudioArgs
from infra.components.training_pipeline import TrainingPipeline, TrainingPipelineArgs
from infra.context import IMAGE_NAMES, StackContext
from infra.deploy_permissions import boundary_arn
from infra.images import resolve_image
from infra.promotion import VERIFICATION, gate
from infra.settings import EnvironmentSettings
from infra.stacks.foundation import Foundation, Names, build_foundation, ops_training_repository


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
