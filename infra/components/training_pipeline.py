"""The SageMaker training pipeline of one environment.

Each step script is uploaded with the modules it imports, as a content-addressed
bundle (`pipeline-code/<sha256>/<file>`, the hash over every file of the bundle,
ml/pipeline/code.py), so a code change is a new prefix that Pulumi, SageMaker's
step cache and the audit trail all see, while an unchanged commit re-deploys
as a no-op. The definition itself is built by `ml.pipeline` with the
sagemaker SDK, offline and byte-for-byte deterministic, once the role, bucket
and key ARNs are known.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.settings import PipelineSettings
from ml.pipeline.code import BUNDLES, bundle_objects, code_uris
from ml.pipeline.contract import PipelineConfig, TrainerConfig
from ml.pipeline.definition import definition_json


@dataclass(frozen=True)
class TrainingPipelineArgs:
    pipeline_name: str
    region: str
    role_arn: pulumi.Input[str]
    data_bucket: pulumi.Input[str]
    artifacts_bucket: pulumi.Input[str]
    kms_key_arn: pulumi.Input[str]
    model_package_group_name: pulumi.Input[str]
    training_image_uri: str
    inference_instance_type: str
    settings: PipelineSettings
    tags: Mapping[str, str]
    commit: str | None = None
    """The commit the stack is deployed from (the runs' lineage)."""
    mlflow_tracking_arn: str | None = None
    """The environment's MLflow tracking server (known at preview); None: runs not tracked."""
    mlflow_experiment: str | None = None
    waits_for: Sequence[pulumi.Resource] = ()
    """Resources the pipeline needs to exist first (the execution role), when the inputs
    above are plain names and ARNs so that the definition is known at preview time."""


def render_definition(args: TrainingPipelineArgs, resolved: list[str]) -> str:
    role_arn, data_bucket, artifacts_bucket, kms_key_arn, group = resolved
    settings = args.settings
    return definition_json(
        PipelineConfig(
            name=args.pipeline_name,
            role_arn=role_arn,
            region=args.region,
            data_bucket=data_bucket,
            artifacts_bucket=artifacts_bucket,
            training_image_uri=args.training_image_uri,
            code_uris=code_uris(artifacts_bucket),
            model_package_group=group,
            processing_instance_type=settings.processing_instance_type,
            training_instance_type=settings.training_instance_type,
            approval_metric=settings.approval_metric,
            metric_threshold=settings.metric_threshold,
            baseline_margin=settings.baseline_margin,
            champion_tolerance=settings.champion_tolerance,
            conflicts=settings.conflicts,
            trainer=TrainerConfig(**settings.trainer.model_dump()),
            cache_expire_after=settings.cache_expire_after,
            kms_key_arn=kms_key_arn,
            inference_instance_types=(args.inference_instance_type,),
            commit=args.commit,
            mlflow_tracking_arn=args.mlflow_tracking_arn,
            mlflow_experiment=args.mlflow_experiment,
        )
    )


def _code_object_name(component: str, script: str, key: str) -> str:
    """`<component>-code-<script>` for a script, `...-<script>-<module>` for its modules."""
    stem, module = script.removesuffix(".py"), key.rsplit("/", 1)[-1].removesuffix(".py")
    return f"{component}-code-{stem}" if module == stem else f"{component}-code-{stem}-{module}"


class TrainingPipeline(pulumi.ComponentResource):
    pipeline: aws.sagemaker.Pipeline
    definition: pulumi.Output[str]

    def __init__(
        self, name: str, args: TrainingPipelineArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("promote:sagemaker:TrainingPipeline", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        code = [
            aws.s3.BucketObjectv2(
                _code_object_name(name, script, key),
                bucket=args.artifacts_bucket,
                key=key,
                # Relative to the working directory (the project directory under Pulumi), so
                # the inputs do not depend on where the repository is cloned.
                source=pulumi.FileAsset(os.path.relpath(path)),
                server_side_encryption="aws:kms",
                kms_key_id=args.kms_key_arn,
                tags=dict(args.tags),
                opts=child,
            )
            for script in sorted(BUNDLES)
            for key, path in sorted(bundle_objects(script).items())
        ]
        self.definition = pulumi.Output.all(
            args.role_arn,
            args.data_bucket,
            args.artifacts_bucket,
            args.kms_key_arn,
            args.model_package_group_name,
        ).apply(lambda resolved: render_definition(args, resolved))
        self.pipeline = aws.sagemaker.Pipeline(
            f"{name}-pipeline",
            pipeline_name=args.pipeline_name,
            pipeline_display_name=args.pipeline_name,
            pipeline_description="preprocess, train, evaluate, register, check accuracy, approve",
            role_arn=args.role_arn,
            pipeline_definition=self.definition,
            tags=dict(args.tags),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*code, *args.waits_for]),
        )
        self.register_outputs({"pipeline_name": self.pipeline.pipeline_name})
