"""Lambda entry point (image CMD `ml.deployer.handler.handler`).

Approvals arrive from the SQS FIFO queue the `ModelDeployer` component feeds
from its EventBridge rule (see `ml.deployer.delivery`): one record per
invocation, one message group per endpoint, partial batch responses
(`ReportBatchItemFailures`). Configuration comes from the environment
variables the component sets (`ml.deployer.config.Env`), read per call.

Each message ends in exactly one of three ways, and writes exactly one JSON
log line saying which:

- done: deployed, or nothing to do (replay, superseded version, not an
  approval, a rejected package; a rejected package still being served is a
  WARNING line that says what to do). The message is deleted.
- retry (`"action": "retry"`): throttling, 5xx, connection errors, name
  races, a busy endpoint (an approval during a rollout), a registry not yet
  consistent. The message is reported as failed, so it returns to the queue,
  after a back-off the handler sets with ChangeMessageVisibility; after
  `delivery.MAX_RECEIVES` receives SQS moves it to the dead-letter queue.
- needs an operator (`"action": "failed"`): validation errors, a Failed
  endpoint, a missing model artifact, a bad configuration, a message that is
  not an event. Retrying cannot help, so the handler moves the message to the
  dead-letter queue at once (its alarm pages); if that fails it is retried.

Because FIFO delivery holds back later messages of a group while one is in
flight, an approval during a rollout is deployed after the rollout, and the
latest approved version wins (`deploy_package` skips superseded ones).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import boto3

from ml.deployer import delivery, errors
from ml.deployer.config import DeployerConfig, Env, RolloutConfig
from ml.deployer.deploy import DeployResult, deploy_package
from ml.deployer.events import deployer_event_pattern, matches
from ml.deployer.logs import deployer_logger
from ml.deployer.registry import S3Client, SageMakerClient

Outcome = Literal["done", "retry", "operator"]
ClientFactory = Callable[[str], Any]


def handle_event(
    event: Mapping[str, Any],
    sagemaker: SageMakerClient,
    config: DeployerConfig,
    s3: S3Client | None = None,
) -> DeployResult:
    """The deployment decision for one event (also used by the local pipeline run).

    Logs one JSON line on success; raises on failure (the caller logs it).
    """
    detail = event.get("detail")
    package_arn = str(detail.get("ModelPackageArn", "")) if isinstance(detail, Mapping) else ""
    pattern = deployer_event_pattern(config.model_package_group_name)
    if package_arn and matches(pattern, event):
        return deploy_package(sagemaker, config, package_arn, s3=s3)
    # The rule filters these out; a test event or a misrouted one must still do nothing.
    result = DeployResult(
        "noop",
        "not an approval of this stack's model package group",
        package_arn,
        config.endpoint_name,
    )
    deployer_logger().info("event ignored", extra={**result.as_dict(), "event_id": event.get("id")})
    return result


@dataclass
class _Context:
    """What one invocation shares between its records."""

    env: Mapping[str, str]
    client: ClientFactory
    _clients: dict[str, Any]

    def aws(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self.client(service)
        return self._clients[service]


def handler(event: object, context: object) -> dict[str, Any]:
    """Lambda entry point: an SQS batch in, its partial batch response out."""
    del context  # the decision does not depend on the invocation
    return handle_invocation(event, os.environ, boto3.client)


def handle_invocation(
    event: object, env: Mapping[str, str], client: ClientFactory
) -> dict[str, Any]:
    """The handler with its environment and client factory passed in (tests, benchmark)."""
    ctx = _Context(env, client, {})
    if delivery.is_sqs_batch(event):
        assert isinstance(event, Mapping)
        return {"batchItemFailures": _handle_batch(event["Records"], ctx)}
    # Invoked directly (a console test event): no queue to return to, so raise on failure.
    _, result = _process(event, None, ctx)
    if isinstance(result, Exception):
        raise result
    return result.as_dict()


def _handle_batch(records: Sequence[Mapping[str, Any]], ctx: _Context) -> list[dict[str, str]]:
    failures: list[dict[str, str]] = []
    for record in records:
        message = delivery.Message.from_record(record)
        if failures:
            # FIFO order: nothing after a failed message of the batch may run before it.
            _log_skipped(message, ctx)
            failures.append({"itemIdentifier": message.message_id})
            continue
        outcome, _ = _process(message.event(), message, ctx)
        # "operator": already moved to the dead-letter queue, so it is deleted from this one.
        if outcome == "retry":
            failures.append({"itemIdentifier": message.message_id})
    return failures


def _process(
    event: object, message: delivery.Message | None, ctx: _Context
) -> tuple[Outcome, DeployResult | Exception]:
    fields = _base_fields(event, message, ctx.env)
    config: DeployerConfig | None = None
    try:
        if not isinstance(event, Mapping):
            raise errors.DeployError(
                f"the message is not an EventBridge event (a JSON object), got "
                f"{type(event).__name__}: {str(event)[:200]!r}"
            )
        config = DeployerConfig.from_env(ctx.env)
        result = handle_event(event, ctx.aws("sagemaker"), config, ctx.aws("s3"))
    except Exception as error:  # every failure is classified and logged, then acted on
        rollout = config.rollout if config is not None else RolloutConfig()
        return _failed(error, fields, message, ctx, rollout), error
    return "done", result


def _failed(
    error: Exception,
    fields: dict[str, Any],
    message: delivery.Message | None,
    ctx: _Context,
    rollout: RolloutConfig,
) -> Outcome:
    log = deployer_logger()
    fields.update(reason=str(error), error_type=type(error).__name__)
    if errors.disposition(error) == "retry":
        fields.update(action="retry", retryable=True, needs_operator=False)
        if message is not None:
            fields.update(_back_off(message, ctx, rollout))
        log.warning("deployment deferred; the approval is retried", extra=fields)
        return "retry"
    fields.update(action="failed", retryable=False, needs_operator=True)
    outcome: Outcome = "operator"
    if message is not None:
        moved = _dead_letter(message, ctx, str(error))
        fields.update(moved)
        if not moved.get("dead_lettered"):
            outcome = "retry"  # SQS redrives it after MAX_RECEIVES instead
    unexpected = not isinstance(error, errors.DeployError | ValueError)
    log.error(
        "deployment failed; needs an operator",
        extra=fields,
        exc_info=error if unexpected else None,
    )
    return outcome


def _base_fields(
    event: object, message: delivery.Message | None, env: Mapping[str, str]
) -> dict[str, Any]:
    detail = event.get("detail") if isinstance(event, Mapping) else None
    fields: dict[str, Any] = {
        "package_arn": detail.get("ModelPackageArn") if isinstance(detail, Mapping) else None,
        # From the environment directly: the configuration may be what failed.
        "endpoint_name": env.get(Env.ENDPOINT_NAME, "").strip() or None,
        "event_id": event.get("id") if isinstance(event, Mapping) else None,
    }
    if message is not None:
        fields.update(message_id=message.message_id, receive_count=message.receive_count)
    return fields


def _back_off(message: delivery.Message, ctx: _Context, rollout: RolloutConfig) -> dict[str, Any]:
    delay = delivery.retry_delay_seconds(message.receive_count, rollout)
    queue_url = ctx.env.get(delivery.QUEUE_URL_ENV, "").strip()
    if not queue_url:
        return {"retry_in_seconds": None, "back_off_error": f"{delivery.QUEUE_URL_ENV} not set"}
    try:
        ctx.aws("sqs").change_message_visibility(
            QueueUrl=queue_url, ReceiptHandle=message.receipt_handle, VisibilityTimeout=delay
        )
    except Exception as error:  # the queue's own visibility timeout still applies
        return {"retry_in_seconds": None, "back_off_error": str(error)}
    return {"retry_in_seconds": delay}


def _dead_letter(message: delivery.Message, ctx: _Context, reason: str) -> dict[str, Any]:
    queue_url = ctx.env.get(delivery.DEAD_LETTER_QUEUE_URL_ENV, "").strip()
    if not queue_url:
        return {"dead_lettered": False, "dead_letter_error": "no dead-letter queue configured"}
    group = message.group_id or ctx.env.get(Env.ENDPOINT_NAME, "").strip() or "deployer"
    try:
        ctx.aws("sqs").send_message(
            QueueUrl=queue_url,
            MessageBody=message.body,
            MessageGroupId=group,
            MessageDeduplicationId=message.message_id[:128],
            MessageAttributes={"reason": {"DataType": "String", "StringValue": reason[:4096]}},
        )
    except Exception as error:
        return {"dead_lettered": False, "dead_letter_error": str(error)}
    return {"dead_lettered": True}


def _log_skipped(message: delivery.Message, ctx: _Context) -> None:
    fields = _base_fields(message.event(), message, ctx.env)
    fields.update(
        action="retry",
        retryable=True,
        needs_operator=False,
        reason="not attempted: an earlier message of this batch failed (FIFO order)",
    )
    deployer_logger().warning("deployment deferred; the approval is retried", extra=fields)
