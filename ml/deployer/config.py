"""What the deployer needs to know, and how it travels in Lambda environment variables.

The `ModelDeployer` component writes these variables and the handler reads them
back with `DeployerConfig.from_env`, so the names live here, once. Reading is
explicit (a mapping is passed in), never done at import time. Ranges and
defaults are `ml.limits`, the ones the stack settings (`infra/settings/`) use.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Final

from ml import limits
from ml.limits import ROLLOUT_MODES, RolloutMode

DEFAULT_VARIANT: Final = "AllTraffic"
MAX_ROLLBACK_ALARMS: Final = 10
"""SageMaker's AutoRollbackConfiguration takes at most this many alarms."""

_S3_URI_RE = re.compile(r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?$")


class Env:
    """Names of the Lambda environment variables set by the ModelDeployer component."""

    ENDPOINT_NAME: Final = "DEPLOYER_ENDPOINT_NAME"
    MODEL_PACKAGE_GROUP: Final = "DEPLOYER_MODEL_PACKAGE_GROUP"
    EXECUTION_ROLE_ARN: Final = "DEPLOYER_EXECUTION_ROLE_ARN"
    INSTANCE_TYPE: Final = "DEPLOYER_INSTANCE_TYPE"
    INSTANCE_COUNT: Final = "DEPLOYER_INSTANCE_COUNT"
    ROLLOUT: Final = "DEPLOYER_ROLLOUT"
    """JSON object: mode, canary_percent, linear_step_percent, wait_seconds,
    termination_wait_seconds, maximum_execution_timeout_seconds."""
    DATA_CAPTURE_S3_URI: Final = "DEPLOYER_DATA_CAPTURE_S3_URI"
    DATA_CAPTURE_PERCENT: Final = "DEPLOYER_DATA_CAPTURE_PERCENT"
    KMS_KEY_ARN: Final = "DEPLOYER_KMS_KEY_ARN"
    ROLLBACK_ALARMS: Final = "DEPLOYER_ROLLBACK_ALARMS"
    """JSON array of CloudWatch alarm names that roll a blue/green update back."""

    ALL: Final[tuple[str, ...]] = (
        ENDPOINT_NAME,
        MODEL_PACKAGE_GROUP,
        EXECUTION_ROLE_ARN,
        INSTANCE_TYPE,
        INSTANCE_COUNT,
        ROLLOUT,
        DATA_CAPTURE_S3_URI,
        DATA_CAPTURE_PERCENT,
        KMS_KEY_ARN,
        ROLLBACK_ALARMS,
    )


class DeployerConfigError(ValueError):
    """The deployer's configuration is missing or invalid; the message names the variable."""


@dataclass(frozen=True)
class RolloutConfig:
    """Blue/green traffic shifting, as `infra.settings.RolloutSettings` sets it."""

    mode: RolloutMode = limits.DEFAULT_ROLLOUT_MODE
    canary_percent: int = limits.CANARY_PERCENT.default
    linear_step_percent: int = limits.LINEAR_STEP_PERCENT.default
    wait_seconds: int = limits.WAIT_SECONDS.default
    termination_wait_seconds: int = limits.TERMINATION_WAIT_SECONDS.default
    maximum_execution_timeout_seconds: int = limits.MAXIMUM_EXECUTION_TIMEOUT_SECONDS.default

    def __post_init__(self) -> None:
        checks = [
            limits.choice_problem("mode", self.mode, ROLLOUT_MODES),
            limits.CANARY_PERCENT.problem("canary_percent", self.canary_percent),
            limits.LINEAR_STEP_PERCENT.problem("linear_step_percent", self.linear_step_percent),
            limits.WAIT_SECONDS.problem("wait_seconds", self.wait_seconds),
            limits.TERMINATION_WAIT_SECONDS.problem(
                "termination_wait_seconds", self.termination_wait_seconds
            ),
            limits.MAXIMUM_EXECUTION_TIMEOUT_SECONDS.problem(
                "maximum_execution_timeout_seconds", self.maximum_execution_timeout_seconds
            ),
        ]
        problems = [problem for problem in checks if problem]
        if problems:
            raise DeployerConfigError(f"rollout: {'; '.join(problems)}")

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> RolloutConfig:
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(raw) - known)
        if unknown:
            raise DeployerConfigError(f"rollout: unknown keys {unknown}; known: {sorted(known)}")
        return cls(**dict(raw))

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


@dataclass(frozen=True)
class DeployerConfig:
    """Everything one deployment needs besides the model package itself."""

    endpoint_name: str
    model_package_group_name: str
    execution_role_arn: str
    data_capture_s3_uri: str
    instance_type: str = limits.DEFAULT_INSTANCE_TYPE
    instance_count: int = limits.INSTANCE_COUNT.default
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    data_capture_sampling_percent: int = limits.DATA_CAPTURE_SAMPLING_PERCENT.default
    kms_key_arn: str | None = None
    rollback_alarm_names: tuple[str, ...] = ()
    variant_name: str = DEFAULT_VARIANT

    def __post_init__(self) -> None:
        checks = [
            limits.instance_type_problem("instance_type", self.instance_type),
            limits.INSTANCE_COUNT.problem("instance_count", self.instance_count),
            limits.DATA_CAPTURE_SAMPLING_PERCENT.problem(
                "data_capture_sampling_percent", self.data_capture_sampling_percent
            ),
        ]
        problems = [problem for problem in checks if problem]
        if not _S3_URI_RE.match(self.data_capture_s3_uri):
            problems.append(
                f"data capture destination must be an s3:// URI, got {self.data_capture_s3_uri!r}"
            )
        if not self.execution_role_arn.startswith("arn:"):
            problems.append(f"execution role must be an ARN, got {self.execution_role_arn!r}")
        if len(self.rollback_alarm_names) > MAX_ROLLBACK_ALARMS:
            problems.append(
                f"at most {MAX_ROLLBACK_ALARMS} rollback alarms (AutoRollbackConfiguration limit)"
            )
        if problems:
            raise DeployerConfigError("; ".join(problems))

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> DeployerConfig:
        """Read the variables the ModelDeployer component sets (see `Env`)."""

        def required(name: str) -> str:
            value = env.get(name, "").strip()
            if not value:
                raise DeployerConfigError(
                    f"environment variable {name} is missing or empty; the ModelDeployer "
                    "component sets it (redeploy the stack, or export it for a local run)"
                )
            return value

        def integer(name: str, default: int) -> int:
            value = env.get(name, "").strip()
            if not value:
                return default
            try:
                return int(value)
            except ValueError:
                raise DeployerConfigError(f"{name} must be an integer, got {value!r}") from None

        def json_value(name: str, default: object) -> Any:
            value = env.get(name, "").strip()
            if not value:
                return default
            try:
                return json.loads(value)
            except json.JSONDecodeError as error:
                raise DeployerConfigError(f"{name} is not valid JSON: {error}") from None

        rollout_raw = json_value(Env.ROLLOUT, {})
        if not isinstance(rollout_raw, dict):
            raise DeployerConfigError(f"{Env.ROLLOUT} must be a JSON object, got {rollout_raw!r}")
        alarms = json_value(Env.ROLLBACK_ALARMS, [])
        if not isinstance(alarms, list) or not all(isinstance(a, str) and a for a in alarms):
            raise DeployerConfigError(
                f"{Env.ROLLBACK_ALARMS} must be a JSON array of alarm names, got {alarms!r}"
            )
        return cls(
            endpoint_name=required(Env.ENDPOINT_NAME),
            model_package_group_name=required(Env.MODEL_PACKAGE_GROUP),
            execution_role_arn=required(Env.EXECUTION_ROLE_ARN),
            data_capture_s3_uri=required(Env.DATA_CAPTURE_S3_URI),
            instance_type=env.get(Env.INSTANCE_TYPE, "").strip() or limits.DEFAULT_INSTANCE_TYPE,
            instance_count=integer(Env.INSTANCE_COUNT, limits.INSTANCE_COUNT.default),
            rollout=RolloutConfig.from_mapping(rollout_raw),
            data_capture_sampling_percent=integer(
                Env.DATA_CAPTURE_PERCENT, limits.DATA_CAPTURE_SAMPLING_PERCENT.default
            ),
            kms_key_arn=env.get(Env.KMS_KEY_ARN, "").strip() or None,
            rollback_alarm_names=tuple(alarms),
        )

    def to_env(self) -> dict[str, str]:
        """The inverse of `from_env` (used by local runs and tests)."""
        return {
            Env.ENDPOINT_NAME: self.endpoint_name,
            Env.MODEL_PACKAGE_GROUP: self.model_package_group_name,
            Env.EXECUTION_ROLE_ARN: self.execution_role_arn,
            Env.INSTANCE_TYPE: self.instance_type,
            Env.INSTANCE_COUNT: str(self.instance_count),
            Env.ROLLOUT: self.rollout.to_json(),
            Env.DATA_CAPTURE_S3_URI: self.data_capture_s3_uri,
            Env.DATA_CAPTURE_PERCENT: str(self.data_capture_sampling_percent),
            Env.KMS_KEY_ARN: self.kms_key_arn or "",
            Env.ROLLBACK_ALARMS: json.dumps(list(self.rollback_alarm_names)),
        }
