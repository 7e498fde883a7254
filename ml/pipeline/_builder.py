"""The pipeline's steps, written with the sagemaker SDK (v3). Import only under `offline_sdk`.

The SDK has import-time side effects (see `ml.pipeline.sdk_offline`), so this
module is imported by `ml.pipeline.definition` inside that context, never at
the top of another module.
"""

from __future__ import annotations

from typing import Any

import boto3
from sagemaker.core.model_metrics import MetricsSource, ModelMetrics
from sagemaker.core.processing import Processor
from sagemaker.core.shapes import (
    MetricDefinition,
    ProcessingInput,
    ProcessingOutput,
    ProcessingS3Input,
    ProcessingS3Output,
)
from sagemaker.core.training.configs import (
    Compute,
    InputData,
    OutputDataConfig,
    StoppingCondition,
)
from sagemaker.core.workflow.conditions import (
    ConditionGreaterThanOrEqualTo,
)
from sagemaker.core.workflow.execution_variables import ExecutionVariables
from sagemaker.core.workflow.functions import Join, JsonGet
from sagemaker.core.workflow.parameters import (
    ParameterFloat,
    ParameterInteger,
    ParameterString,
)
from sagemaker.core.workflow.properties import PropertyFile
from sagemaker.mlops.workflow import (
    CacheConfig,
    ConditionStep,
    ModelStep,
    Pipeline,
    ProcessingStep,
    TrainingStep,
)
from sagemaker.serve.model_builder import ModelBuilder
from sagemaker.train.model_trainer import ModelTrainer

from ml.pipeline.definition import (
    ACCURACY_JSON_PATH,
    APPROVE_STEP,
    CODE_DIR,
    CONDITION_STEP,
    EVALUATE_STEP,
    EVALUATION_FILE,
    PARAM_ACCURACY_THRESHOLD,
    PARAM_BATCH_SIZE,
    PARAM_EPOCHS,
    PARAM_INPUT_DATA,
    PARAM_LEARNING_RATE,
    PREPROCESS_STEP,
    PROCESSING_MAX_RUNTIME_SECONDS,
    PROCESSING_ROOT,
    PROPERTY_FILE,
    REGISTER_STEP,
    TRAIN_STEP,
    TRAINING_MAX_RUNTIME_SECONDS,
    PipelineConfig,
)
from ml.pipeline.sdk_offline import pipeline_session


def build(cfg: PipelineConfig, boto_session: boto3.Session) -> Pipeline:
    """The pipeline for `cfg` on an offline boto session (see `definition.build_pipeline`)."""
    session = pipeline_session(boto_session, cfg.artifacts_bucket)
    cache = CacheConfig(enable_caching=True, expire_after=cfg.cache_expire_after)

    input_data = ParameterString(PARAM_INPUT_DATA, default_value=cfg.input_data_uri)
    epochs = ParameterInteger(PARAM_EPOCHS, default_value=cfg.epochs)
    batch_size = ParameterInteger(PARAM_BATCH_SIZE, default_value=cfg.batch_size)
    learning_rate = ParameterFloat(PARAM_LEARNING_RATE, default_value=cfg.learning_rate)
    threshold = ParameterFloat(PARAM_ACCURACY_THRESHOLD, default_value=cfg.accuracy_threshold)

    def output_uri(step: str, output: str) -> Any:
        # Per execution, so concurrent runs never read each other's files.
        return Join(
            on="/",
            values=[
                "s3:/",
                cfg.artifacts_bucket,
                "pipelines",
                cfg.name,
                ExecutionVariables.PIPELINE_EXECUTION_ID,
                step,
                output,
            ],
        )

    def processor(script: str, env: dict[str, str] | None = None) -> Any:
        return Processor(
            role=cfg.role_arn,
            image_uri=cfg.training_image_uri,
            instance_count=1,
            instance_type=cfg.processing_instance_type,
            entrypoint=["python3", f"{CODE_DIR}/{script}"],
            volume_kms_key=cfg.kms_key_arn,
            output_kms_key=cfg.kms_key_arn,
            max_runtime_in_seconds=PROCESSING_MAX_RUNTIME_SECONDS,
            base_job_name=script.removesuffix(".py"),
            sagemaker_session=session,
            env=env,
        )

    def s3_input(name: str, uri: Any, local_path: str) -> Any:
        return ProcessingInput(
            input_name=name,
            s3_input=ProcessingS3Input(
                s3_uri=uri,
                local_path=local_path,
                s3_data_type="S3Prefix",
                s3_input_mode="File",
                s3_data_distribution_type="FullyReplicated",
            ),
        )

    def code_input(script: str) -> Any:
        return s3_input("code", cfg.code_uris[script], CODE_DIR)

    def s3_output(step: str, name: str) -> Any:
        return ProcessingOutput(
            output_name=name,
            s3_output=ProcessingS3Output(
                s3_uri=output_uri(step, name),
                local_path=f"{PROCESSING_ROOT}/output/{name}",
                s3_upload_mode="EndOfJob",
            ),
        )

    # 1. preprocess-data: clean, encode labels, split (keeps an upload's split).
    # Never cached: its dataset input is a fixed prefix (InputDataUri), so a cache
    # hit would reuse last run's split after the data under it changed. Its
    # outputs are per execution, so the cached steps downstream then miss too.
    preprocess = ProcessingStep(
        name=PREPROCESS_STEP,
        step_args=processor("preprocess.py").run(
            inputs=[
                code_input("preprocess.py"),
                s3_input("dataset", input_data, f"{PROCESSING_ROOT}/input/data"),
            ],
            outputs=[
                s3_output(PREPROCESS_STEP, split) for split in ("train", "validation", "test")
            ],
            arguments=[
                "--input-dir",
                f"{PROCESSING_ROOT}/input/data",
                "--output-dir",
                f"{PROCESSING_ROOT}/output",
            ],
        ),
    )

    def preprocessed(split: str) -> Any:
        return preprocess.properties.ProcessingOutputConfig.Outputs[split].S3Output.S3Uri

    # 2. train-model: the image's `train` entrypoint runs code/train.py.
    trainer = ModelTrainer(
        training_image=cfg.training_image_uri,
        role=cfg.role_arn,
        base_job_name="train",
        sagemaker_session=session,
        compute=Compute(
            instance_type=cfg.training_instance_type,
            instance_count=1,
            volume_size_in_gb=30,
            volume_kms_key_id=cfg.kms_key_arn,
        ),
        stopping_condition=StoppingCondition(max_runtime_in_seconds=TRAINING_MAX_RUNTIME_SECONDS),
        output_data_config=OutputDataConfig(
            s3_output_path=f"s3://{cfg.artifacts_bucket}/pipelines/{cfg.name}/models",
            kms_key_id=cfg.kms_key_arn,
        ),
        hyperparameters={
            # HyperParameters are strings in the training API.
            "epochs": epochs.to_string(),
            "batch-size": batch_size.to_string(),
            "learning-rate": learning_rate.to_string(),
            "trainer": "tfidf-linear",
        },
    ).with_metric_definitions(
        # train.py prints one "name=value" line per metric.
        [
            MetricDefinition(name=name, regex=f"{name}=([0-9.eE+-]+)")
            for name in ("train_accuracy", "validation_accuracy", "notes_per_second")
        ]
    )

    train = TrainingStep(
        name=TRAIN_STEP,
        step_args=trainer.train(
            input_data_config=[
                InputData(channel_name="train", data_source=preprocessed("train")),
                InputData(channel_name="validation", data_source=preprocessed("validation")),
                InputData(channel_name="code", data_source=cfg.code_uris["train.py"]),
            ]
        ),
        cache_config=cache,
    )
    model_data = train.properties.ModelArtifacts.S3ModelArtifacts

    # 3. evaluate-model: held-out test split -> evaluation.json (a PropertyFile).
    report = PropertyFile(name=PROPERTY_FILE, output_name="evaluation", path=EVALUATION_FILE)
    evaluate = ProcessingStep(
        name=EVALUATE_STEP,
        step_args=processor("evaluate.py").run(
            inputs=[
                code_input("evaluate.py"),
                s3_input("model", model_data, f"{PROCESSING_ROOT}/input/model"),
                s3_input("test", preprocessed("test"), f"{PROCESSING_ROOT}/input/test"),
            ],
            outputs=[s3_output(EVALUATE_STEP, "evaluation")],
            arguments=[
                "--model-dir",
                f"{PROCESSING_ROOT}/input/model",
                "--test-dir",
                f"{PROCESSING_ROOT}/input/test",
                "--output-dir",
                f"{PROCESSING_ROOT}/output/evaluation",
            ],
        ),
        property_files=[report],
        cache_config=cache,
    )
    report_uri = Join(
        on="/",
        values=[
            evaluate.properties.ProcessingOutputConfig.Outputs["evaluation"].S3Output.S3Uri,
            EVALUATION_FILE,
        ],
    )

    # 4. register-model: this stack's model package group, metrics attached.
    builder = ModelBuilder(
        image_uri=cfg.training_image_uri,
        s3_model_data_url=model_data,
        role_arn=cfg.role_arn,
        sagemaker_session=session,
        # The default {"auto": True} makes the builder upload code at build time.
        dependencies=None,
    )
    register = ModelStep(
        name=REGISTER_STEP,
        step_args=builder.register(
            model_package_group_name=cfg.model_package_group,
            content_types=["text/csv", "application/json"],
            response_types=["application/json"],
            inference_instances=list(cfg.inference_instance_types),
            transform_instances=list(cfg.inference_instance_types),
            approval_status="PendingManualApproval",
            model_metrics=ModelMetrics(
                model_statistics=MetricsSource(content_type="application/json", s3_uri=report_uri)
            ),
        ),
    )

    # 6. approve-model: a processing job with the training image (boto3 inside).
    approve = ProcessingStep(
        name=APPROVE_STEP,
        step_args=processor("approve.py", env={"AWS_DEFAULT_REGION": cfg.region}).run(
            inputs=[code_input("approve.py")],
            arguments=[
                "--model-package-arn",
                register.properties.ModelPackageArn,
                "--evaluation-report",
                report_uri,
            ],
        ),
    )

    # 5. accuracy-check: accuracy from the PropertyFile >= the threshold parameter.
    check = ConditionStep(
        name=CONDITION_STEP,
        depends_on=[register],
        conditions=[
            ConditionGreaterThanOrEqualTo(
                left=JsonGet(
                    step_name=EVALUATE_STEP, property_file=report, json_path=ACCURACY_JSON_PATH
                ),
                right=threshold,
            )
        ],
        if_steps=[approve],
        else_steps=[],
    )

    return Pipeline(
        name=cfg.name,
        parameters=[input_data, epochs, batch_size, learning_rate, threshold],
        steps=[preprocess, train, evaluate, register, check],
        sagemaker_session=session,
        pipeline_experiment_config=None,
    )
