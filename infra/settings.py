"""Validated stack settings: the only place where environments differ.

Each `Pulumi.<stack>.yaml` holds one object under `promote:settings`; it is
validated here, before any resource is declared, by pure pydantic models
(no AWS calls, no environment lookups).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

STACKS: tuple[str, ...] = ("ops", "dev", "staging", "prod")
ENVIRONMENTS: tuple[str, ...] = ("dev", "staging", "prod")
SETTINGS_KEY = "promote:settings"

_ACCOUNT_RE = re.compile(r"^\d{12}$")
_REPO_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}$")
_INSTANCE_RE = re.compile(r"^ml\.[a-z0-9]+\.[a-z0-9]+$")


class SettingsError(Exception):
    """Stack settings are invalid; the message says which file, which key and what to write."""


def _account_id(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError(f"must be a quoted 12-digit account ID string, got {value!r}")
    if isinstance(value, int):
        raise ValueError(
            f"must be a quoted 12-digit string, got the number {value}: YAML reads unquoted "
            f'digits as an integer and drops leading zeros; write "{value:012d}" if that is '
            "the account (with quotes)"
        )
    if not _ACCOUNT_RE.match(value):
        raise ValueError(f"must be exactly 12 digits, got {value!r}")
    return value


AccountId = Annotated[str, BeforeValidator(_account_id)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Accounts(_Model):
    """The four AWS accounts of the design."""

    ops: AccountId = Field(description="Operations account: ECR registry, images, identity.")
    dev: AccountId = Field(description="Development account.")
    staging: AccountId = Field(description="Staging account.")
    prod: AccountId = Field(description="Production account.")

    @model_validator(mode="after")
    def _distinct(self) -> Accounts:
        seen: dict[str, str] = {}
        for role in STACKS:
            account = getattr(self, role)
            if account in seen:
                raise ValueError(
                    f"account {account} is used for both {seen[account]} and {role}; "
                    "each role needs its own AWS account"
                )
            seen[account] = role
        return self

    def for_stack(self, stack: str) -> str:
        return str(getattr(self, stack))

    @property
    def environment_accounts(self) -> tuple[str, ...]:
        return (self.dev, self.staging, self.prod)


class GithubSettings(_Model):
    repository: str = Field(description="GitHub repository that deploys, as owner/name.")

    @model_validator(mode="after")
    def _owner_name(self) -> GithubSettings:
        if not _REPO_RE.match(self.repository) or "*" in self.repository:
            raise ValueError(
                f"repository must be 'owner/name' (e.g. my-org/promote-code), "
                f"got {self.repository!r}"
            )
        return self


class AccountAccess(_Model):
    """How the ops stack reaches one account: a role to assume or a named profile."""

    role_arn: str | None = Field(default=None, description="Role the ops stack assumes there.")
    profile: str | None = Field(default=None, description="AWS CLI profile for that account.")

    @model_validator(mode="after")
    def _one_way(self) -> AccountAccess:
        if (self.role_arn is None) == (self.profile is None):
            raise ValueError("set exactly one of role_arn or profile")
        if self.role_arn is not None and not re.match(
            r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+$", self.role_arn
        ):
            raise ValueError(f"role_arn must be an IAM role ARN, got {self.role_arn!r}")
        return self


class _CommonSettings(_Model):
    region: str = Field(description="AWS region of every account, e.g. eu-west-1.")
    accounts: Accounts = Field(description="The four account IDs.")
    github: GithubSettings = Field(description="The repository whose workflows deploy.")

    @model_validator(mode="after")
    def _region_shape(self) -> _CommonSettings:
        if not re.match(r"^[a-z]{2}(-gov)?-[a-z]+-\d$", self.region):
            raise ValueError(f"region must look like eu-west-1, got {self.region!r}")
        return self


class OpsSettings(_CommonSettings):
    """Settings of the `ops` stack."""

    access: dict[Literal["ops", "dev", "staging", "prod"], AccountAccess] = Field(
        default_factory=dict,
        description="How the ops stack reaches each account (role_arn or profile). Unset: "
        "ambient credentials for ops, OrganizationAccountAccessRole in the others.",
    )
    untagged_image_expiry_days: int = Field(
        default=7, ge=1, le=365, description="Untagged ECR images are expired after this."
    )
    state_bucket: str | None = Field(
        default=None,
        description="S3 bucket of a self-managed Pulumi state backend the deploy roles may use.",
    )
    state_secrets_key_arn: str | None = Field(
        default=None,
        description="KMS key of the stacks' awskms:// secrets provider the GitHub roles may use.",
    )

    @model_validator(mode="after")
    def _state_key(self) -> OpsSettings:
        key = self.state_secrets_key_arn
        if key is not None and not re.match(r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/.+$", key):
            raise ValueError(f"state_secrets_key_arn must be a KMS key ARN, got {key!r}")
        return self

    def access_for(self, stack: str) -> AccountAccess | None:
        """The configured access, or None for ops (ambient credentials)."""
        for configured_stack, configured in self.access.items():
            if configured_stack == stack:
                return configured
        if stack == "ops":
            return None
        account = self.accounts.for_stack(stack)
        return AccountAccess(role_arn=f"arn:aws:iam::{account}:role/OrganizationAccountAccessRole")


class NetworkSettings(_Model):
    enabled: bool = Field(default=False, description="Create a VPC with private subnets.")
    cidr: str = Field(default="10.42.0.0/16", description="VPC CIDR block.")
    nat_gateway: bool = Field(
        default=False, description="Add a NAT gateway; without one, VPC endpoints give access."
    )

    @model_validator(mode="after")
    def _cidr(self) -> NetworkSettings:
        if not re.match(r"^\d{1,3}(\.\d{1,3}){3}/(1[6-9]|2[0-4])$", self.cidr):
            raise ValueError(f"cidr must be an IPv4 block from /16 to /24, got {self.cidr!r}")
        return self


class StudioSettings(_Model):
    enabled: bool = Field(default=False, description="Create a SageMaker Studio domain.")
    user_profiles: tuple[str, ...] = Field(
        default=("data-scientist",), description="Studio user profiles to create."
    )


class GpuQuotaRequest(_Model):
    instance_type: str = Field(description="SageMaker instance type, e.g. ml.g4dn.xlarge.")
    usage: Literal["training job", "processing job", "endpoint"] = Field(
        description="Which SageMaker quota: training job, processing job or endpoint usage."
    )
    value: int = Field(ge=1, le=100, description="Requested number of instances.")

    @model_validator(mode="after")
    def _instance(self) -> GpuQuotaRequest:
        if not _INSTANCE_RE.match(self.instance_type):
            raise ValueError(
                f"instance_type must look like ml.g4dn.xlarge, got {self.instance_type!r}"
            )
        return self

    @property
    def quota_name(self) -> str:
        return f"{self.instance_type} for {self.usage} usage"


class RetrainingSettings(_Model):
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
        if not re.match(r"^(cron|rate|at)\(.+\)$", self.schedule_expression):
            raise ValueError(
                "schedule_expression must be cron(...), rate(...) or at(...), "
                f"got {self.schedule_expression!r}"
            )
        return self


class PipelineSettings(_Model):
    processing_instance_type: str = Field(
        default="ml.m5.large", description="Instance type of the processing steps."
    )
    training_instance_type: str = Field(
        default="ml.m5.large", description="Instance type of the training step (GPU optional)."
    )
    accuracy_threshold: float = Field(
        default=0.7, gt=0, le=1, description="Default minimum accuracy to register and approve."
    )
    epochs: int = Field(default=20, ge=1, le=1000, description="Default training epochs.")
    batch_size: int = Field(default=256, ge=1, description="Default training batch size.")
    learning_rate: float = Field(default=0.001, gt=0, le=1, description="Default learning rate.")
    cache_expire_after: str = Field(
        default="P30D",
        description="ISO 8601 duration train and evaluate results stay cached (preprocess: never).",
    )

    @model_validator(mode="after")
    def _instances(self) -> PipelineSettings:
        for key in ("processing_instance_type", "training_instance_type"):
            if not _INSTANCE_RE.match(getattr(self, key)):
                raise ValueError(f"{key} must look like ml.m5.large, got {getattr(self, key)!r}")
        return self


PROD_MIN_ENDPOINT_INSTANCES = 2
"""Prod endpoints need at least this many instances (also the policy pack's minimum)."""


class RolloutSettings(_Model):
    mode: Literal["canary", "linear", "all_at_once"] = Field(
        default="all_at_once",
        description="Blue/green traffic shifting; canary and linear need 2+ instances.",
    )
    canary_percent: int = Field(
        default=10, ge=1, le=50, description="Canary: traffic share of the first step (1-50 %)."
    )
    linear_step_percent: int = Field(
        default=20, ge=10, le=50, description="Linear: traffic share of each step (10-50 %)."
    )
    wait_seconds: int = Field(default=300, ge=0, le=3600, description="Wait between traffic steps.")
    termination_wait_seconds: int = Field(
        default=120, ge=0, le=3600, description="Wait before the old fleet is terminated."
    )
    maximum_execution_timeout_seconds: int = Field(
        default=3600, ge=600, le=28800, description="Upper bound of one blue/green rollout."
    )


class EndpointSettings(_Model):
    instance_type: str = Field(default="ml.m5.large", description="Endpoint instance type.")
    instance_count: int = Field(default=1, ge=1, le=20, description="Endpoint instances.")
    rollout: RolloutSettings = Field(
        default_factory=RolloutSettings, description="Blue/green rollout."
    )
    data_capture_sampling_percent: int = Field(
        default=100, ge=1, le=100, description="Share of requests captured to S3."
    )
    latency_alarm_microseconds: int = Field(
        default=500_000, ge=1_000, description="ModelLatency (p90) that triggers rollback."
    )
    error_alarm_threshold: int = Field(
        default=5, ge=1, description="Invocation5XXErrors per minute that trigger rollback."
    )

    @model_validator(mode="after")
    def _instance(self) -> EndpointSettings:
        if not _INSTANCE_RE.match(self.instance_type):
            raise ValueError(
                f"instance_type must look like ml.m5.large, got {self.instance_type!r}"
            )
        if self.rollout.mode != "all_at_once" and self.instance_count < 2:
            raise ValueError(
                f"rollout.mode {self.rollout.mode} shifts part of the traffic to part of the "
                "fleet, which needs instance_count >= 2; set instance_count: 2 or "
                "rollout.mode: all_at_once"
            )
        return self


class PromotionSettings(_Model):
    source_stack: str | None = Field(
        default=None,
        description="Fully qualified stack (org/project/stack) whose deployed commit this "
        "stack must match, e.g. organization/promote-code/staging for prod.",
    )


class EnvironmentSettings(_CommonSettings):
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

    @model_validator(mode="after")
    def _studio_needs_network(self) -> EnvironmentSettings:
        if self.studio.enabled and not self.network.enabled:
            raise ValueError(
                "studio.enabled needs network.enabled: true (the Studio domain runs in the "
                "stack's private subnets)"
            )
        return self


Settings = OpsSettings | EnvironmentSettings


def _key_path(loc: Sequence[int | str]) -> str:
    parts = [SETTINGS_KEY]
    for item in loc:
        if isinstance(item, int):
            parts[-1] += f"[{item}]"
        else:
            parts.append(str(item))
    return ".".join(parts)


def _describe(error: ValidationError, source: str) -> str:
    lines = []
    for err in error.errors():
        loc = [p for p in err["loc"] if p not in ("function-after",)]
        key = _key_path(loc)
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "is not a known setting; remove it or check its spelling"
        elif err["type"] == "missing":
            message = "is required; add it"
        lines.append(f"{source}: {key} {message}")
    return "\n".join(lines)


def load_settings(
    stack: str,
    raw: Mapping[str, Any] | None,
    *,
    aws_region: str | None,
    allowed_account_ids: Sequence[object] | None,
) -> Settings:
    """Validate one stack's settings; raise SettingsError with every problem found."""
    source = f"Pulumi.{stack}.yaml"
    if stack not in STACKS:
        raise SettingsError(
            f"unknown stack {stack!r}: this project has the stacks {', '.join(STACKS)} "
            "(pulumi stack select ops|dev|staging|prod)"
        )
    if raw is None:
        raise SettingsError(f"{source}: {SETTINGS_KEY} is missing; copy it from Pulumi.dev.yaml")
    if not isinstance(raw, Mapping):
        raise SettingsError(f"{source}: {SETTINGS_KEY} must be an object, got {raw!r}")
    model: type[OpsSettings] | type[EnvironmentSettings] = (
        OpsSettings if stack == "ops" else EnvironmentSettings
    )
    try:
        settings = model.model_validate(dict(raw))
    except ValidationError as error:
        raise SettingsError(_describe(error, source)) from None
    _check_aws_config(source, stack, settings, aws_region, allowed_account_ids)
    if (
        stack == "prod"
        and isinstance(settings, EnvironmentSettings)
        and settings.endpoint.instance_count < PROD_MIN_ENDPOINT_INSTANCES
    ):
        raise SettingsError(
            f"{source}: {SETTINGS_KEY}.endpoint.instance_count must be at least "
            f"{PROD_MIN_ENDPOINT_INSTANCES} in prod (the policy minimum), "
            f"got {settings.endpoint.instance_count}"
        )
    return settings


def _check_aws_config(
    source: str,
    stack: str,
    settings: Settings,
    aws_region: str | None,
    allowed_account_ids: Sequence[object] | None,
) -> None:
    if not aws_region:
        raise SettingsError(f"{source}: aws:region is missing; add `aws:region: {settings.region}`")
    if aws_region != settings.region:
        raise SettingsError(
            f"{source}: aws:region is {aws_region!r} but {SETTINGS_KEY}.region is "
            f"{settings.region!r}; make them the same"
        )
    account = settings.accounts.for_stack(stack)
    if allowed_account_ids is None or [str(a) for a in allowed_account_ids] != [account]:
        raise SettingsError(
            f'{source}: aws:allowedAccountIds must be ["{account}"] (the {stack} account, '
            f"so a wrong AWS profile fails before anything changes), got {allowed_account_ids!r}"
        )
