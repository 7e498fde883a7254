"""Deploy an approved model package to the stack's endpoint: safe, idempotent, observable.

`deploy_package` is the whole decision and the only function that talks to
SageMaker. It is used by the Lambda handler, the manual command and the local
pipeline run (against moto). It never deletes anything: the endpoint config an
endpoint uses stays, and so does the previous one a rollback returns to.

Decision, in order:
1. the package must still exist, belong to this stack's group and be Approved
   (a package no longer approved that the endpoint still serves is logged as a
   warning that says what to do: nothing is rolled back without an operator);
2. it must be the latest approved version of the group (an older approval
   arriving late, or a replayed event for a superseded version, does nothing);
3. an endpoint that is Creating/Updating/... raises `EndpointBusyError`
   (retryable) - unless it is already rolling out exactly this deployment;
   one in any other state but InService (Failed, OutOfService, ...) raises
   `DeployError` for an operator, even if it is on the desired endpoint config;
4. an InService endpoint already on the desired endpoint config does nothing;
5. its model artifacts (ModelDataUrl) must exist in S3 (HeadObject), checked
   before anything is created;
6. otherwise create the model and endpoint config (deterministic names, reused
   when they exist) and CreateEndpoint, or UpdateEndpoint with a blue/green
   DeploymentConfig and auto-rollback alarms.

Concurrent deployments of the same package converge: a Create* call that
loses the race for a deterministic name ("Cannot create already existing")
checks that the winner created the same thing and carries on; two
CreateEndpoint calls end with one endpoint and one "created" result.
"""

from __future__ import annotations

from typing import Any, Final

from ml.deployer.actions import (
    Candidate,
    DeployResult,
    create_endpoint,
    ensure_endpoint_config,
    ensure_model,
    update_endpoint,
)
from ml.deployer.config import DeployerConfig
from ml.deployer.errors import DeployError, EndpointBusyError, RetryableDeployError
from ml.deployer.logs import deployer_logger
from ml.deployer.registry import (
    S3Client,
    SageMakerClient,
    check_model_artifacts,
    describe_or_none,
    latest_approved_version,
    model_data_urls,
    package_version_from_arn,
    resolve_package_arn,
    served_package_arns,
)
from ml.deployer.requests import (
    Plan,
    data_capture_config,
    deployment_config,
    has_local_storage,
    plan_for,
    traffic_routing,
)
from ml.lineage.keys import package_commit

# Re-exported: callers and tests import the deployer's public names from here.
__all__ = [
    "DeployError",
    "DeployResult",
    "EndpointBusyError",
    "RetryableDeployError",
    "SageMakerClient",
    "data_capture_config",
    "deploy_package",
    "deployment_config",
    "has_local_storage",
    "latest_approved_version",
    "package_version_from_arn",
    "plan_for",
    "resolve_package_arn",
    "traffic_routing",
]

BUSY_STATUSES: Final = frozenset(
    {"Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting"}
)
"""Endpoint states in which a second update must not start; the event is retried later."""
DEPLOYABLE_STATUSES: Final = frozenset({"InService"})


class _NoDeploymentError(Exception):
    """Internal: the event needs no deployment, for the reason given."""

    def __init__(
        self,
        reason: str,
        version: int | None = None,
        plan: Plan | None = None,
        warning: str | None = None,
    ):
        super().__init__(reason)
        self.reason = reason
        self.version = version
        self.plan = plan
        self.warning = warning


def deploy_package(
    sm: SageMakerClient,
    config: DeployerConfig,
    package_arn: str,
    *,
    allow_older: bool = False,
    s3: S3Client | None = None,
) -> DeployResult:
    """Make the endpoint serve `package_arn` if, and only if, it is the one to serve.

    `allow_older` lets an operator roll back to an older approved version on
    purpose (the manual command's --version); events never set it. `s3` checks
    the model artifacts exist before anything is created (the Lambda and the
    manual command always pass it; without it the check is skipped).
    Logs one JSON line with the decision; failures are raised for the caller to log.
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
            warning=skip.warning,
        )
    else:
        if s3 is not None:
            check_model_artifacts(s3, candidate.package_arn, list(candidate.model_data_urls))
        ensure_model(sm, plan, candidate.package_arn, candidate.commit)
        ensure_endpoint_config(sm, plan, candidate.package_arn, candidate.commit)
        if endpoint is None:
            result = create_endpoint(sm, config, plan, candidate)
        else:
            result = update_endpoint(sm, config, plan, candidate, endpoint)
    log = deployer_logger()
    if result.warning:
        log.warning("deployment decision; needs an operator's attention", extra=result.as_dict())
    else:
        log.info("deployment decision", extra=result.as_dict())
    return result


def _candidate(
    sm: SageMakerClient, config: DeployerConfig, package_arn: str, *, allow_older: bool
) -> Candidate:
    """The package, if it is an approved version of this stack's group that should run."""
    package = describe_or_none(sm.describe_model_package, ModelPackageName=package_arn)
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
        raise _NoDeploymentError(
            f"the package is {status}, not Approved",
            version,
            warning=_still_served_warning(sm, config, arn, str(status)),
        )
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
    return Candidate(
        arn, version, latest[0], tuple(model_data_urls(package)), package_commit(package)
    )


def _still_served_warning(
    sm: SageMakerClient, config: DeployerConfig, package_arn: str, status: str
) -> str | None:
    """What to do when the endpoint serves a package that is no longer approved."""
    if package_arn not in served_package_arns(sm, config.endpoint_name):
        return None
    latest = latest_approved_version(sm, config.model_package_group_name)
    remedy = (
        f"deploy approved version {latest[0]} with `python -m ml.deployer.manual --stack "
        f"<stack> --version {latest[0]}`"
        if latest
        else "approve a replacement (it deploys automatically) or take the endpoint out of service"
    )
    return (
        f"endpoint {config.endpoint_name} still serves {package_arn}, which is {status}; "
        f"nothing was rolled back automatically: {remedy}"
    )


def _deployable_endpoint(
    sm: SageMakerClient, config: DeployerConfig, plan: Plan
) -> dict[str, Any] | None:
    """The endpoint (None if it does not exist yet), if it can and should take the plan."""
    endpoint = describe_or_none(sm.describe_endpoint, EndpointName=config.endpoint_name)
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
            f"(version {plan.version} is deployed when this approval is retried)"
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
