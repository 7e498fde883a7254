"""How an environment watches its endpoint: the scheduled drift monitor, its alarm, and
retraining when drift is measured."""

from __future__ import annotations

from pydantic import Field, model_validator

from infra.settings.base import StrictModel, bounded, shown
from infra.settings.schedules import is_timezone, schedule_problem
from ml import limits


class MonitoringSettings(StrictModel):
    enabled: bool = Field(
        default=False,
        description="Scheduled drift monitor of the endpoint's captured traffic "
        "(a processing job of the ops training image, a CloudWatch alarm).",
    )
    schedule_expression: str = Field(
        default="rate(1 day)", description="EventBridge Scheduler expression of the monitor job."
    )
    timezone: str = Field(default="UTC", description="Time zone of the schedule expression.")
    drift_threshold: float = bounded(
        limits.DRIFT_THRESHOLD, "DriftScore (Jensen-Shannon distance) that raises the alarm."
    )
    min_records: int = bounded(
        limits.DRIFT_MIN_RECORDS, "Fewer captured requests: insufficient data, no score."
    )
    retrain_on_drift: bool = Field(
        default=False,
        description="Start the training pipeline when the drift alarm fires "
        "(needs retraining.allowed; never while an execution runs).",
    )
    retrain_min_interval_days: int = bounded(
        limits.DRIFT_RETRAIN_MIN_INTERVAL_DAYS,
        "At most one drift-triggered pipeline execution per this many days.",
    )

    @model_validator(mode="after")
    def _schedule(self) -> MonitoringSettings:
        problem = schedule_problem(self.schedule_expression)
        if problem is not None:
            raise ValueError(f"schedule_expression {problem}")
        if not is_timezone(self.timezone):
            raise ValueError(
                f"timezone must be an IANA time zone such as UTC, got {shown(self.timezone)}"
            )
        if self.retrain_on_drift and not self.enabled:
            raise ValueError("retrain_on_drift needs enabled: true (the monitor raises the alarm)")
        return self
