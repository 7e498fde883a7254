"""How an environment serves: the auto-deployed endpoint and its blue/green rollout."""

from __future__ import annotations

from pydantic import Field, model_validator

from infra.settings.base import StrictModel, bounded
from ml import limits

PROD_MIN_ENDPOINT_INSTANCES = 2
"""Prod endpoints need at least this many instances (also the policy pack's minimum)."""


class RolloutSettings(StrictModel):
    mode: limits.RolloutMode = Field(
        default=limits.DEFAULT_ROLLOUT_MODE,
        description="Blue/green traffic shifting; canary and linear need 2+ instances.",
    )
    canary_percent: int = bounded(
        limits.CANARY_PERCENT,
        f"Canary: traffic share of the first step ({limits.CANARY_PERCENT.span} %).",
    )
    linear_step_percent: int = bounded(
        limits.LINEAR_STEP_PERCENT,
        f"Linear: traffic share of each step ({limits.LINEAR_STEP_PERCENT.span} %).",
    )
    wait_seconds: int = bounded(limits.WAIT_SECONDS, "Wait between traffic steps.")
    termination_wait_seconds: int = bounded(
        limits.TERMINATION_WAIT_SECONDS, "Wait before the old fleet is terminated."
    )
    maximum_execution_timeout_seconds: int = bounded(
        limits.MAXIMUM_EXECUTION_TIMEOUT_SECONDS, "Upper bound of one blue/green rollout."
    )


class EndpointSettings(StrictModel):
    instance_type: str = Field(
        default=limits.DEFAULT_INSTANCE_TYPE, description="Endpoint instance type."
    )
    instance_count: int = bounded(limits.INSTANCE_COUNT, "Endpoint instances.")
    rollout: RolloutSettings = Field(
        default_factory=RolloutSettings, description="Blue/green rollout."
    )
    data_capture_sampling_percent: int = bounded(
        limits.DATA_CAPTURE_SAMPLING_PERCENT, "Share of requests captured to S3."
    )
    latency_alarm_microseconds: int = Field(
        default=500_000, ge=1_000, description="ModelLatency (p90) that triggers rollback."
    )
    error_alarm_threshold: int = Field(
        default=5, ge=1, description="Invocation5XXErrors per minute that trigger rollback."
    )

    @model_validator(mode="after")
    def _instance(self) -> EndpointSettings:
        problem = limits.instance_type_problem("instance_type", self.instance_type)
        if problem:
            raise ValueError(problem)
        if self.rollout.mode != "all_at_once" and self.instance_count < 2:
            raise ValueError(
                f"rollout.mode {self.rollout.mode} shifts part of the traffic to part of the "
                "fleet, which needs instance_count >= 2; set instance_count: 2 or "
                "rollout.mode: all_at_once"
            )
        return self
