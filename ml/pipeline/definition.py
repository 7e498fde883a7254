"""The training pipeline, defined with the sagemaker SDK (v3) and rendered offline.

DAG (step names are part of the contract with the local runner, the plan and
the dashboards):

    preprocess-data -> train-model -> evaluate-model -> register-model
        -> accuracy-check --(accuracy >= AccuracyThreshold)--> approve-model

Every candidate is registered (status `PendingManualApproval`) with its
evaluation report attached as model-quality statistics, so the registry keeps
a record of rejected candidates too; only a candidate whose accuracy meets the
`AccuracyThreshold` parameter is approved, which is what the auto-deployer
listens for. Every job runs the digest-pinned training image from ops, with
the step script downloaded from its content-addressed S3 object.

Importing this module does not import the SDK (it is slow and has import-time
side effects); `build_pipeline` and `definition_json` do, under `offline_sdk`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ml.pipeline.code import STEP_SCRIPTS
from ml.pipeline.sdk_offline import canonical_definition, offline_sdk

if TYPE_CHECKING:
    import boto3
    from sagemaker.mlops.workflow.pipeline import Pipeline

PREPROCESS_STEP = "preprocess-data"
TRAIN_STEP = "train-model"
EVALUATE_STEP = "evaluate-model"
REGISTER_STEP = "register-model"
CONDITION_STEP = "accuracy-check"
APPROVE_STEP = "approve-model"
STEP_NAMES: tuple[str, ...] = (
    PREPROCESS_STEP,
    TRAIN_STEP,
    EVALUATE_STEP,
    REGISTER_STEP,
    CONDITION_STEP,
    APPROVE_STEP,
)

PARAM_INPUT_DATA = "InputDataUri"
PARAM_EPOCHS = "Epochs"
PARAM_BATCH_SIZE = "BatchSize"
PARAM_LEARNING_RATE = "LearningRate"
PARAM_ACCURACY_THRESHOLD = "AccuracyThreshold"

PROPERTY_FILE = "EvaluationReport"
EVALUATION_FILE = "evaluation.json"
ACCURACY_JSON_PATH = "multiclass_classification_metrics.accuracy.value"

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
_INSTANCE_RE = re.compile(r"^ml\.[a-z0-9]+\.[a-z0-9]+$")
_DURATION_RE = re.compile(r"^P(?!$)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+S)?)?$")
_NAME_RE = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,255}$")


class PipelineConfigError(ValueError):
    """A `PipelineConfig` value is invalid; the message names the field and what to fix."""


@dataclass(frozen=True)
class PipelineConfig:
    """Everything the pipeline definition depends on; equal configs give byte-identical JSON."""

    name: str
    role_arn: str
    region: str
    data_bucket: str
    artifacts_bucket: str
    training_image_uri: str
    code_uris: Mapping[str, str]
    model_package_group: str
    processing_instance_type: str = "ml.m5.large"
    training_instance_type: str = "ml.m5.large"
    accuracy_threshold: float = 0.7
    epochs: int = 20
    batch_size: int = 256
    learning_rate: float = 0.001
    cache_expire_after: str = "P30D"
    kms_key_arn: str | None = None
    inference_instance_types: tuple[str, ...] = field(default=("ml.m5.large",))

    def __post_init__(self) -> None:
        problems = _location_problems(self) + _training_problems(self)
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
    missing = sorted(set(STEP_SCRIPTS) - set(cfg.code_uris))
    if missing:
        problems.append(f"code_uris lacks {missing} (one s3:// URI per step script)")
    for script, uri in sorted(cfg.code_uris.items()):
        if not uri.startswith("s3://") or not uri.endswith(f"/{script}"):
            problems.append(f"code_uris[{script!r}] must be s3://.../{script}, got {uri!r}")
    if cfg.kms_key_arn is not None and not cfg.kms_key_arn.startswith("arn:"):
        problems.append(f"kms_key_arn must be a KMS key ARN, got {cfg.kms_key_arn!r}")
    return problems


def _training_problems(cfg: PipelineConfig) -> list[str]:
    problems: list[str] = []
    for key in ("processing_instance_type", "training_instance_type"):
        if not _INSTANCE_RE.match(getattr(cfg, key)):
            problems.append(f"{key} must look like ml.m5.large, got {getattr(cfg, key)!r}")
    if not 0 < cfg.accuracy_threshold <= 1:
        problems.append(f"accuracy_threshold must be in (0, 1], got {cfg.accuracy_threshold}")
    if cfg.epochs < 1 or cfg.batch_size < 1 or cfg.learning_rate <= 0:
        problems.append("epochs and batch_size must be >= 1 and learning_rate > 0")
    if not _DURATION_RE.match(cfg.cache_expire_after):
        problems.append(
            "cache_expire_after must be an ISO 8601 duration such as P30D, "
            f"got {cfg.cache_expire_after!r}"
        )
    return problems


def build_pipeline(cfg: PipelineConfig, boto_session: boto3.Session | None = None) -> Pipeline:
    """The SageMaker `Pipeline` for `cfg`.

    Steps compile lazily: call `definition()` on the result inside
    `ml.pipeline.sdk_offline.offline_sdk(cfg.region)` (as `definition_json`
    does), or it may reach for AWS. Pass the session that context yields; without
    one, the caller must already be inside it.
    """
    if boto_session is None:
        with offline_sdk(cfg.region) as session:
            return _build(cfg, session)
    return _build(cfg, boto_session)


def definition_json(cfg: PipelineConfig) -> str:
    """The canonical pipeline definition: deterministic JSON, sorted keys, no AWS calls."""
    with offline_sdk(cfg.region) as session:
        raw = _build(cfg, session).definition()
    document = canonical_definition(json.loads(raw))
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def _build(cfg: PipelineConfig, boto_session: boto3.Session) -> Pipeline:
    # The builder imports the SDK at its top, so it may only be imported under offline_sdk.
    from ml.pipeline import _builder  # noqa: PLC0415

    return _builder.build(cfg, boto_session)
