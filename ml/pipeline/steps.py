"""The pipeline's steps, built with the sagemaker SDK (v3). Import only under `isolated_sdk`.

One builder per step of `ml.pipeline.contract.STEPS`, registered under the
step's name; `build` calls them in the contract's order, so a step declared
there without a builder here (or the reverse) fails every build.

The SDK has import-time side effects (see `ml.pipeline.sdk_isolation`), so this
module is imported by `ml.pipeline.definition` inside that context, never at
the top of another module.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import boto3
from sagemaker.core.drift_check_baselines import DriftCheckBaselines
from sagemaker.core.model_metrics import MetricsSource, ModelMetrics
from sagemaker.core.processing import Processor
from sagemaker.core.shapes import (
    MetricDefinition,
    ProcessingInput,
    ProcessingOutput,
    ProcessingS3Input,
    ProcessingS3Output,
)
from sagemaker.core.shapes.shapes import MlflowConfig
from sagemaker.core.training.configs import (
    Compute,
    InputData,
    OutputDataConfig,
    StoppingCondition,
)
from sagemaker.core.workflow.conditions import (
    ConditionGreaterThanOrEqualTo,
    ConditionLessThanOrEqualTo,
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

from ml import limits
from ml.lineage import METADATA_KEYS
from ml.pipeline.contract import (
    APPROVE_STEP,
    CHAMPION_SHORTFALL_JSON_PATH,
    CODE_DIR,
    CONDITION_STEP,
    DRIFT_BASELINE_FILE,
    ENV_COMMIT,
    ENV_EXECUTION_ARN,
    ENV_EXPERIMENT,
    ENV_TRACKING_URI,
    ENV_TRAINING_IMAGE,
    EVALUATE_STEP,
    EVALUATION_FILE,
    HYPERPARAMETERS,
    PARAM_BASELINE_MARGIN,
    PARAM_CHAMPION_TOLERANCE,
    PARAM_CONFLICTS,
    PARAM_DELIMITER,
    PARAM_ENCODING,
    PARAM_INPUT_DATA,
    PARAM_METRIC_THRESHOLD,
    PREPROCESS_STEP,
    PROCESSING_MAX_RUNTIME_SECONDS,
    PROCESSING_ROOT,
    PROPERTY_FILE,
    REGISTER_STEP,
    STEP_NAMES,
    STEPS,
    SUMMARY_JSON_PATH,
    TRAIN_STEP,
    TRAINING_MAX_RUNTIME_SECONDS,
    PipelineConfig,
    baseline_margin_json_path,
    lineage_json_path,
    metric_json_path,
)
from ml.pipeline.sdk_isolation import pipeline_session

StepBuilder = Callable[["Wiring"], Any]


def _parameter(name: str, field: str, cfg: PipelineConfig) -> Any:
    """The pipeline parameter of a trainer hyperparameter, typed by its default's type."""
    default = getattr(cfg.trainer, field)
    if isinstance(default, bool) or not isinstance(default, int | float | str):
        raise TypeError(f"TrainerConfig.{field} must be an int, float or str")
    if isinstance(default, int):
        return ParameterInteger(name, default_value=default)
    if isinstance(default, float):
        return ParameterFloat(name, default_value=default)
    return ParameterString(name, default_value=default)


_BUILDERS: dict[str, StepBuilder] = {}


def _builds(name: str) -> Callable[[StepBuilder], StepBuilder]:
    """Register the decorated function as the builder of the contract step `name`."""

    def register(builder: StepBuilder) -> StepBuilder:
        _BUILDERS[name] = builder
        return builder

    return register


def build(cfg: PipelineConfig, boto_session: boto3.Session) -> Pipeline:
    """The pipeline for `cfg` on an isolated boto session (see `definition.build_pipeline`)."""
    if set(_BUILDERS) != set(STEP_NAMES):
        raise RuntimeError(
            f"ml/pipeline/contract.py declares the steps {sorted(STEP_NAMES)} but "
            f"ml/pipeline/steps.py builds {sorted(_BUILDERS)}: add or remove a @_builds function"
        )
    wiring = Wiring(cfg, boto_session)
    for step in STEPS:
        wiring.step(step.name)
    tracking = None
    if cfg.mlflow_tracking_arn is not None:
        tracking = MlflowConfig(
            mlflow_resource_arn=cfg.mlflow_tracking_arn,
            mlflow_experiment_name=cfg.mlflow_experiment,
        )
    return Pipeline(
        name=cfg.name,
        parameters=wiring.parameters,
        steps=[wiring.step(step.name) for step in STEPS if step.runs_if is None],
        sagemaker_session=wiring.session,
        pipeline_experiment_config=None,
        mlflow_config=tracking,
    )


class Wiring:
    """What the step builders share: config, session, parameters, and the steps built so far."""

    def __init__(self, cfg: PipelineConfig, boto_session: boto3.Session) -> None:
        self.cfg = cfg
        self.session = pipeline_session(boto_session, cfg.artifacts_bucket)
        self.cache = CacheConfig(enable_caching=True, expire_after=cfg.cache_expire_after)
        self.input_data = ParameterString(PARAM_INPUT_DATA, default_value=cfg.input_data_uri)
        self.conflicts = ParameterString(PARAM_CONFLICTS, default_value=cfg.conflicts)
        self.encoding = ParameterString(PARAM_ENCODING, default_value=limits.DEFAULT_ENCODING)
        self.delimiter = ParameterString(PARAM_DELIMITER, default_value=limits.DEFAULT_DELIMITER)
        self.hyperparameters = {
            hp.name: _parameter(hp.parameter, hp.field, cfg) for hp in HYPERPARAMETERS
        }
        self.threshold = ParameterFloat(PARAM_METRIC_THRESHOLD, default_value=cfg.metric_threshold)
        self.baseline_margin = ParameterFloat(
            PARAM_BASELINE_MARGIN, default_value=cfg.baseline_margin
        )
        self.champion_tolerance = ParameterFloat(
            PARAM_CHAMPION_TOLERANCE, default_value=cfg.champion_tolerance
        )
        self.report = PropertyFile(
            name=PROPERTY_FILE, output_name="evaluation", path=EVALUATION_FILE
        )
        self._steps: dict[str, Any] = {}
        self._report_uri: Any = None
        self._evaluation_uri: Any = None

    @property
    def parameters(self) -> list[Any]:
        return [
            self.input_data,
            self.conflicts,
            self.encoding,
            self.delimiter,
            *self.hyperparameters.values(),
            self.threshold,
            self.baseline_margin,
            self.champion_tolerance,
        ]

    def step(self, name: str) -> Any:
        """The SDK step `name`, built on first use (a step may reference one declared later)."""
        if name not in self._steps:
            self._steps[name] = _BUILDERS[name](self)
        return self._steps[name]

    def branch(self, condition: str) -> list[Any]:
        """The steps the contract places in the true branch of `condition`."""
        return [self.step(step.name) for step in STEPS if step.runs_if == condition]

    def run_environment(self) -> dict[str, Any]:
        """What the train and evaluate jobs log to MLflow with: where, and the run's lineage."""
        cfg = self.cfg
        env: dict[str, Any] = {
            ENV_TRAINING_IMAGE: cfg.training_image_uri,
            ENV_EXECUTION_ARN: ExecutionVariables.PIPELINE_EXECUTION_ARN,
            # The MLflow client (sagemaker-mlflow plugin) signs its calls for this region.
            "AWS_DEFAULT_REGION": cfg.region,
        }
        if cfg.commit is not None:
            env[ENV_COMMIT] = cfg.commit
        if cfg.mlflow_tracking_arn is not None:
            env[ENV_TRACKING_URI] = cfg.mlflow_tracking_arn
            env[ENV_EXPERIMENT] = cfg.mlflow_experiment
        return env

    def output_uri(self, step: str, output: str) -> Any:
        # Per execution, so concurrent runs never read each other's files.
        return Join(
            on="/",
            values=[
                "s3:/",
                self.cfg.artifacts_bucket,
                "pipelines",
                self.cfg.name,
                ExecutionVariables.PIPELINE_EXECUTION_ID,
                step,
                output,
            ],
        )

    def processor(self, script: str, env: dict[str, Any] | None = None) -> Any:
        cfg = self.cfg
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
            sagemaker_session=self.session,
            env=env,
        )

    def s3_input(self, name: str, uri: Any, local_path: str) -> Any:
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

    def code_input(self, script: str) -> Any:
        return self.s3_input("code", self.cfg.code_uris[script], CODE_DIR)

    def s3_output(self, step: str, name: str) -> Any:
        return ProcessingOutput(
            output_name=name,
            s3_output=ProcessingS3Output(
                s3_uri=self.output_uri(step, name),
                local_path=f"{PROCESSING_ROOT}/output/{name}",
                s3_upload_mode="EndOfJob",
            ),
        )

    def preprocessed(self, split: str) -> Any:
        outputs = self.step(PREPROCESS_STEP).properties.ProcessingOutputConfig.Outputs
        return outputs[split].S3Output.S3Uri

    def model_data(self) -> Any:
        return self.step(TRAIN_STEP).properties.ModelArtifacts.S3ModelArtifacts

    def evaluation_uri(self) -> Any:
        """The evaluate step's output prefix in S3 (its property: readers depend on the step)."""
        if self._evaluation_uri is None:
            outputs = self.step(EVALUATE_STEP).properties.ProcessingOutputConfig.Outputs
            self._evaluation_uri = outputs["evaluation"].S3Output.S3Uri
        return self._evaluation_uri

    def report_uri(self) -> Any:
        """The evaluate step's evaluation.json in S3 (one expression, shared by its readers)."""
        if self._report_uri is None:
            self._report_uri = Join(on="/", values=[self.evaluation_uri(), EVALUATION_FILE])
        return self._report_uri

    def report_value(self, json_path: str) -> Any:
        """A value of evaluation.json, read by the pipeline (SageMaker's JsonGet)."""
        return JsonGet(step_name=EVALUATE_STEP, property_file=self.report, json_path=json_path)


@_builds(PREPROCESS_STEP)
def _preprocess(w: Wiring) -> Any:
    """Clean, encode labels, split (keeps an upload's split).

    Never cached: its dataset input is a fixed prefix (InputDataUri), so a cache
    hit would reuse last run's split after the data under it changed. Its
    outputs are per execution, so the cached steps downstream then miss too.
    """
    return ProcessingStep(
        name=PREPROCESS_STEP,
        step_args=w.processor("preprocess.py").run(
            inputs=[
                w.code_input("preprocess.py"),
                w.s3_input("dataset", w.input_data, f"{PROCESSING_ROOT}/input/data"),
            ],
            outputs=[
                w.s3_output(PREPROCESS_STEP, split) for split in ("train", "validation", "test")
            ],
            arguments=[
                "--input-dir",
                f"{PROCESSING_ROOT}/input/data",
                "--output-dir",
                f"{PROCESSING_ROOT}/output",
                "--conflicts",
                w.conflicts,
                "--encoding",
                w.encoding,
                "--delimiter",
                w.delimiter,
            ],
        ),
    )


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


@_builds(EVALUATE_STEP)
def _evaluate(w: Wiring) -> Any:
    """Held-out test split -> evaluation.json (the `EvaluationReport` property file).

    The train split is an input for the drift baseline's vocabulary and the dataset
    hash; the group's approved champion is scored on the same test split.
    """
    return ProcessingStep(
        name=EVALUATE_STEP,
        step_args=w.processor("evaluate.py", env=w.run_environment()).run(
            inputs=[
                w.code_input("evaluate.py"),
                w.s3_input("model", w.model_data(), f"{PROCESSING_ROOT}/input/model"),
                w.s3_input("test", w.preprocessed("test"), f"{PROCESSING_ROOT}/input/test"),
                w.s3_input("train", w.preprocessed("train"), f"{PROCESSING_ROOT}/input/train"),
            ],
            outputs=[w.s3_output(EVALUATE_STEP, "evaluation")],
            arguments=[
                "--model-dir",
                f"{PROCESSING_ROOT}/input/model",
                "--test-dir",
                f"{PROCESSING_ROOT}/input/test",
                "--train-dir",
                f"{PROCESSING_ROOT}/input/train",
                "--output-dir",
                f"{PROCESSING_ROOT}/output/evaluation",
                "--metric",
                w.cfg.approval_metric,
                "--threshold",
                w.threshold.to_string(),
                "--baseline-margin",
                w.baseline_margin.to_string(),
                "--model-package-group",
                w.cfg.model_package_group,
                "--champion-tolerance",
                w.champion_tolerance.to_string(),
            ],
        ),
        property_files=[w.report],
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


@_builds(CONDITION_STEP)
def _accuracy_check(w: Wiring) -> Any:
    """All hold: metric >= MetricThreshold, metric - majority baseline >= BaselineMargin,
    champion - metric <= ChampionTolerance (0 without a champion)."""
    metric = w.cfg.approval_metric
    report = w.report_value
    return ConditionStep(
        name=CONDITION_STEP,
        depends_on=[w.step(REGISTER_STEP)],
        # A ConditionStep's conditions must all hold.
        conditions=[
            ConditionGreaterThanOrEqualTo(left=report(metric_json_path(metric)), right=w.threshold),
            ConditionGreaterThanOrEqualTo(
                left=report(baseline_margin_json_path(metric)), right=w.baseline_margin
            ),
            ConditionLessThanOrEqualTo(
                left=report(CHAMPION_SHORTFALL_JSON_PATH), right=w.champion_tolerance
            ),
        ],
        if_steps=w.branch(CONDITION_STEP),
        else_steps=[],
    )


@_builds(APPROVE_STEP)
def _approve(w: Wiring) -> Any:
    """A processing job with the training image (boto3 inside) approves the package."""
    return ProcessingStep(
        name=APPROVE_STEP,
        step_args=w.processor("approve.py", env={"AWS_DEFAULT_REGION": w.cfg.region}).run(
            inputs=[w.code_input("approve.py")],
            arguments=[
                "--model-package-arn",
                w.step(REGISTER_STEP).properties.ModelPackageArn,
                "--evaluation-report",
                w.report_uri(),
            ],
        ),
    )
