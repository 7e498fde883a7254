"""Validated stack settings: the only place where environments differ.

Each `Pulumi.<stack>.yaml` holds one object under `promote:settings`; it is
validated here, before any resource is declared, by pure pydantic models
(no AWS calls, no environment lookups).

This package is the public entry; callers import from `infra.settings`. Its modules:
`stacks` (stack names, promotion order), `base` (strict model, error, bounded fields),
`schedules` (Scheduler expressions), `accounts`, `workspace` (network, Studio, GPU quotas),
`pipeline` (trainer, pipeline defaults, retraining, tracking), `endpoint` (endpoint,
rollout), `monitoring` (drift), `kinds` (one model per stack kind) and `loader`.
"""

from __future__ import annotations

from infra.settings.accounts import (
    AccountAccess,
    AccountId,
    Accounts,
    GithubSettings,
    StateSettings,
)
from infra.settings.base import SettingsError
from infra.settings.endpoint import PROD_MIN_ENDPOINT_INSTANCES, EndpointSettings, RolloutSettings
from infra.settings.kinds import (
    EnvironmentSettings,
    IdentitySettings,
    OpsSettings,
    PromotionSettings,
    Settings,
)
from infra.settings.loader import load_settings, unknown_promote_keys
from infra.settings.monitoring import MonitoringSettings
from infra.settings.pipeline import (
    PipelineSettings,
    RetrainingSettings,
    TrackingSettings,
    TrainerSettings,
)
from infra.settings.schedules import schedule_problem
from infra.settings.stacks import (
    ENVIRONMENTS,
    IDENTITY_STACK,
    PROMOTION_ORDER,
    SETTINGS_KEY,
    STACKS,
    source_in_order,
)
from infra.settings.workspace import GpuQuotaRequest, NetworkSettings, StudioSettings

__all__ = [
    "ENVIRONMENTS",
    "IDENTITY_STACK",
    "PROD_MIN_ENDPOINT_INSTANCES",
    "PROMOTION_ORDER",
    "SETTINGS_KEY",
    "STACKS",
    "AccountAccess",
    "AccountId",
    "Accounts",
    "EndpointSettings",
    "EnvironmentSettings",
    "GithubSettings",
    "GpuQuotaRequest",
    "IdentitySettings",
    "MonitoringSettings",
    "NetworkSettings",
    "OpsSettings",
    "PipelineSettings",
    "PromotionSettings",
    "RetrainingSettings",
    "RolloutSettings",
    "Settings",
    "SettingsError",
    "StateSettings",
    "StudioSettings",
    "TrackingSettings",
    "TrainerSettings",
    "load_settings",
    "schedule_problem",
    "source_in_order",
    "unknown_promote_keys",
]
