"""Validated stack settings: the only place where environments differ.

Each `Pulumi.<stack>.yaml` holds one object under `promote:settings`; it is
validated here, before any resource is declared, by pure pydantic models
(no AWS calls, no environment lookups).
"""

from __future__ import annotations

import ipaddress
import json
import re
import zoneinfo
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from ml import limits

STACKS: tuple[str, ...] = ("ops", "dev", "staging", "prod")
"""The stacks CI deploys, one per account."""
ENVIRONMENTS: tuple[str, ...] = ("dev", "staging", "prod")
PROMOTION_ORDER: tuple[str, ...] = ENVIRONMENTS
"""A commit goes dev -> staging -> prod; a stack may promote only from the one before it."""
IDENTITY_STACK = "identity"
"""The administrator's bootstrap stack (GitHub OIDC, CI roles, boundaries); never run by CI."""
SETTINGS_KEY = "promote:settings"

_ACCOUNT_RE = re.compile(r"^\d{12}$")
_REPO_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}$")


class SettingsError(Exception):
    """Stack settings are invalid; the message says which file, which key and what to write."""


def _account_id(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError(f"must be a quoted 12-digit account ID string, got {_shown(value)}")
    if isinstance(value, int):
        # YAML reads unquoted digits as a number: leading zeros are dropped and a leading 0
        # can even make it octal, so the number says nothing reliable about the account.
        raise ValueError(
            f"must be a quoted 12-digit string, got the number {value}: YAML reads unquoted "
            "digits as a number (dropping leading zeros, or reading them as octal); write the "
            'account ID in quotes exactly as AWS shows it, e.g. "012345678901"'
        )
    if not _ACCOUNT_RE.match(value):
        raise ValueError(f"must be exactly 12 digits, got {_shown(value)}")
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
        """The account a stack deploys into (the identity bootstrap runs from ops)."""
        return str(getattr(self, "ops" if stack == IDENTITY_STACK else stack))

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
                f"got {_shown(self.repository)}"
            )
        return self


class AccountAccess(_Model):
    """How the identity bootstrap reaches one account: a role to assume or a named profile."""

    role_arn: str | None = Field(default=None, description="Role the administrator assumes.")
    profile: str | None = Field(default=None, description="AWS CLI profile for that account.")

    @model_validator(mode="after")
    def _one_way(self) -> AccountAccess:
        if (self.role_arn is None) == (self.profile is None):
            raise ValueError("set exactly one of role_arn or profile")
        if self.role_arn is not None and not re.match(
            r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+$", self.role_arn
        ):
            raise ValueError(f"role_arn must be an IAM role ARN, got {_shown(self.role_arn)}")
        return self


class _CommonSettings(_Model):
    region: str = Field(description="AWS region of every account, e.g. eu-west-1.")
    accounts: Accounts = Field(description="The four account IDs.")
    github: GithubSettings = Field(description="The repository whose workflows deploy.")

    @model_validator(mode="after")
    def _region_shape(self) -> _CommonSettings:
        if not re.match(r"^[a-z]{2}(-gov)?-[a-z]+-\d$", self.region):
            raise ValueError(f"region must look like eu-west-1, got {_shown(self.region)}")
        return self


_BUCKET_RE = re.compile(r"^(?!xn--)(?!.*-s3alias$)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


class StateSettings(_Model):
    """A self-managed Pulumi state backend: `pulumi login s3://<bucket>`."""

    bucket: str = Field(description="S3 bucket of the state backend (a name, no wildcards).")
    account: Literal["ops", "dev", "staging", "prod"] = Field(
        default="ops", description="Which of the four accounts holds the bucket."
    )

    @model_validator(mode="after")
    def _bucket_name(self) -> StateSettings:
        name = self.bucket
        if not _BUCKET_RE.match(name) or ".." in name or re.match(r"^\d+\.\d+\.\d+\.\d+$", name):
            raise ValueError(
                f"bucket must be an S3 bucket name (3-63 lowercase letters, digits, dots and "
                f"hyphens, no wildcards), got {name[:80]!r}"
            )
        return self


class OpsSettings(_CommonSettings):
    """Settings of the `ops` stack."""

    untagged_image_expiry_days: int = Field(
        default=7, ge=1, le=365, description="Untagged ECR images are expired after this."
    )


class IdentitySettings(_CommonSettings):
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


def source_in_order(stack: str) -> str | None:
    """The stack `stack` may promote from: the one before it in PROMOTION_ORDER."""
    if stack not in PROMOTION_ORDER:
        return None
    position = PROMOTION_ORDER.index(stack)
    return PROMOTION_ORDER[position - 1] if position > 0 else None


class NetworkSettings(_Model):
    enabled: bool = Field(default=False, description="Create a VPC with private subnets.")
    cidr: str = Field(default="10.42.0.0/16", description="VPC CIDR block.")
    nat_gateway: bool = Field(
        default=False, description="Add a NAT gateway; without one, VPC endpoints give access."
    )

    @model_validator(mode="after")
    def _cidr(self) -> NetworkSettings:
        try:
            network = ipaddress.IPv4Network(self.cidr)
        except ValueError:
            network = None
        if network is None or not 16 <= network.prefixlen <= 24:
            raise ValueError(
                f"cidr must be an IPv4 network block from /16 to /24 such as 10.42.0.0/16, "
                f"got {_shown(self.cidr)}"
            )
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
        problem = limits.instance_type_problem(
            "instance_type", self.instance_type, "ml.g4dn.xlarge"
        )
        if problem:
            raise ValueError(problem)
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
        problem = schedule_problem(self.schedule_expression)
        if problem is not None:
            raise ValueError(f"schedule_expression {problem}")
        if not _is_timezone(self.timezone):
            raise ValueError(
                f"timezone must be an IANA time zone such as UTC or Europe/Berlin, "
                f"got {_shown(self.timezone)}"
            )
        return self


_CRON_FIELD = re.compile(r"^[0-9A-Z*?,/#LW-]+$")
_RATE = re.compile(r"^rate\(([1-9]\d*) (minute|minutes|hour|hours|day|days)\)$")
_AT = re.compile(r"^at\(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\)$")


def schedule_problem(expression: str) -> str | None:
    """Why `expression` is not an EventBridge Scheduler expression, or None.

    Forms (EventBridge Scheduler user guide, "Schedule types"): rate(<positive> <unit>),
    at(yyyy-mm-ddThh:mm:ss), cron(minutes hours day-of-month month day-of-week year) with
    `?` in exactly one of the two day fields.
    """
    if _RATE.match(expression) or _AT.match(expression):
        return None
    if expression.startswith("rate("):
        return f"must be rate(<positive whole number> minutes|hours|days), got {_shown(expression)}"
    if expression.startswith("cron(") and expression.endswith(")"):
        fields = expression[5:-1].split()
        if len(fields) != 6 or not all(_CRON_FIELD.match(f.upper()) for f in fields):
            return (
                "cron(...) needs 6 fields (minutes hours day-of-month month day-of-week year), "
                f"e.g. cron(0 3 ? * SUN *), got {_shown(expression)}"
            )
        if (fields[2] == "?") == (fields[4] == "?"):
            return (
                "cron(...) needs ? in exactly one of day-of-month and day-of-week, "
                f"got {_shown(expression)}"
            )
        return None
    return f"must be cron(...), rate(...) or at(...), got {_shown(expression)}"


def _is_timezone(name: str) -> bool:
    try:
        zoneinfo.ZoneInfo(name)
    except (ValueError, zoneinfo.ZoneInfoNotFoundError):
        return False
    return True


def _shown(value: object, limit: int = 80) -> str:
    """A value echoed in a message, cut to `limit` characters."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def _bounded(bounds: limits.Bounds[Any], description: str) -> Any:
    """A numeric field whose default and range are the ones the ML configs check (`ml.limits`)."""
    return Field(
        default=bounds.default,
        ge=bounds.minimum,
        le=bounds.maximum,
        gt=bounds.exclusive_minimum,
        description=description,
    )


class TrainerSettings(_Model):
    """The trainer and its hyperparameters' defaults (each is a pipeline parameter too)."""

    name: limits.TrainerName = Field(
        default=limits.DEFAULT_TRAINER, description="Trainer of ml/steps/train.py's registry."
    )
    c: float = _bounded(limits.REGULARIZATION_C, "LinearSVC C (inverse regularisation).")
    hash_bits: int = _bounded(limits.HASH_BITS, "n-grams hashed into 2**hash_bits columns.")
    max_features: int = _bounded(
        limits.MAX_FEATURES, "Hashed columns kept (chi2 against the labels)."
    )
    ngram_max: int = _bounded(limits.NGRAM_MAX, "Longest word n-gram.")
    class_weight: limits.ClassWeight = Field(
        default=limits.DEFAULT_CLASS_WEIGHT,
        description="balanced weighs classes by inverse frequency; none does not.",
    )
    seed: int = _bounded(limits.SEED, "Random seed of the fit.")


_REPLACED_PIPELINE_KEYS = {
    "accuracy_threshold": "metric_threshold (with approval_metric: accuracy to keep judging "
    "accuracy; the default macro_f1 >= 0.2 fits real notes)",
    "epochs": "trainer.c, trainer.max_features, ... (the tfidf-linear trainer fits in one pass)",
    "batch_size": "trainer.max_features (the tfidf-linear trainer fits in one pass)",
    "learning_rate": "trainer.c (the tfidf-linear trainer fits in one pass)",
}


class PipelineSettings(_Model):
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
    metric_threshold: float = _bounded(
        limits.METRIC_THRESHOLD,
        "Default MetricThreshold: approval_metric must reach it to approve.",
    )
    baseline_margin: float = _bounded(
        limits.BASELINE_MARGIN,
        "Default BaselineMargin: how far approval_metric must beat the majority-class baseline.",
    )
    champion_tolerance: float = _bounded(
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


PROD_MIN_ENDPOINT_INSTANCES = 2
"""Prod endpoints need at least this many instances (also the policy pack's minimum)."""


class RolloutSettings(_Model):
    mode: limits.RolloutMode = Field(
        default=limits.DEFAULT_ROLLOUT_MODE,
        description="Blue/green traffic shifting; canary and linear need 2+ instances.",
    )
    canary_percent: int = _bounded(
        limits.CANARY_PERCENT,
        f"Canary: traffic share of the first step ({limits.CANARY_PERCENT.span} %).",
    )
    linear_step_percent: int = _bounded(
        limits.LINEAR_STEP_PERCENT,
        f"Linear: traffic share of each step ({limits.LINEAR_STEP_PERCENT.span} %).",
    )
    wait_seconds: int = _bounded(limits.WAIT_SECONDS, "Wait between traffic steps.")
    termination_wait_seconds: int = _bounded(
        limits.TERMINATION_WAIT_SECONDS, "Wait before the old fleet is terminated."
    )
    maximum_execution_timeout_seconds: int = _bounded(
        limits.MAXIMUM_EXECUTION_TIMEOUT_SECONDS, "Upper bound of one blue/green rollout."
    )


class EndpointSettings(_Model):
    instance_type: str = Field(
        default=limits.DEFAULT_INSTANCE_TYPE, description="Endpoint instance type."
    )
    instance_count: int = _bounded(limits.INSTANCE_COUNT, "Endpoint instances.")
    rollout: RolloutSettings = Field(
        default_factory=RolloutSettings, description="Blue/green rollout."
    )
    data_capture_sampling_percent: int = _bounded(
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


class MonitoringSettings(_Model):
    enabled: bool = Field(
        default=False,
        description="Scheduled drift monitor of the endpoint's captured traffic "
        "(a processing job of the ops training image, a CloudWatch alarm).",
    )
    schedule_expression: str = Field(
        default="rate(1 day)", description="EventBridge Scheduler expression of the monitor job."
    )
    timezone: str = Field(default="UTC", description="Time zone of the schedule expression.")
    drift_threshold: float = _bounded(
        limits.DRIFT_THRESHOLD, "DriftScore (Jensen-Shannon distance) that raises the alarm."
    )
    min_records: int = _bounded(
        limits.DRIFT_MIN_RECORDS, "Fewer captured requests: insufficient data, no score."
    )
    retrain_on_drift: bool = Field(
        default=False,
        description="Start the training pipeline when the drift alarm fires "
        "(needs retraining.allowed; never while an execution runs).",
    )
    retrain_min_interval_days: int = _bounded(
        limits.DRIFT_RETRAIN_MIN_INTERVAL_DAYS,
        "At most one drift-triggered pipeline execution per this many days.",
    )

    @model_validator(mode="after")
    def _schedule(self) -> MonitoringSettings:
        problem = schedule_problem(self.schedule_expression)
        if problem is not None:
            raise ValueError(f"schedule_expression {problem}")
        if not _is_timezone(self.timezone):
            raise ValueError(
                f"timezone must be an IANA time zone such as UTC, got {_shown(self.timezone)}"
            )
        if self.retrain_on_drift and not self.enabled:
            raise ValueError("retrain_on_drift needs enabled: true (the monitor raises the alarm)")
        return self


class TrackingSettings(_Model):
    enabled: bool = Field(
        default=True,
        description="SageMaker managed MLflow tracking server for this environment's runs "
        "(billed while it runs: Small about USD 0.64/h, about USD 470 a month, plus storage; "
        "us-east-1 list price, check your region).",
    )
    size: Literal["Small", "Medium", "Large"] = Field(
        default="Small", description="Tracking server size (Small: up to 25 users)."
    )


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
        if len(message) > 300:
            message = f"{message[:300]}... (cut)"
        lines.append(f"{source}: {key} {message}")
    return "\n".join(lines)


def unknown_promote_keys(keys: Sequence[str]) -> list[str]:
    """Config keys in the `promote:` namespace other than `promote:settings` (typos)."""
    return sorted(k for k in keys if k.startswith("promote:") and k != SETTINGS_KEY)


def load_settings(
    stack: str,
    raw: Mapping[str, Any] | None,
    *,
    aws_region: str | None,
    allowed_account_ids: Sequence[object] | None,
) -> Settings:
    """Validate one stack's settings; raise SettingsError with every problem found."""
    source = f"Pulumi.{stack}.yaml"
    if stack not in (*STACKS, IDENTITY_STACK):
        raise SettingsError(
            f"unknown stack {stack!r}: this project has the stacks {', '.join(STACKS)} "
            f"and the {IDENTITY_STACK} bootstrap (pulumi stack select ops|dev|staging|prod)"
        )
    if raw is None:
        raise SettingsError(f"{source}: {SETTINGS_KEY} is missing; copy it from Pulumi.dev.yaml")
    if not isinstance(raw, Mapping):
        raise SettingsError(f"{source}: {SETTINGS_KEY} must be an object, got {_shown(raw)}")
    model = _MODELS.get(stack, EnvironmentSettings)
    try:
        # JSON mode, strict: "3" or 2.0 is no count and "yes" no boolean (YAML/JSON arrays
        # are still the tuples the models declare).
        settings = model.model_validate_json(json.dumps(dict(raw)), strict=True)
    except ValidationError as error:
        raise SettingsError(_describe(error, source)) from None
    _check_aws_config(source, stack, settings, aws_region, allowed_account_ids)
    if isinstance(settings, EnvironmentSettings):
        _check_promotion_source(source, stack, settings.promotion.source_stack)
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


_MODELS: dict[str, type[OpsSettings] | type[EnvironmentSettings] | type[IdentitySettings]] = {
    "ops": OpsSettings,
    IDENTITY_STACK: IdentitySettings,
}


def _check_promotion_source(source: str, stack: str, source_stack: str | None) -> None:
    """A stack promotes only from the one before it in PROMOTION_ORDER (prod from staging)."""
    if source_stack is None:
        return
    allowed = source_in_order(stack)
    parts = source_stack.split("/")
    if allowed is None or len(parts) != 3 or parts[2] != allowed or not all(parts):
        expected = (
            f"organization/<project>/{allowed} (the stack before {stack} in the promotion "
            f"order {' -> '.join(PROMOTION_ORDER)})"
            if allowed is not None
            else f"nothing: {stack} is first in the promotion order; remove promotion"
        )
        raise SettingsError(
            f"{source}: {SETTINGS_KEY}.promotion.source_stack is {source_stack[:120]!r}; "
            f"it must be {expected}"
        )


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
            f"{source}: aws:region is {_shown(aws_region)} but {SETTINGS_KEY}.region is "
            f"{_shown(settings.region)}; make them the same"
        )
    account = settings.accounts.for_stack(stack)
    listed = allowed_account_ids if isinstance(allowed_account_ids, list | tuple) else None
    if listed is None or [a if isinstance(a, str) else None for a in listed] != [account]:
        raise SettingsError(
            f'{source}: aws:allowedAccountIds must be ["{account}"] (the {stack} account, '
            f"so a wrong AWS profile fails before anything changes), got "
            f"{_shown(allowed_account_ids)}"
        )
