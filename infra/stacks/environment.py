"""An environment stack (dev, staging, prod): storage, identity, registry, images, network."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from infra.components.execution_role import ExecutionRoleArgs, SageMakerExecutionRole
from infra.components.private_network import PrivateNetwork, PrivateNetworkArgs
from infra.components.retraining_schedule import RetrainingSchedule, RetrainingScheduleArgs
from infra.components.secure_bucket import SecureBucket, SecureBucketArgs
from infra.components.studio import Studio, StudioArgs
from infra.components.training_pipeline import TrainingPipeline, TrainingPipelineArgs
from infra.context import IMAGE_NAMES, StackContext
from infra.images import resolve_image
from infra.promotion import check_promotion, source_commit
from infra.settings import EnvironmentSettings


def names(ctx: StackContext, account: str) -> dict[str, str]:
    """Physical names, derived from project, stack and account so stacks never collide."""
    return {
        "data_bucket": f"{ctx.prefix}-data-{account}",
        "artifacts_bucket": f"{ctx.prefix}-artifacts-{account}",
        "execution_role": f"{ctx.prefix}-sagemaker-execution",
        "model_package_group": f"{ctx.prefix}-models",
        "pipeline": f"{ctx.prefix}-training",
        "endpoint": f"{ctx.prefix}-endpoint",
    }


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


def build_environment(
    settings: EnvironmentSettings, ctx: StackContext
) -> dict[str, pulumi.Input[object]]:
    if (source := settings.promotion.source_stack) is not None:
        check_promotion(ctx.stack, source, ctx.image_tag, source_commit(source))
    account = settings.accounts.for_stack(ctx.stack)
    ops = settings.accounts.ops
    region = settings.region
    physical = names(ctx, account)
    tags = ctx.tags

    key = aws.kms.Key(
        f"{ctx.prefix}-key",
        description=f"Encrypts {ctx.prefix} data, artifacts, Studio and endpoint volumes",
        enable_key_rotation=True,
        deletion_window_in_days=30,
        tags=tags,
    )
    aws.kms.Alias(f"{ctx.prefix}-key-alias", name=f"alias/{ctx.prefix}", target_key_id=key.key_id)
    data = SecureBucket(
        f"{ctx.prefix}-data",
        SecureBucketArgs(bucket_name=physical["data_bucket"], kms_key_arn=key.arn, tags=tags),
    )
    artifacts = SecureBucket(
        f"{ctx.prefix}-artifacts",
        SecureBucketArgs(bucket_name=physical["artifacts_bucket"], kms_key_arn=key.arn, tags=tags),
    )
    repositories = {image: ctx.repository_name(image) for image in IMAGE_NAMES}
    execution = SageMakerExecutionRole(
        f"{ctx.prefix}-execution",
        ExecutionRoleArgs(
            role_name=physical["execution_role"],
            account=account,
            region=region,
            bucket_arns=[data.bucket.arn, artifacts.bucket.arn],
            kms_key_arn=key.arn,
            ops_repository_arns=[
                f"arn:aws:ecr:{region}:{ops}:repository/{repositories['training']}"
            ],
            model_package_group_name=physical["model_package_group"],
            pipeline_name=physical["pipeline"],
            tags=tags,
        ),
    )
    group = aws.sagemaker.ModelPackageGroup(
        f"{ctx.prefix}-models",
        model_package_group_name=physical["model_package_group"],
        model_package_group_description=f"Models trained by the {ctx.stack} pipeline",
        tags=tags,
    )
    images = {
        image: resolve_image(ops, region, repository, ctx.image_tag)
        for image, repository in repositories.items()
    }

    if settings.network.enabled:
        zones = aws.get_availability_zones(state="available")
        network = PrivateNetwork(
            f"{ctx.prefix}-network",
            PrivateNetworkArgs(
                cidr=settings.network.cidr,
                availability_zones=zones.names,
                nat_gateway=settings.network.nat_gateway,
                region=region,
                tags=tags,
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
                    execution_role_arn=execution.role.arn,
                    kms_key_arn=key.arn,
                    user_profiles=settings.studio.user_profiles,
                    tags=tags,
                ),
            )
    request_gpu_quotas(settings, ctx)

    training = TrainingPipeline(
        f"{ctx.prefix}-training",
        TrainingPipelineArgs(
            pipeline_name=physical["pipeline"],
            region=region,
            role_arn=execution.role.arn,
            data_bucket=data.bucket.bucket,
            artifacts_bucket=artifacts.bucket.bucket,
            kms_key_arn=key.arn,
            model_package_group_name=group.model_package_group_name,
            training_image_uri=images["training"],
            inference_instance_type=settings.endpoint.instance_type,
            settings=settings.pipeline,
            tags=tags,
        ),
    )
    if settings.retraining.enabled:
        RetrainingSchedule(
            f"{ctx.prefix}-retraining",
            RetrainingScheduleArgs(
                schedule_name=f"{ctx.prefix}-retraining",
                role_name=f"{ctx.prefix}-retraining-scheduler",
                account=account,
                pipeline_name=physical["pipeline"],
                pipeline_arn=training.pipeline.arn,
                schedule_expression=settings.retraining.schedule_expression,
                timezone=settings.retraining.timezone,
                kms_key_arn=key.arn,
                tags=tags,
            ),
        )

    return {
        "region": region,
        "account": account,
        "deployed_commit": ctx.image_tag,
        "data_bucket_name": data.bucket.bucket,
        "artifacts_bucket_name": artifacts.bucket.bucket,
        "kms_key_arn": key.arn,
        "execution_role_arn": execution.role.arn,
        "model_package_group_name": group.model_package_group_name,
        "training_image_uri": images["training"],
        "deployer_image_uri": images["deployer"],
        "endpoint_name": physical["endpoint"],
        "pipeline_name": training.pipeline.pipeline_name,
    }
