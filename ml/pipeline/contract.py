"""The training pipeline's contract: its steps, parameters, container paths and config.

DAG (step names are part of the contract with the local runner, the plan and
the dashboards):

    preprocess-data -> train-model -> evaluate-model -> register-model
        -> accuracy-check --(metric >= MetricThreshold and
                             metric - majority baseline >= BaselineMargin and
                             champion - metric <= ChampionTolerance)--> approve-model

Every candidate is registered (status `PendingManualApproval`) with its
evaluation report attached as model-quality statistics, so the registry keeps
a record of rejected candidates too; only a candidate whose approval metric
(`PipelineConfig.approval_metric`, macro-F1 by default) meets the
`MetricThreshold` parameter, beats the majority-class baseline by
`BaselineMargin` and falls short of the group's approved champion (scored by
evaluate-model on the same test split) by at most `ChampionTolerance` is approved,
which is what the auto-deployer listens for. A rejected candidate's package says
why in its description (the report's `summary`) and carries the run's lineage
(`lineage.*` of the report) in its CustomerMetadataProperties.
Every job runs the digest-pinned training image from ops, with the step
script and its modules downloaded from their content-addressed S3 prefix.

`STEPS` is the one list of steps: `STEP_NAMES` and the uploaded scripts
(`ml.pipeline.code.BUNDLES`) derive from it, and `ml.pipeline.steps`
builds each declared step with the SDK. This module imports no SDK.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from ml import limits


@dataclass(frozen=True)
class Step:
    """One step of the pipeline: its name, the script its job runs, where it sits."""

    name: str
    script: str | None = None
    """File name under ml/steps/ (uploaded content-addressed); None for a step without a job."""
    modules: tuple[str, ...] = ()
    """Other files under ml/steps/ the script imports; uploaded beside it (its code bundle)."""
    runs_if: str | None = None
    """The condition step whose true branch holds this step; None for a top-level step."""


PREPROCESS_STEP = "preprocess-data"
TRAIN_STEP = "train-model"
EVALUATE_STEP = "evaluate-model"
REGISTER_STEP = "register-model"
CONDITION_STEP = "accuracy-check"
APPROVE_STEP = "approve-model"

STEPS: tuple[Step, ...] = (
    Step(PREPROCESS_STEP, "preprocess.py", modules=("limits.py", "notes_csv.py")),
    Step(
        TRAIN_STEP,
        "train.py",
        modules=("limits.py", "sparse_selection.py", "tracking.py", "tracking_worker.py"),
    ),
    Step(
        EVALUATE_STEP,
        "evaluate.py",
        modules=(
            "champions.py",
            "drift_baseline.py",
            "limits.py",
            "run_record.py",
            "scoring.py",
            "tracking.py",
            "tracking_worker.py",
        ),
    ),
    Step(REGISTER_STEP),
    Step(CONDITION_STEP),
    Step(APPROVE_STEP, "approve.py", runs_if=CONDITION_STEP),
)
"""In DAG order; adding a step is one entry here, its builder in `ml.pipeline.steps`, its script."""

STEP_NAMES: tuple[str, ...] = tuple(step.name for step in STEPS)
SCRIPT_NAMES: tuple[str, ...] = tuple(step.script for step in STEPS if step.script)
SCRIPT_MODULES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {step.script: step.modules for step in STEPS if step.script}
)
"""Script -> the modules uploaded beside it."""

PARAM_INPUT_DATA = "InputDataUri"
PARAM_METRIC_THRESHOLD = "MetricThreshold"
PARAM_BASELINE_MARGIN = "BaselineMargin"
PARAM_CHAMPION_TOLERANCE = "ChampionTolerance"
PARAM_CONFLICTS = "LabelConflicts"
PARAM_ENCODING = "InputEncoding"
PARAM_DELIMITER = "InputDelimiter"


@dataclass(frozen=True)
class Hyperparameter:
    """A trainer hyperparameter that is also a pipeline parameter (a run may override it)."""

    name: str
    """As train.py reads it from the training job's HyperParameters (kebab-case)."""
    parameter: str
    """The pipeline parameter (StartPipelineExecution's PipelineParameters name)."""
    field: str
    """The `TrainerConfig` field holding its default."""


HYPERPARAMETERS: tuple[Hyperparameter, ...] = (
    Hyperparameter("c", "RegularizationC", "c"),
    Hyperparameter("hash-bits", "HashBits", "hash_bits"),
    Hyperparameter("max-features", "MaxFeatures", "max_features"),
    Hyperparameter("ngram-max", "NgramMax", "ngram_max"),
    Hyperparameter("class-weight", "ClassWeight", "class_weight"),
    Hyperparameter("seed", "Seed", "seed"),
)
"""The default trainer's hyperparameters; `trainer` itself is fixed per stack (settings)."""

# Environment of the train and evaluate jobs: where to track the run, and its lineage.
ENV_TRACKING_URI = "MLFLOW_TRACKING_URI"
ENV_EXPERIMENT = "MLFLOW_EXPERIMENT_NAME"
ENV_COMMIT = "PROMOTE_COMMIT"
ENV_TRAINING_IMAGE = "PROMOTE_TRAINING_IMAGE"
ENV_EXECUTION_ARN = "PROMOTE_PIPELINE_EXECUTION_ARN"

PROPERTY_FILE = "EvaluationReport"
EVALUATION_FILE = "evaluation.json"
DRIFT_BASELINE_FILE = "drift_baseline.json"
"""What evaluate-model writes beside evaluation.json for the drift monitor."""
SUMMARY_JSON_PATH = "summary"
"""Where evaluation.json says in words whether the model is approved and why."""
CHAMPION_SHORTFALL_JSON_PATH = "champion.shortfall"
"""The champion's metric minus the model's (0.0 without a champion)."""


def metric_json_path(metric: str) -> str:
    """Where evaluation.json holds the model's `metric` (SageMaker's model-quality shape)."""
    return f"multiclass_classification_metrics.{metric}.value"


def baseline_margin_json_path(metric: str) -> str:
    """Where evaluation.json holds `metric` minus the majority-class baseline's value."""
    return f"baseline_comparison.{metric}.margin"


def lineage_json_path(key: str) -> str:
    """Where evaluation.json holds the lineage fact `key` (ml.lineage.METADATA_KEYS)."""
    return f"lineage.{key}"


PROCESSING_ROOT = "/opt/ml/processing"
CODE_DIR = f"{PROCESSING_ROOT}/input/code"
DATASET_PREFIX = "data/"
"""Key prefix of the uploaded dataset in the data bucket (train/validation/test CSVs)."""

PROCESSING_MAX_RUNTIME_SECONDS = 3600
TRAINING_MAX_RUNTIME_SECONDS = 4 * 3600

_IMAGE_RE = re.compile(
    r"^\d{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com/[a-z0-9._/-]+@sha256:[0-9a-f]{64}$"
)
_ROLE_RE = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+$")
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_NAME_RE = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,255}$")
_TRACKING_RE = re.compile(
    r"^arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:\d{12}:mlflow-tracking-server/[a-zA-Z0-9](-*[a-zA-Z0-9])*$"
)


class PipelineConfigError(ValueError):
    """A `PipelineConfig` value is invalid; the message names the field and what to fix."""


@dataclass(frozen=True)
class TrainerConfig:
    """The trainer a stack runs and its hyperparameters' defaults (see `HYPERPARAMETERS`)."""

    name: str = limits.DEFAULT_TRAINER
    c: float = limits.REGULARIZATION_C.default
    hash_bits: int = limits.HASH_BITS.default
    max_features: int = limits.MAX_FEATURES.default
    ngram_max: int = limits.NGRAM_MAX.default
    class_weight: str = limits.DEFAULT_CLASS_WEIGHT
    seed: int = limits.SEED.default

    def problems(self) -> list[str]:
        checks = [
            limits.choice_problem("trainer.name", self.name, limits.TRAINER_NAMES),
            limits.REGULARIZATION_C.problem("trainer.c", self.c),
            limits.HASH_BITS.problem("trainer.hash_bits", self.hash_bits),
            limits.MAX_FEATURES.problem("trainer.max_features", self.max_features),
            limits.NGRAM_MAX.problem("trainer.ngram_max", self.ngram_max),
            limits.choice_problem("trainer.class_weight", self.class_weight, limits.CLASS_WEIGHTS),
            limits.SEED.problem("trainer.seed", self.seed),
        ]
        return [problem for problem in checks if problem]


@dataclass(frozen=True)
class PipelineConfig:
    """Everything the pipeline definition depends on; equal configs give byte-identical JSON.

    Defaults and ranges are `ml.limits`, the same the stack settings use.
    """

    name: str
    role_arn: str
    region: str
    data_bucket: str
    artifacts_bucket: str
    training_image_uri: str
    code_uris: Mapping[str, str]
    model_package_group: str
    processing_instance_type: str = limits.DEFAULT_INSTANCE_TYPE
    training_instance_type: str = limits.DEFAULT_INSTANCE_TYPE
    approval_metric: str = limits.DEFAULT_APPROVAL_METRIC
    metric_threshold: float = limits.METRIC_THRESHOLD.default
    baseline_margin: float = limits.BASELINE_MARGIN.default
    champion_tolerance: float = limits.CHAMPION_TOLERANCE.default
    conflicts: str = limits.DEFAULT_CONFLICT_POLICY
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    cache_expire_after: str = limits.DEFAULT_CACHE_EXPIRE_AFTER
    kms_key_arn: str | None = None
    inference_instance_types: tuple[str, ...] = field(default=(limits.DEFAULT_INSTANCE_TYPE,))
    commit: str | None = None
    """The git commit the stack was deployed from (the lineage of every run)."""
    mlflow_tracking_arn: str | None = None
    """The environment's SageMaker MLflow tracking server; None: the run is not tracked."""
    mlflow_experiment: str | None = None
    """The experiment the runs go to (required with `mlflow_tracking_arn`)."""

    def __post_init__(self) -> None:
        problems = _location_problems(self) + _lineage_problems(self) + _training_problems(self)
        if problems:
            raise PipelineConfigError("invalid PipelineConfig: " + "; ".join(problems))

    @property
    def input_data_uri(self) -> str:
        """Default of the InputDataUri parameter: the uploaded dataset in the data bucket."""
        return f"s3://{self.data_bucket}/{DATASET_PREFIX}"


def _location_problems(cfg: PipelineConfig) -> list[str]:
    problems: list[str] = []
    if not _NAME_RE.match(cfg.name):
        problems.append(f"name must be a SageMaker pipeline name, got {cfg.name!r}")
    if not _ROLE_RE.match(cfg.role_arn):
        problems.append(f"role_arn must be an IAM role ARN, got {cfg.role_arn!r}")
    for key in ("data_bucket", "artifacts_bucket"):
        if not _BUCKET_RE.match(getattr(cfg, key)):
            problems.append(f"{key} must be an S3 bucket name, got {getattr(cfg, key)!r}")
    if not _IMAGE_RE.match(cfg.training_image_uri):
        problems.append(
            "training_image_uri must be an ECR image pinned by digest "
            "(<account>.dkr.ecr.<region>.amazonaws.com/<repo>@sha256:<64 hex>), "
            f"got {cfg.training_image_uri!r}"
        )
    missing = sorted(set(SCRIPT_NAMES) - set(cfg.code_uris))
    if missing:
        problems.append(f"code_uris lacks {missing} (one s3:// prefix per step script)")
    for script, uri in sorted(cfg.code_uris.items()):
        if not uri.startswith("s3://") or not uri.endswith("/"):
            problems.append(
                f"code_uris[{script!r}] must be the s3://.../ prefix of its code bundle, "
                f"got {uri!r}"
            )
    if cfg.kms_key_arn is not None and not cfg.kms_key_arn.startswith("arn:"):
        problems.append(f"kms_key_arn must be a KMS key ARN, got {cfg.kms_key_arn!r}")
    return problems


def _lineage_problems(cfg: PipelineConfig) -> list[str]:
    problems: list[str] = []
    if cfg.commit is not None and not re.fullmatch(r"[0-9a-f]{40}", cfg.commit):
        problems.append(f"commit must be a 40-hex git commit, got {cfg.commit!r}")
    if cfg.mlflow_tracking_arn is not None:
        if not _TRACKING_RE.match(cfg.mlflow_tracking_arn):
            problems.append(
                "mlflow_tracking_arn must be a SageMaker MLflow tracking server ARN "
                "(arn:aws:sagemaker:<region>:<account>:mlflow-tracking-server/<name>), "
                f"got {cfg.mlflow_tracking_arn!r}"
            )
        if not cfg.mlflow_experiment:
            problems.append("mlflow_experiment is required with mlflow_tracking_arn")
    return problems


def _training_problems(cfg: PipelineConfig) -> list[str]:
    checks = [
        limits.instance_type_problem("processing_instance_type", cfg.processing_instance_type),
        limits.instance_type_problem("training_instance_type", cfg.training_instance_type),
        *(
            limits.instance_type_problem("inference_instance_types[]", instance)
            for instance in cfg.inference_instance_types
        ),
        limits.choice_problem("approval_metric", cfg.approval_metric, limits.APPROVAL_METRICS),
        limits.METRIC_THRESHOLD.problem("metric_threshold", cfg.metric_threshold),
        limits.BASELINE_MARGIN.problem("baseline_margin", cfg.baseline_margin),
        limits.CHAMPION_TOLERANCE.problem("champion_tolerance", cfg.champion_tolerance),
        limits.choice_problem("conflicts", cfg.conflicts, limits.CONFLICT_POLICIES),
        limits.duration_problem("cache_expire_after", cfg.cache_expire_after),
    ]
    return [problem for problem in checks if problem] + cfg.trainer.problems()
