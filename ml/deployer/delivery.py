"""How approvals reach the deployer: an SQS FIFO queue, one message group per endpoint.

EventBridge rule -> FIFO queue (message group = endpoint name, content-based
deduplication, so a redelivered event is stored once) -> Lambda event source
mapping with batch size 1. FIFO delivery never hands out a message of a group
while an earlier one of that group is in flight, so deployments to one
endpoint run one at a time without reserved concurrency, and an approval that
arrives during a rollout waits behind it.

The numbers here are used by the `ModelDeployer` component (queue attributes)
and by the handler (retry delays), so they are written once:

- the queue's visibility timeout is longer than the longest rollout the
  settings allow (blue/green maximum execution time + termination wait) plus
  the Lambda timeout: a message whose invocation crashed is not redelivered
  while its rollout may still run;
- a retryable failure shortens the message's invisibility to an exponential
  back-off (1 minute, doubling, capped at the visibility timeout), so a busy
  endpoint is retried minutes after its rollout, not an hour later;
- after `MAX_RECEIVES` receives SQS moves the message to the dead-letter
  queue (hours of retries, see `retry_window_seconds`); a failure that needs
  an operator is moved there at once by the handler.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from ml.deployer.config import RolloutConfig

LAMBDA_TIMEOUT_SECONDS: Final = 120
"""The handler only issues a few API calls; it never waits for an endpoint."""
MAX_RECEIVES: Final = 16
"""Receives before SQS moves a message to the dead-letter queue (redrive maxReceiveCount)."""
FIRST_RETRY_DELAY_SECONDS: Final = 60
RETENTION_SECONDS: Final = 14 * 24 * 3600
"""SQS's maximum: longer than MAX_RECEIVES full visibility timeouts of any allowed rollout."""
SQS_MAX_VISIBILITY_SECONDS: Final = 12 * 3600

QUEUE_URL_ENV: Final = "DEPLOYER_QUEUE_URL"
"""The approvals queue, for ChangeMessageVisibility on a retry."""
DEAD_LETTER_QUEUE_URL_ENV: Final = "DEPLOYER_DEAD_LETTER_QUEUE_URL"
"""The FIFO dead-letter queue, where the handler moves approvals that need an operator."""
ENV_NAMES: Final = (QUEUE_URL_ENV, DEAD_LETTER_QUEUE_URL_ENV)


def rollout_bound_seconds(rollout: RolloutConfig) -> int:
    """The longest a blue/green update under `rollout` can take, old fleet removal included."""
    return rollout.maximum_execution_timeout_seconds + rollout.termination_wait_seconds


def visibility_timeout_seconds(rollout: RolloutConfig) -> int:
    """The queue's visibility timeout: longer than a rollout, plus one invocation."""
    seconds = rollout_bound_seconds(rollout) + LAMBDA_TIMEOUT_SECONDS
    if seconds > SQS_MAX_VISIBILITY_SECONDS:
        raise ValueError(f"visibility timeout {seconds} s exceeds SQS's 12 hours")
    return seconds


def retry_delay_seconds(receive_count: int, rollout: RolloutConfig) -> int:
    """How long a message stays invisible after its `receive_count`-th failed receive."""
    exponent = max(receive_count, 1) - 1
    delay = FIRST_RETRY_DELAY_SECONDS << min(exponent, 20)
    return min(delay, visibility_timeout_seconds(rollout))


def retry_window_seconds(rollout: RolloutConfig) -> int:
    """How long an approval that keeps failing retryably is retried before dead-lettering."""
    return sum(retry_delay_seconds(n, rollout) for n in range(1, MAX_RECEIVES + 1))


@dataclass(frozen=True)
class QueueSettings:
    """The approvals queue and its dead-letter queue, as the component creates them."""

    visibility_timeout_seconds: int
    max_receives: int = MAX_RECEIVES
    retention_seconds: int = RETENTION_SECONDS

    @classmethod
    def for_rollout(cls, rollout: RolloutConfig) -> QueueSettings:
        return cls(visibility_timeout_seconds(rollout))

    def redrive_policy(self, dead_letter_queue_arn: str) -> str:
        return json.dumps(
            {"deadLetterTargetArn": dead_letter_queue_arn, "maxReceiveCount": self.max_receives},
            sort_keys=True,
        )

    def queue_attributes(self, dead_letter_queue_arn: str, kms_key_id: str) -> dict[str, str]:
        """CreateQueue attributes of the approvals queue (what the component sets)."""
        return {
            "FifoQueue": "true",
            "ContentBasedDeduplication": "true",
            "VisibilityTimeout": str(self.visibility_timeout_seconds),
            "MessageRetentionPeriod": str(self.retention_seconds),
            "RedrivePolicy": self.redrive_policy(dead_letter_queue_arn),
            "KmsMasterKeyId": kms_key_id,
        }

    def dead_letter_attributes(self, kms_key_id: str) -> dict[str, str]:
        return {
            "FifoQueue": "true",
            "ContentBasedDeduplication": "true",
            "MessageRetentionPeriod": str(self.retention_seconds),
            "KmsMasterKeyId": kms_key_id,
        }


@dataclass(frozen=True)
class Message:
    """One SQS record of a Lambda event source mapping batch."""

    message_id: str
    receipt_handle: str
    body: str
    receive_count: int
    group_id: str | None

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Message:
        attributes = record.get("attributes")
        attributes = attributes if isinstance(attributes, Mapping) else {}
        try:
            count = int(attributes.get("ApproximateReceiveCount", 1))
        except (TypeError, ValueError):
            count = 1
        return cls(
            message_id=str(record.get("messageId", "")),
            receipt_handle=str(record.get("receiptHandle", "")),
            body=str(record.get("body", "")),
            receive_count=count,
            group_id=str(attributes["MessageGroupId"]) if "MessageGroupId" in attributes else None,
        )

    def event(self) -> object:
        """The body as JSON (an EventBridge event, if the queue was fed by the rule)."""
        try:
            return json.loads(self.body)
        except json.JSONDecodeError:
            return self.body


def is_sqs_batch(event: object) -> bool:
    if not isinstance(event, Mapping):
        return False
    records = event.get("Records")
    return (
        isinstance(records, list)
        and bool(records)
        and all(isinstance(r, Mapping) and r.get("eventSource") == "aws:sqs" for r in records)
    )
