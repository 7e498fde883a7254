"""Deploy an approved model package to the stack's endpoint: safe, idempotent, observable.

`deploy_package` is the whole decision and the only function that talks to
SageMaker. It is used by the Lambda handler, the manual command and the local
pipeline run (against moto). It never deletes anything: the endpoint config an
endpoint uses stays, and so does the previous one a rollback returns to.

Decision, in order:
1. the package must still exist, belong to this stack's group and be Approved;
2. it must be the latest approved version of the group (an older approval
   arriving late, or a replayed event for a superseded version, does nothing);
3. an endpoint that is Creating/Updating/... raises `EndpointBusyError`
   (retryable) - unless it is already rolling out exactly this deployment;
   one in any other state but InService (Failed, OutOfService, ...) raises
   `DeployError` for an operator, even if it is on the desired endpoint config;
4. an InService endpoint already on the desired endpoint config does nothing;
5. otherwise create the model and endpoint config (deterministic names, reused
   when they exist) and CreateEndpoint, or UpdateEndpoint with a blue/green
   DeploymentConfig and auto-rollback alarms.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Final, Literal

from botocore.exceptions import ClientError

from ml.deployer import naming
from ml.deployer.config import DeployerConfig, RolloutConfig
from ml.deployer.logs import deployer_logger

SageMakerClient = Any
"""A boto3 SageMaker client (boto3 ships no type stubs in this project)."""

Action = Literal["created", "updated", "noop"]

BUSY_STATUSES: Final = frozenset(
    {"Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting"}
)
"""Endpoint states in which a second update must not start; the event is retried later."""
DEPLOYABLE_STATUSES: Final = frozenset({"InService"})
MANAGED_BY: Final = "promote-code-deployer"

_PACKAGE_ARN_RE = re.compile(
    r"^arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:\d{12}:model-package/(?P<group>[^/]+)/(?P<version>\d+)$"
)
# Instance families with local NVMe storage reject an endpoint-config KmsKeyId
# (their volumes are hardware-encrypted); data capture is still KMS-encrypted.
# A heuristic over today's families: "d"/"dn" variants and the large GPU/Trainium ones.
_LOCAL_STORAGE_FAMILY = re.compile(r"^(?:[a-z]+\d+[a-z]*dn?|g5|g6|g6e|p4de|p5[a-z]*|trn\d[a-z]*)$")


class DeployError(Exception):
    """The deployment cannot proceed; the message says what an operator should do."""


class RetryableDeployError(DeployError):
    """A transient condition: raising lets Lambda's async retries try again later."""


class EndpointBusyError(RetryableDeployError):
    """The endpoint is being created or updated; never start a second update."""


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

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class _Plan:
    """What the endpoint should run for one package under the current settings."""

    version: int
    model_name: str
    model_request: dict[str, Any]
    endpoint_config_name: str
    endpoint_config_request: dict[str, Any]


def package_version_from_arn(package_arn: str) -> int | None:
    match = _PACKAGE_ARN_RE.match(package_arn)
    return int(match["version"]) if match else None


def has_local_storage(instance_type: str) -> bool:
    family = instance_type.split(".")[1] if instance_type.count(".") == 2 else ""
    return bool(_LOCAL_STORAGE_FAMILY.match(family))


def traffic_routing(rollout: RolloutConfig, instance_count: int) -> dict[str, Any]:
    """SageMaker TrafficRoutingConfiguration for the configured rollout.

    Canary and linear steps must be at most half of the fleet, which one instance
    cannot satisfy: a single-instance endpoint shifts all at once (still
    blue/green, still baked against the rollback alarms).
    """
    wait = rollout.wait_seconds
    if rollout.mode == "all_at_once" or instance_count < 2:
        return {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": wait}
    if rollout.mode == "canary":
        return {
            "Type": "CANARY",
            "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": rollout.canary_percent},
            "WaitIntervalInSeconds": wait,
        }
    return {
        "Type": "LINEAR",
        "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": rollout.linear_step_percent},
        "WaitIntervalInSeconds": wait,
    }


def deployment_config(config: DeployerConfig) -> dict[str, Any]:
    """The DeploymentConfig of UpdateEndpoint: blue/green with auto-rollback on the alarms."""
    rollout = config.rollout
    document: dict[str, Any] = {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": traffic_routing(rollout, config.instance_count),
            "TerminationWaitInSeconds": rollout.termination_wait_seconds,
            "MaximumExecutionTimeoutInSeconds": rollout.maximum_execution_timeout_seconds,
        }
    }
    if config.rollback_alarm_names:
        document["AutoRollbackConfiguration"] = {
            "Alarms": [{"AlarmName": name} for name in config.rollback_alarm_names]
        }
    return document


def data_capture_config(config: DeployerConfig) -> dict[str, Any]:
    capture: dict[str, Any] = {
        "EnableCapture": True,
        "InitialSamplingPercentage": config.data_capture_sampling_percent,
        "DestinationS3Uri": config.data_capture_s3_uri,
        "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
        # Declared types are captured as text, so monitoring jobs can read them.
        "CaptureContentTypeHeader": {
            "CsvContentTypes": ["text/csv"],
            "JsonContentTypes": ["application/json"],
        },
    }
    if config.kms_key_arn:
        capture["KmsKeyId"] = config.kms_key_arn
    return capture


def plan_for(config: DeployerConfig, package_arn: str, version: int) -> _Plan:
    model_request: dict[str, Any] = {
        "PrimaryContainer": {"ModelPackageName": package_arn},
        "ExecutionRoleArn": config.execution_role_arn,
    }
    model_name = naming.model_name(config.endpoint_name, version, model_request)
    variant = {
        "VariantName": config.variant_name,
        "ModelName": model_name,
        "InitialInstanceCount": config.instance_count,
        "InstanceType": config.instance_type,
        "InitialVariantWeight": 1.0,
    }
    config_request: dict[str, Any] = {
        "ProductionVariants": [variant],
        "DataCaptureConfig": data_capture_config(config),
    }
    if config.kms_key_arn and not has_local_storage(config.instance_type):
        config_request["KmsKeyId"] = config.kms_key_arn
    config_name = naming.endpoint_config_name(config.endpoint_name, version, config_request)
    return _Plan(version, model_name, model_request, config_name, config_request)


def _tags(package_arn: str) -> list[dict[str, str]]:
    return [
        {"Key": "managed-by", "Value": MANAGED_BY},
        {"Key": "model-package-arn", "Value": package_arn},
    ]


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _error_message(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Message", ""))


def _not_found(error: ClientError) -> bool:
    # SageMaker reports a missing resource as a ValidationException "Could not find ...".
    message = _error_message(error).lower()
    return _error_code(error) in {"ValidationException", "ResourceNotFound"} and (
        "could not find" in message or "not found" in message or "does not exist" in message
    )


def _describe_or_none(call: Callable[..., dict[str, Any]], **kwargs: str) -> dict[str, Any] | None:
    try:
        return call(**kwargs)
    except ClientError as error:
        if _not_found(error):
            return None
        raise


def latest_approved_version(sm: SageMakerClient, group_name: str) -> tuple[int, str] | None:
    """Highest approved version of the group and its ARN, or None if nothing is approved."""
    best: tuple[int, str] | None = None
    paginator = sm.get_paginator("list_model_packages")
    for page in paginator.paginate(
        ModelPackageGroupName=group_name, ModelApprovalStatus="Approved"
    ):
        for summary in page.get("ModelPackageSummaryList", []):
            arn = summary["ModelPackageArn"]
            version = summary.get("ModelPackageVersion") or package_version_from_arn(arn)
            if version is not None and (best is None or int(version) > best[0]):
                best = (int(version), arn)
    return best


class _NoDeploymentError(Exception):
    """Internal: the event needs no deployment, for the reason given."""

    def __init__(self, reason: str, version: int | None = None, plan: _Plan | None = None):
        super().__init__(reason)
        self.reason = reason
        self.version = version
        self.plan = plan


@dataclass(frozen=True)
class _Candidate:
    package_arn: str
    version: int
    latest_version: int


def deploy_package(
    sm: SageMakerClient,
    config: DeployerConfig,
    package_arn: str,
    *,
    allow_older: bool = False,
) -> DeployResult:
    """Make the endpoint serve `package_arn` if, and only if, it is the one to serve.

    `allow_older` lets an operator roll back to an older approved version on
    purpose (the manual command's --version); events never set it.
    """
    try:
        candidate = _candidate(sm, config, package_arn, allow_older=allow_older)
        plan = plan_for(config, candidate.package_arn, candidate.version)
        endpoint = _deployable_endpoint(sm, config, plan)
    except _NoDeploymentError as skip:
        result = DeployResult(
            "noop",
            skip.reason,
            package_arn,
            config.endpoint_name,
            skip.version,
            skip.plan.model_name if skip.plan else None,
            skip.plan.endpoint_config_name if skip.plan else None,
        )
    else:
        _ensure_model(sm, plan, candidate.package_arn)
        _ensure_endpoint_config(sm, plan, candidate.package_arn)
        if endpoint is None:
            result = _create_endpoint(sm, config, plan, candidate)
        else:
            result = _update_endpoint(sm, config, plan, candidate, endpoint)
    deployer_logger().info("deployment decision", extra=result.as_dict())
    return result


def _candidate(
    sm: SageMakerClient, config: DeployerConfig, package_arn: str, *, allow_older: bool
) -> _Candidate:
    """The package, if it is an approved version of this stack's group that should run."""
    package = _describe_or_none(sm.describe_model_package, ModelPackageName=package_arn)
    if package is None:
        raise _NoDeploymentError("the model package no longer exists")
    arn = str(package.get("ModelPackageArn", package_arn))
    group = package.get("ModelPackageGroupName")
    if group != config.model_package_group_name:
        raise _NoDeploymentError(
            f"the package belongs to group {group!r}, not this stack's "
            f"{config.model_package_group_name!r}"
        )
    version_raw = package.get("ModelPackageVersion") or package_version_from_arn(arn)
    if version_raw is None:
        raise _NoDeploymentError("the package is not a versioned package of the group")
    version = int(version_raw)
    status = package.get("ModelApprovalStatus")
    if status != "Approved":
        raise _NoDeploymentError(f"the package is {status}, not Approved", version)
    if package.get("ModelPackageStatus", "Completed") != "Completed":
        raise RetryableDeployError(
            f"model package {arn} is {package.get('ModelPackageStatus')}, not Completed yet"
        )
    latest = latest_approved_version(sm, config.model_package_group_name)
    if latest is None or latest[0] < version:
        # The registry listing lags behind the approval that triggered this event.
        raise RetryableDeployError(
            f"version {version} is approved but the registry does not list it as approved yet"
        )
    if latest[0] > version and not allow_older:
        raise _NoDeploymentError(
            f"not the latest approved version: version {latest[0]} is", version
        )
    return _Candidate(arn, version, latest[0])


def _deployable_endpoint(
    sm: SageMakerClient, config: DeployerConfig, plan: _Plan
) -> dict[str, Any] | None:
    """The endpoint (None if it does not exist yet), if it can and should take the plan."""
    endpoint = _describe_or_none(sm.describe_endpoint, EndpointName=config.endpoint_name)
    if endpoint is None:
        return None
    state = str(endpoint.get("EndpointStatus"))
    current = endpoint.get("EndpointConfigName")
    pending = (endpoint.get("PendingDeploymentSummary") or {}).get("EndpointConfigName")
    if state in BUSY_STATUSES:
        if plan.endpoint_config_name in (pending, current):
            raise _NoDeploymentError(
                f"the endpoint is {state} with this deployment already", plan.version, plan
            )
        raise EndpointBusyError(
            f"endpoint {config.endpoint_name} is {state}; not starting a second update "
            f"(version {plan.version} is deployed when this event is retried)"
        )
    # The state first: a Failed/OutOfService endpoint on the planned config does not
    # serve this package, whatever its config name says.
    if state not in DEPLOYABLE_STATUSES:
        reason = endpoint.get("FailureReason", "no reason given")
        raise DeployError(
            f"endpoint {config.endpoint_name} is {state} ({reason}); it needs an operator: "
            "fix or delete it, then run `python -m ml.deployer.manual --stack <stack>`"
        )
    if current == plan.endpoint_config_name:
        raise _NoDeploymentError(
            "the endpoint already serves this package with these settings", plan.version, plan
        )
    return endpoint


def _create_endpoint(
    sm: SageMakerClient, config: DeployerConfig, plan: _Plan, candidate: _Candidate
) -> DeployResult:
    try:
        sm.create_endpoint(
            EndpointName=config.endpoint_name,
            EndpointConfigName=plan.endpoint_config_name,
            Tags=_tags(candidate.package_arn),
        )
    except ClientError as error:
        if "already exist" in _error_message(error).lower():
            raise EndpointBusyError(
                f"endpoint {config.endpoint_name} was created concurrently; retry"
            ) from error
        raise
    return DeployResult(
        "created",
        "first deployment of this endpoint",
        candidate.package_arn,
        config.endpoint_name,
        candidate.version,
        plan.model_name,
        plan.endpoint_config_name,
    )


def _update_endpoint(
    sm: SageMakerClient,
    config: DeployerConfig,
    plan: _Plan,
    candidate: _Candidate,
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
        message = _error_message(error).lower()
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


def _ensure_model(sm: SageMakerClient, plan: _Plan, package_arn: str) -> None:
    existing = _describe_or_none(sm.describe_model, ModelName=plan.model_name)
    if existing is not None:
        served = (existing.get("PrimaryContainer") or {}).get("ModelPackageName")
        if served != package_arn:
            raise DeployError(
                f"model {plan.model_name} exists but serves {served!r}, not {package_arn}; "
                "delete it (it was not created by this deployer)"
            )
        return
    sm.create_model(ModelName=plan.model_name, Tags=_tags(package_arn), **plan.model_request)


def _ensure_endpoint_config(sm: SageMakerClient, plan: _Plan, package_arn: str) -> None:
    existing = _describe_or_none(
        sm.describe_endpoint_config, EndpointConfigName=plan.endpoint_config_name
    )
    if existing is not None:
        return
    sm.create_endpoint_config(
        EndpointConfigName=plan.endpoint_config_name,
        Tags=_tags(package_arn),
        **plan.endpoint_config_request,
    )


def resolve_package_arn(sm: SageMakerClient, group_name: str, version: int | None) -> str:
    """ARN of a given version of the group, or of its latest approved version."""
    if version is None:
        latest = latest_approved_version(sm, group_name)
        if latest is None:
            raise DeployError(f"model package group {group_name} has no approved version")
        return latest[1]
    paginator = sm.get_paginator("list_model_packages")
    for page in paginator.paginate(ModelPackageGroupName=group_name):
        for summary in page.get("ModelPackageSummaryList", []):
            arn = str(summary["ModelPackageArn"])
            found = summary.get("ModelPackageVersion") or package_version_from_arn(arn)
            if found is not None and int(found) == version:
                return arn
    raise DeployError(f"model package group {group_name} has no version {version}")
