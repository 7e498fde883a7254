"""What the pipeline's step builders share. Import only under `isolated_sdk` (the SDK).

`Wiring` holds the config, the isolated session, the pipeline parameters, the helpers
every processing job uses (processor, S3 inputs and outputs per execution, the
evaluation report's values) and the steps built so far: a builder asks it for another
step by name (`Wiring.step`), which is built on first use. `_builds(name)` registers a
builder under its contract step's name (the builders are in `ml.pipeline.*_steps`);
`ml.pipeline.steps.build` checks the registry against the contract.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import boto3
from sagemaker.core.processing import Processor
from sagemaker.core.shapes import (
    ProcessingInput,
    ProcessingOutput,
    ProcessingS3Input,
    ProcessingS3Output,
)
from sagemaker.core.workflow.execution_variables import ExecutionVariables
from sagemaker.core.workflow.functions import Join, JsonGet
from sagemaker.core.workflow.parameters import ParameterFloat, ParameterInteger, ParameterString
from sagemaker.core.workflow.properties import PropertyFile
from sagemaker.mlops.workflow import CacheConfig

from ml import limits
from ml.pipeline.contract import (
    CODE_DIR,
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
    STEPS,
    TRAIN_STEP,
    PipelineConfig,
)
from ml.pipeline.sdk_isolation import pipeline_session

StepBuilder = Callable[["Wiring"], Any]

_BUILDERS: dict[str, StepBuilder] = {}
"""Contract step name -> its builder, filled by the `@_builds` functions as they are imported."""


def _builds(name: str) -> Callable[[StepBuilder], StepBuilder]:
    """Register the decorated function as the builder of the contract step `name`."""

    def register(builder: StepBuilder) -> StepBuilder:
        _BUILDERS[name] = builder
        return builder

    return register


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


class Wiring:
    """What the step builders share: config, session, parameters, and the steps built so far."""

    def __init__(
        self,
        cfg: PipelineConfig,
        boto_session: boto3.Session,
        builders: Mapping[str, StepBuilder],
    ) -> None:
        self.cfg = cfg
        self._builders = builders
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
            self._steps[name] = self._builders[name](self)
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
