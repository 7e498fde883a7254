"""One settings model per stack kind (ops, identity, dev/staging/prod), composed of the
groups of the sibling modules, with the rules that span groups."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, model_validator

from infra.settings.accounts import AccountAccess, Accounts, GithubSettings, StateSettings
from infra.settings.base import StrictModel, shown
from infra.settings.endpoint import EndpointSettings
from infra.settings.monitoring import MonitoringSettings
from infra.settings.pipeline import PipelineSettings, RetrainingSettings, TrackingSettings
from infra.settings.workspace import GpuQuotaRequest, NetworkSettings, StudioSettings


class CommonSettings(StrictModel):
    region: str = Field(description="AWS region of every account, e.g. eu-west-1.")
    accounts: Accounts = Field(description="The four account IDs.")
    github: GithubSettings = Field(description="The repository whose workflows deploy.")

    @model_validator(mode="after")
    def _region_shape(self) -> CommonSettings:
        if not re.match(r"^[a-z]{2}(-gov)?-[a-z]+-\d$", self.region):
            raise ValueError(f"region must look like eu-west-1, got {shown(self.region)}")
        return self


class OpsSettings(CommonSettings):
    """Settings of the `ops` stack."""

    untagged_image_expiry_days: int = Field(
        default=7, ge=1, le=365, description="Untagged ECR images are expired after this."
    )


class IdentitySettings(CommonSettings):
    """Settings of the `identity` bootstrap stack, applied by an administrator."""

    access: dict[Literal["ops", "dev", "staging", "prod"], AccountAccess] = Field(
        default_factory=dict,
        description="How the administrator reaches each account (role_arn or profile). Unset: "
        "ambient credentials for ops, OrganizationAccountAccessRole in the others.",
    )
    state: StateSettings | None = Field(
        default=None,
        description="Self-managed state backend the CI roles may use (each its own stack only).",
    )

    def access_for(self, stack: str) -> AccountAccess | None:
        """The configured access, or None for ops (ambient credentials)."""
        for configured_stack, configured in self.access.items():
            if configured_stack == stack:
                return configured
        if stack == "ops":
            return None
        account = self.accounts.for_stack(stack)
        return AccountAccess(role_arn=f"arn:aws:iam::{account}:role/OrganizationAccountAccessRole")


class PromotionSettings(StrictModel):
    source_stack: str | None = Field(
        default=None,
        description="Fully qualified stack (org/project/stack) whose deployed commit this "
        "stack must match, e.g. organization/promote-code/staging for prod.",
    )


class EnvironmentSettings(CommonSettings):
    """Settings of the `dev`, `staging` and `prod` stacks."""

    network: NetworkSettings = Field(default_factory=NetworkSettings, description="VPC.")
    studio: StudioSettings = Field(default_factory=StudioSettings, description="Studio domain.")
    gpu_quotas: tuple[GpuQuotaRequest, ...] = Field(
        default=(), description="Service-quota increase requests for GPU instance types."
    )
    retraining: RetrainingSettings = Field(
        default_factory=RetrainingSettings, description="Scheduled retraining."
    )
    pipeline: PipelineSettings = Field(
        default_factory=PipelineSettings, description="Training pipeline defaults."
    )
    endpoint: EndpointSettings = Field(
        default_factory=EndpointSettings, description="Auto-deployed SageMaker endpoint."
    )
    promotion: PromotionSettings = Field(
        default_factory=PromotionSettings, description="Promotion gate."
    )
    tracking: TrackingSettings = Field(
        default_factory=TrackingSettings, description="Experiment tracking (MLflow)."
    )
    monitoring: MonitoringSettings = Field(
        default_factory=MonitoringSettings, description="Drift monitoring of captured traffic."
    )

    @model_validator(mode="after")
    def _drift_retraining_is_retraining(self) -> EnvironmentSettings:
        if self.monitoring.retrain_on_drift and not self.retraining.allowed:
            raise ValueError(
                "monitoring.retrain_on_drift retrains this stack, which retraining.allowed: "
                "false forbids; set retrain_on_drift: false, or allowed: true if this "
                "environment really retrains on its own data"
            )
        return self

    @model_validator(mode="after")
    def _studio_needs_network(self) -> EnvironmentSettings:
        if self.studio.enabled and not self.network.enabled:
            raise ValueError(
                "studio.enabled needs network.enabled: true (the Studio domain runs in the "
                "stack's private subnets)"
            )
        return self


Settings = OpsSettings | EnvironmentSettings | IdentitySettings
