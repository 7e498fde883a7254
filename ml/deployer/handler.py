"""Lambda entry point (image CMD `ml.deployer.handler.handler`).

An EventBridge "SageMaker Model Package State Change" event in, one logged
deployment decision out. Configuration comes from the environment variables
the ModelDeployer component sets (`ml.deployer.config.Env`), read per call.
Failures, and why every one is re-raised:

- A `RetryableDeployError` (endpoint busy, registry not yet consistent) is
  logged as `"action": "retry"` and raised, so Lambda's asynchronous retries
  run the event again later.
- Anything else (a `DeployError` such as a Failed endpoint, a bad
  configuration in the environment, an unexpected AWS error) is logged as
  `"action": "failed"` with `"needs_operator": true` and the reason, and is
  raised as well. Returning normally would drop the event silently: the
  on-failure destination (the dead-letter queue, with its alarm) only
  receives events whose invocation failed, and it is what pages an operator.
  The price is that Lambda retries such an event too (the configured number of
  async retries) before it lands there; that is harmless, because a decision
  changes nothing until it can succeed and every retry logs the same reason.

After the last retry the event goes to the on-failure destination.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import boto3

from ml.deployer.config import DeployerConfig, Env
from ml.deployer.deploy import (
    DeployResult,
    RetryableDeployError,
    SageMakerClient,
    deploy_package,
)
from ml.deployer.events import approval_event_pattern, matches
from ml.deployer.logs import deployer_logger


def handle_event(
    event: Mapping[str, Any], sagemaker: SageMakerClient, config: DeployerConfig
) -> DeployResult:
    """The deployment decision for one event (also used by the local pipeline run)."""
    detail = event.get("detail")
    package_arn = str(detail.get("ModelPackageArn", "")) if isinstance(detail, Mapping) else ""
    pattern = approval_event_pattern(config.model_package_group_name)
    if package_arn and matches(pattern, event):
        return deploy_package(sagemaker, config, package_arn)
    # The rule filters these out; a test event or a misrouted one must still do nothing.
    result = DeployResult(
        "noop",
        "not an approval of this stack's model package group",
        package_arn,
        config.endpoint_name,
    )
    deployer_logger().info("event ignored", extra={**result.as_dict(), "event_id": event.get("id")})
    return result


def handler(event: Mapping[str, Any], context: object) -> dict[str, Any]:
    """Lambda entry point: deploy the package `event` approves, if it is the one to serve."""
    del context  # the decision does not depend on the invocation
    try:
        # Inside the try: a configuration error is a failure like any other (logged, raised).
        config = DeployerConfig.from_env(os.environ)
        return handle_event(event, boto3.client("sagemaker"), config).as_dict()
    except RetryableDeployError as error:
        _log_failure(event, "retry", error)
        raise
    except Exception as error:
        # Raised too, so the event reaches the dead-letter queue (see the module docstring).
        _log_failure(event, "failed", error)
        raise


def _log_failure(event: Mapping[str, Any], action: str, error: Exception) -> None:
    detail = event.get("detail")
    fields = {
        "package_arn": detail.get("ModelPackageArn") if isinstance(detail, Mapping) else None,
        # From the environment directly: the configuration may be what failed.
        "endpoint_name": os.environ.get(Env.ENDPOINT_NAME, "").strip() or None,
        "action": action,
        "retryable": action == "retry",
        "needs_operator": action != "retry",
        "reason": str(error),
        "error_type": type(error).__name__,
        "event_id": event.get("id"),
    }
    log = deployer_logger()
    if action == "retry":
        log.warning("deployment deferred", extra=fields)
    else:
        log.error("deployment failed; needs an operator", extra=fields, exc_info=error)
