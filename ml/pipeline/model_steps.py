"""The builders of train-model and register-model: the training job and the model package.

train-model runs the image's `train` entrypoint on the preprocessed splits;
register-model registers its artifact in the stack's model package group with the
evaluation report, the run's lineage and the drift baseline attached. Import only under
`isolated_sdk` (the SDK); `ml.pipeline.steps` imports this module for its `@_builds`
registrations.
"""

from __future__ import annotations

from typing import Any

from sagemaker.core.drift_check_baselines import DriftCheckBaselines
from sagemaker.core.model_metrics import MetricsSource, ModelMetrics
from sagemaker.core.shapes import MetricDefinition
from sagemaker.core.training.configs import Compute, InputData, OutputDataConfig, StoppingCondition
from sagemaker.core.workflow.functions import Join
from sagemaker.mlops.workflow import ModelStep, TrainingStep
from sagemaker.serve.model_builder import ModelBuilder
from sagemaker.train.model_trainer import ModelTrainer

from ml.lineage.keys import METADATA_KEYS
from ml.pipeline.contract import (
    DRIFT_BASELINE_FILE,
    REGISTER_STEP,
    SUMMARY_JSON_PATH,
    TRAIN_STEP,
    TRAINING_MAX_RUNTIME_SECONDS,
    lineage_json_path,
)
from ml.pipeline.wiring import Wiring, _builds


@_builds(TRAIN_STEP)
def _train(w: Wiring) -> Any:
    """The image's `train` entrypoint runs code/train.py."""
    cfg = w.cfg
    trainer = ModelTrainer(
        training_image=cfg.training_image_uri,
        role=cfg.role_arn,
        base_job_name="train",
        sagemaker_session=w.session,
        compute=Compute(
            instance_type=cfg.training_instance_type,
            instance_count=1,
            volume_size_in_gb=30,
            volume_kms_key_id=cfg.kms_key_arn,
        ),
        stopping_condition=StoppingCondition(max_runtime_in_seconds=TRAINING_MAX_RUNTIME_SECONDS),
        environment=w.run_environment(),
        output_data_config=OutputDataConfig(
            s3_output_path=f"s3://{cfg.artifacts_bucket}/pipelines/{cfg.name}/models",
            kms_key_id=cfg.kms_key_arn,
        ),
        hyperparameters={
            # HyperParameters are strings in the training API.
            **{name: parameter.to_string() for name, parameter in w.hyperparameters.items()},
            "trainer": cfg.trainer.name,
        },
    ).with_metric_definitions(
        # train.py prints one "name=value" line per metric.
        [
            MetricDefinition(name=name, regex=f"{name}=([0-9.eE+-]+)")
            for name in ("train_accuracy", "validation_accuracy", "notes_per_second")
        ]
    )
    return TrainingStep(
        name=TRAIN_STEP,
        step_args=trainer.train(
            input_data_config=[
                InputData(channel_name="train", data_source=w.preprocessed("train")),
                InputData(channel_name="validation", data_source=w.preprocessed("validation")),
                InputData(channel_name="code", data_source=cfg.code_uris["train.py"]),
            ]
        ),
        cache_config=w.cache,
    )


@_builds(REGISTER_STEP)
def _register(w: Wiring) -> Any:
    """This stack's model package group, the evaluation report attached as metrics.

    The package carries the run's lineage (CustomerMetadataProperties: every
    ml.lineage.METADATA_KEYS fact, read from the report's `lineage` block), the
    report's verdict in words as its description (so a candidate accuracy-check
    leaves pending says why), and the drift baseline the monitor compares with.
    """
    cfg = w.cfg
    builder = ModelBuilder(
        image_uri=cfg.training_image_uri,
        s3_model_data_url=w.model_data(),
        role_arn=cfg.role_arn,
        sagemaker_session=w.session,
        # The default {"auto": True} makes the builder upload code at build time.
        dependencies=None,
    )
    return ModelStep(
        name=REGISTER_STEP,
        step_args=builder.register(
            model_package_group_name=cfg.model_package_group,
            content_types=["text/csv", "application/json"],
            response_types=["application/json", "text/csv"],
            inference_instances=list(cfg.inference_instance_types),
            transform_instances=list(cfg.inference_instance_types),
            approval_status="PendingManualApproval",
            model_metrics=ModelMetrics(
                model_statistics=MetricsSource(
                    content_type="application/json", s3_uri=w.report_uri()
                )
            ),
            description=w.report_value(SUMMARY_JSON_PATH),
            customer_metadata_properties={
                key: w.report_value(lineage_json_path(key)) for key in METADATA_KEYS
            },
            drift_check_baselines=DriftCheckBaselines(
                model_data_statistics=MetricsSource(
                    content_type="application/json",
                    s3_uri=Join(on="/", values=[w.evaluation_uri(), DRIFT_BASELINE_FILE]),
                )
            ),
        ),
    )
