"""What a deployment changes in SageMaker: models, endpoint configs, the endpoint.

Every Create* uses a deterministic name (`ml.deployer.naming`) and is reused
when it exists; a call that loses a name race to a concurrent deployment
("Cannot create already existing ...") checks what the winner created and
carries on, so concurrent deployments of one package converge.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Final, Literal

from botocore.exceptions import ClientError

from ml.deployer import naming
from ml.deployer.config import DeployerConfig
from ml.deployer.errors import (
    DeployError,
    EndpointBusyError,
    RetryableDeployError,
    error_message,
    is_name_race,
)
from ml.deployer.registry import SageMakerClient, describe_or_none
from ml.deployer.requests import Plan, deployment_config
from ml.lineage.keys import COMMIT_TAG, PACKAGE_ARN_TAG

Action = Literal["created", "updated", "noop"]
MANAGED_BY: Final = "promote-code-deployer"


@dataclass(frozen=True)
class DeployResult:
    action: Action
    reason: str
    package_arn: str
    endpoint_name: str
    package_version: int | None = None
    model_name: str | None = None
    endpoint_config_name: str | None = None
    previous_endpoint_config_name: str | None = None
    warning: str | None = None
    """Set when an operator should act although nothing failed (a rejected model serves)."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Candidate:
    """An approved package that should run, and what the registry says about it."""

    package_arn: str
    version: int
    latest_version: int
    model_data_urls: tuple[str, ...]
    commit: str | None = None
    """The package's CustomerMetadataProperties commit (ml.lineage.package_commit)."""


def create_endpoint(
    sm: SageMakerClient, config: DeployerConfig, plan: Plan, candidate: Candidate
) -> DeployResult:
    try:
        sm.create_endpoint(
            EndpointName=config.endpoint_name,
            EndpointConfigName=plan.endpoint_config_name,
            Tags=_tags(candidate.package_arn),
        )
    except ClientError as error:
        if not is_name_race(error):
            raise
        # Another invocation created the endpoint between our describe and create.
        winner = describe_or_none(sm.describe_endpoint, EndpointName=config.endpoint_name)
        if winner is not None and winner.get("EndpointConfigName") == plan.endpoint_config_name:
            return DeployResult(
                "noop",
                "the endpoint was created concurrently with this deployment",
                candidate.package_arn,
                config.endpoint_name,
                candidate.version,
                plan.model_name,
                plan.endpoint_config_name,
            )
        raise EndpointBusyError(
            f"endpoint {config.endpoint_name} was created concurrently with another "
            "deployment; this approval is retried"
        ) from error
    return DeployResult(
        "created",
        "first deployment of this endpoint",
        candidate.package_arn,
        config.endpoint_name,
        candidate.version,
        plan.model_name,
        plan.endpoint_config_name,
    )


def update_endpoint(
    sm: SageMakerClient,
    config: DeployerConfig,
    plan: Plan,
    candidate: Candidate,
    endpoint: dict[str, Any],
) -> DeployResult:
    previous = str(endpoint.get("EndpointConfigName"))
    version = candidate.version
    if previous.startswith(f"{naming.resource_prefix(config.endpoint_name)}-v{version}-"):
        reason = f"settings changed for the served version {version}"
    elif candidate.latest_version > version:
        latest = candidate.latest_version
        reason = f"operator rollback to approved version {version} (latest is {latest})"
    else:
        reason = f"approved version {version} replaces the served deployment"
    try:
        sm.update_endpoint(
            EndpointName=config.endpoint_name,
            EndpointConfigName=plan.endpoint_config_name,
            # The new config's variants and data capture apply in full.
            RetainAllVariantProperties=False,
            DeploymentConfig=deployment_config(config),
        )
    except ClientError as error:
        message = error_message(error).lower()
        if "in-progress" in message or "in progress" in message or "updating" in message:
            raise EndpointBusyError(
                f"endpoint {config.endpoint_name} started another update; retry"
            ) from error
        raise
    return DeployResult(
        "updated",
        reason,
        candidate.package_arn,
        config.endpoint_name,
        version,
        plan.model_name,
        plan.endpoint_config_name,
        previous,
    )


def _tags(package_arn: str, commit: str | None = None) -> list[dict[str, str]]:
    tags = [
        {"Key": "managed-by", "Value": MANAGED_BY},
        {"Key": PACKAGE_ARN_TAG, "Value": package_arn},
    ]
    # Only on what serves exactly this package (model, endpoint config): the endpoint's
    # tags are set once at creation and would go stale with the next update.
    if commit is not None:
        tags.append({"Key": COMMIT_TAG, "Value": commit})
    return tags


def ensure_model(
    sm: SageMakerClient, plan: Plan, package_arn: str, commit: str | None = None
) -> None:
    def check(existing: dict[str, Any]) -> None:
        served = (existing.get("PrimaryContainer") or {}).get("ModelPackageName")
        if served != package_arn:
            raise DeployError(
                f"model {plan.model_name} exists but serves {served!r}, not {package_arn}; "
                "delete it (it was not created by this deployer)"
            )

    existing = describe_or_none(sm.describe_model, ModelName=plan.model_name)
    if existing is not None:
        check(existing)
        return
    try:
        sm.create_model(
            ModelName=plan.model_name, Tags=_tags(package_arn, commit), **plan.model_request
        )
    except ClientError as error:
        if not is_name_race(error):
            raise
        check(_winner(sm.describe_model, "model", ModelName=plan.model_name))


def ensure_endpoint_config(
    sm: SageMakerClient, plan: Plan, package_arn: str, commit: str | None = None
) -> None:
    name = plan.endpoint_config_name
    if describe_or_none(sm.describe_endpoint_config, EndpointConfigName=name) is not None:
        return
    try:
        sm.create_endpoint_config(
            EndpointConfigName=name,
            Tags=_tags(package_arn, commit),
            **plan.endpoint_config_request,
        )
    except ClientError as error:
        if not is_name_race(error):
            raise
        # The name hashes the whole request: whoever won created the same config.
        _winner(sm.describe_endpoint_config, "endpoint config", EndpointConfigName=name)


def _winner(call: Any, what: str, **name: str) -> dict[str, Any]:
    """The resource a concurrent deployment created under our deterministic name."""
    found = describe_or_none(call, **name)
    if found is None:
        raise RetryableDeployError(
            f"{what} {next(iter(name.values()))} was being created concurrently; retry"
        )
    return found
