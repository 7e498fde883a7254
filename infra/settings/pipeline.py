"""How an environment trains: the trainer and the pipeline's parameter defaults, scheduled
retraining, and the MLflow tracking server its runs log to."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from infra.settings.base import StrictModel, bounded, shown
from infra.settings.schedules import is_timezone, schedule_problem
from ml import limits


class TrainerSettings(StrictModel):
    """The trainer and its hyperparameters' defaults (each is a pipeline parameter too)."""

    name: limits.TrainerName = Field(
        default=limits.DEFAULT_TRAINER, description="Trainer of ml/steps/train.py's registry."
    )
    c: float = bounded(limits.REGULARIZATION_C, "LinearSVC C (inverse regularisation).")
    hash_bits: int = bounded(limits.HASH_BITS, "n-grams hashed into 2**hash_bits columns.")
    max_features: int = bounded(
        limits.MAX_FEATURES, "Hashed columns kept (chi2 against the labels)."
    )
    ngram_max: int = bounded(limits.NGRAM_MAX, "Longest word n-gram.")
    class_weight: limits.ClassWeight = Field(
        default=limits.DEFAULT_CLASS_WEIGHT,
        description="balanced weighs classes by inverse frequency; none does not.",
    )
    seed: int = bounded(limits.SEED, "Random seed of the fit.")


_REPLACED_PIPELINE_KEYS = {
    "accuracy_threshold": "metric_threshold (with approval_metric: accuracy to keep judging "
    "accuracy; the default macro_f1 >= 0.2 fits real notes)",
    "epochs": "trainer.c, trainer.max_features, ... (the tfidf-linear trainer fits in one pass)",
    "batch_size": "trainer.max_features (the tfidf-linear trainer fits in one pass)",
    "learning_rate": "trainer.c (the tfidf-linear trainer fits in one pass)",
}


class PipelineSettings(StrictModel):
    processing_instance_type: str = Field(
        default=limits.DEFAULT_INSTANCE_TYPE, description="Instance type of the processing steps."
    )
    training_instance_type: str = Field(
        default=limits.DEFAULT_INSTANCE_TYPE,
        description="Instance type of the training step (GPU optional).",
    )
    approval_metric: limits.ApprovalMetric = Field(
        default=limits.DEFAULT_APPROVAL_METRIC,
        description="Metric accuracy-check judges: macro_f1, accuracy or weighted_f1.",
    )
    metric_threshold: float = bounded(
        limits.METRIC_THRESHOLD,
        "Default MetricThreshold: approval_metric must reach it to approve.",
    )
    baseline_margin: float = bounded(
        limits.BASELINE_MARGIN,
        "Default BaselineMargin: how far approval_metric must beat the majority-class baseline.",
    )
    champion_tolerance: float = bounded(
        limits.CHAMPION_TOLERANCE,
        "Default ChampionTolerance: how far approval_metric may fall below the group's "
        "approved champion (scored on the same test split) and still be approved.",
    )
    conflicts: limits.ConflictPolicy = Field(
        default=limits.DEFAULT_CONFLICT_POLICY,
        description="Default LabelConflicts: a text filed under several labels "
        "(most-frequent, drop, keep-all).",
    )
    trainer: TrainerSettings = Field(
        default_factory=TrainerSettings, description="Trainer and hyperparameter defaults."
    )
    cache_expire_after: str = Field(
        default=limits.DEFAULT_CACHE_EXPIRE_AFTER,
        description="ISO 8601 duration train and evaluate results stay cached (preprocess: never).",
    )

    @model_validator(mode="before")
    @classmethod
    def _replaced_keys(cls, data: Any) -> Any:
        replaced = (
            sorted(set(data) & set(_REPLACED_PIPELINE_KEYS)) if isinstance(data, dict) else []
        )
        if replaced:
            raise ValueError(
                "; ".join(
                    f"{key} was replaced by {_REPLACED_PIPELINE_KEYS[key]}" for key in replaced
                )
            )
        return data

    @model_validator(mode="after")
    def _shapes(self) -> PipelineSettings:
        problems = [
            limits.instance_type_problem("processing_instance_type", self.processing_instance_type),
            limits.instance_type_problem("training_instance_type", self.training_instance_type),
            limits.duration_problem("cache_expire_after", self.cache_expire_after),
        ]
        if any(problems):
            raise ValueError("; ".join(problem for problem in problems if problem))
        return self


class RetrainingSettings(StrictModel):
    allowed: bool = Field(
        default=False, description="Whether this environment may retrain on a schedule."
    )
    enabled: bool = Field(default=False, description="Create the retraining schedule.")
    schedule_expression: str = Field(
        default="cron(0 3 ? * SUN *)", description="EventBridge Scheduler expression."
    )
    timezone: str = Field(default="UTC", description="Time zone of the schedule expression.")

    @model_validator(mode="after")
    def _allowed(self) -> RetrainingSettings:
        if self.enabled and not self.allowed:
            raise ValueError(
                "enabled is true but this stack does not allow scheduled retraining "
                "(retraining.allowed is false); set enabled: false, or allowed: true if this "
                "environment really retrains on a schedule"
            )
        problem = schedule_problem(self.schedule_expression)
        if problem is not None:
            raise ValueError(f"schedule_expression {problem}")
        if not is_timezone(self.timezone):
            raise ValueError(
                f"timezone must be an IANA time zone such as UTC or Europe/Berlin, "
                f"got {shown(self.timezone)}"
            )
        return self


class TrackingSettings(StrictModel):
    enabled: bool = Field(
        default=True,
        description="SageMaker managed MLflow tracking server for this environment's runs "
        "(billed while it runs: Small about USD 0.64/h, about USD 470 a month, plus storage; "
        "us-east-1 list price, check your region).",
    )
    size: Literal["Small", "Medium", "Large"] = Field(
        default="Small", description="Tracking server size (Small: up to 25 users)."
    )
