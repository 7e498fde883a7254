"""Ranges, defaults and patterns shared by the stack settings and the ML configs.

A value a stack sets in `Pulumi.<stack>.yaml` is validated twice: by the
settings models (`infra/settings/`, before any resource is declared) and by
the dataclass the ML code builds from it (`ml.pipeline.contract.PipelineConfig`
at definition build time, `ml.deployer.config.RolloutConfig` and
`DeployerConfig` in the deployer Lambda). Both read their ranges, defaults and
patterns from here, so a limit is written once; `tests/ml/test_limits.py`
checks that both still accept and refuse the same values.

Standard library only: the deployer Lambda image copies this file beside
`ml/deployer/` and installs nothing but boto3, and the preprocess, train and evaluate
jobs get it in their code bundle (ml/pipeline/code.py), so a job run without the
pipeline's arguments uses the stack's defaults and refuses what the settings refuse.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Generic, Literal, TypeVar, get_args

Number = TypeVar("Number", int, float)


@dataclass(frozen=True)
class Bounds(Generic[Number]):
    """A numeric setting: its default and its range (`minimum`/`maximum` inclusive)."""

    default: Number
    minimum: Number | None = None
    maximum: Number | None = None
    exclusive_minimum: Number | None = None

    def __post_init__(self) -> None:
        if not self.contains(self.default):
            raise ValueError(f"default {self.default} is outside {self.span}")

    def contains(self, value: float) -> bool:
        return (
            (self.minimum is None or value >= self.minimum)
            and (self.maximum is None or value <= self.maximum)
            and (self.exclusive_minimum is None or value > self.exclusive_minimum)
        )

    @property
    def span(self) -> str:
        """The range as the messages and descriptions write it: `1-50`, `in (0, 1]`, `>= 1`."""
        if self.exclusive_minimum is not None:
            if self.maximum is None:
                return f"> {self.exclusive_minimum}"
            return f"in ({self.exclusive_minimum}, {self.maximum}]"
        if self.maximum is None:
            return f">= {self.minimum}"
        return f"{self.minimum}-{self.maximum}"

    def problem(self, name: str, value: float) -> str | None:
        """None if `value` is in range, else what to fix, naming `name`."""
        return None if self.contains(value) else f"{name} must be {self.span}, got {value}"


# SageMaker instance types (processing, training, endpoint, quota requests).
INSTANCE_TYPE: Final = re.compile(r"^ml\.[a-z0-9]+\.[a-z0-9]+$")
DEFAULT_INSTANCE_TYPE: Final = "ml.m5.large"


def instance_type_problem(
    name: str, value: str, example: str = DEFAULT_INSTANCE_TYPE
) -> str | None:
    """None for a SageMaker instance type (`ml.<family>.<size>`), else what to fix."""
    if INSTANCE_TYPE.match(value):
        return None
    return f"{name} must look like {example}, got {value!r}"


def choice_problem(name: str, value: str, choices: tuple[str, ...]) -> str | None:
    """None if `value` is one of `choices`, else what to fix."""
    if value in choices:
        return None
    return f"{name} must be one of {', '.join(choices)}, got {value!r}"


# Training pipeline defaults (pipeline parameters a run may override).
# Approval: evaluate-model scores the model; accuracy-check approves it when the metric
# reaches the threshold AND beats the majority-class baseline by the margin AND is not
# worse than the group's approved champion by more than the tolerance. The defaults
# approve a sound model on realistic notes (macro-F1 ~0.5) and reject one trained on
# shuffled labels (~0.03): ml/README.md, "Model".
ApprovalMetric = Literal["macro_f1", "accuracy", "weighted_f1"]
APPROVAL_METRICS: Final[tuple[str, ...]] = get_args(ApprovalMetric)
DEFAULT_APPROVAL_METRIC: Final[ApprovalMetric] = "macro_f1"
METRIC_THRESHOLD: Final = Bounds[float](default=0.2, exclusive_minimum=0, maximum=1)
BASELINE_MARGIN: Final = Bounds[float](default=0.1, minimum=0, maximum=1)
CHAMPION_TOLERANCE: Final = Bounds[float](default=0.01, minimum=0, maximum=1)
"""How far the challenger's metric may fall below the approved champion's (same test split)."""

# The default trainer's hyperparameters (ml/steps/train.py `Hyperparameters`, which
# tests/ml/test_limits.py holds to these defaults and ranges).
TrainerName = Literal["tfidf-linear"]
TRAINER_NAMES: Final[tuple[str, ...]] = get_args(TrainerName)
DEFAULT_TRAINER: Final[TrainerName] = "tfidf-linear"
REGULARIZATION_C: Final = Bounds[float](default=0.4, exclusive_minimum=0)
HASH_BITS: Final = Bounds[int](default=20, minimum=10, maximum=24)
MAX_FEATURES: Final = Bounds[int](default=100_000, minimum=1)
NGRAM_MAX: Final = Bounds[int](default=2, minimum=1, maximum=3)
ClassWeight = Literal["balanced", "none"]
CLASS_WEIGHTS: Final[tuple[str, ...]] = get_args(ClassWeight)
DEFAULT_CLASS_WEIGHT: Final[ClassWeight] = "balanced"
SEED: Final = Bounds[int](default=42, minimum=0, maximum=2**31 - 1)

# preprocess-data: what to do with a text filed under several labels, and how to read the CSV.
ConflictPolicy = Literal["most-frequent", "drop", "keep-all"]
CONFLICT_POLICIES: Final[tuple[str, ...]] = get_args(ConflictPolicy)
DEFAULT_CONFLICT_POLICY: Final[ConflictPolicy] = "most-frequent"
DEFAULT_ENCODING: Final = "utf-8"
DEFAULT_DELIMITER: Final = ","
ISO_DURATION: Final = re.compile(
    r"^P(?!$)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+S)?)?$"
)
DEFAULT_CACHE_EXPIRE_AFTER: Final = "P30D"


def duration_problem(name: str, value: str) -> str | None:
    """None for an ISO 8601 duration (what SageMaker's step cache accepts), else what to fix."""
    if ISO_DURATION.match(value):
        return None
    return f"{name} must be an ISO 8601 duration such as P30D, got {value!r}"


# Endpoint and blue/green rollout.
RolloutMode = Literal["canary", "linear", "all_at_once"]
ROLLOUT_MODES: Final[tuple[str, ...]] = get_args(RolloutMode)
DEFAULT_ROLLOUT_MODE: Final[RolloutMode] = "all_at_once"
"""All at once: canary and linear shift part of the traffic, which one instance cannot take."""
CANARY_PERCENT: Final = Bounds[int](default=10, minimum=1, maximum=50)
LINEAR_STEP_PERCENT: Final = Bounds[int](default=20, minimum=10, maximum=50)
WAIT_SECONDS: Final = Bounds[int](default=300, minimum=0, maximum=3600)
TERMINATION_WAIT_SECONDS: Final = Bounds[int](default=120, minimum=0, maximum=3600)
MAXIMUM_EXECUTION_TIMEOUT_SECONDS: Final = Bounds[int](default=3600, minimum=600, maximum=28800)
INSTANCE_COUNT: Final = Bounds[int](default=1, minimum=1, maximum=20)
DATA_CAPTURE_SAMPLING_PERCENT: Final = Bounds[int](default=100, minimum=1, maximum=100)


# Drift monitoring of captured traffic (ml/monitoring; the stack's `monitoring` settings).
DRIFT_THRESHOLD: Final = Bounds[float](default=0.35, exclusive_minimum=0, maximum=1)
"""DriftScore (a Jensen-Shannon distance, 0-1) above which the drift alarm fires."""
DRIFT_MIN_RECORDS: Final = Bounds[int](default=200, minimum=1)
"""Fewer captured requests in a window than this: "insufficient data", no score."""
DRIFT_RETRAIN_MIN_INTERVAL_DAYS: Final = Bounds[int](default=7, minimum=1, maximum=90)
