"""Approvals through the queue, against moto: EventBridge rule -> SQS FIFO -> handler.

The queues are created with the attributes the component sets
(`ml.deployer.delivery.QueueSettings`), the rule with the component's
pattern and FIFO target parameters; `Poller` plays the event source mapping
and `SageMakerEmulator` the parts of SageMaker moto lacks (UpdateEndpoint,
duplicate-name refusals).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3
import pytest

from ml.deployer import delivery
from ml.deployer.events import DETAIL_TYPE, SOURCE, deployer_event_pattern
from ml.deployer.handler import handle_invocation
from tests.deployer.emulation import Poller, SageMakerEmulator
from tests.deployer.support import ENDPOINT, GROUP, REGION, Registry, deployer_config


def log_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


@dataclass
class Wiring:
    registry: Registry
    sqs: Any
    events: Any
    sagemaker: SageMakerEmulator
    queue_url: str
    dead_letter_url: str
    poller: Poller

    def approve(self, arn: str) -> None:
        """Approve in the registry and publish the event SageMaker would send."""
        self.registry.approve(arn)
        package = self.registry.sagemaker.describe_model_package(ModelPackageName=arn)
        detail = {
            "ModelPackageGroupName": GROUP,
            "ModelPackageVersion": package["ModelPackageVersion"],
            "ModelPackageArn": arn,
            "ModelApprovalStatus": "Approved",
        }
        response = self.events.put_events(
            Entries=[{"Source": SOURCE, "DetailType": DETAIL_TYPE, "Detail": json.dumps(detail)}]
        )
        assert response["FailedEntryCount"] == 0

    def counts(self, url: str) -> tuple[int, int]:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
            ],
        )["Attributes"]
        return (
            int(attributes["ApproximateNumberOfMessages"]),
            int(attributes["ApproximateNumberOfMessagesNotVisible"]),
        )


@pytest.fixture
def wiring(registry: Registry) -> Wiring:
    def client(service: str) -> Any:
        return boto3.client(service, region_name=REGION, endpoint_url=registry.url)

    sqs, events = client("sqs"), client("events")
    config = deployer_config()
    settings = delivery.QueueSettings.for_rollout(config.rollout)
    key = "alias/deployer-queues"
    dead_letter_url = sqs.create_queue(
        QueueName=f"{ENDPOINT}-approvals-dlq.fifo",
        Attributes=settings.dead_letter_attributes(key),
    )["QueueUrl"]
    dead_letter_arn = arn_of(sqs, dead_letter_url)
    queue_url = sqs.create_queue(
        QueueName=f"{ENDPOINT}-approvals.fifo",
        Attributes=settings.queue_attributes(dead_letter_arn, key),
    )["QueueUrl"]
    queue_arn = arn_of(sqs, queue_url)
    events.put_rule(Name="approved", EventPattern=json.dumps(deployer_event_pattern(GROUP)))
    events.put_targets(
        Rule="approved",
        Targets=[{"Id": "queue", "Arn": queue_arn, "SqsParameters": {"MessageGroupId": ENDPOINT}}],
    )
    sagemaker = SageMakerEmulator(registry.sagemaker)
    env = {
        **config.to_env(),
        delivery.QUEUE_URL_ENV: queue_url,
        delivery.DEAD_LETTER_QUEUE_URL_ENV: dead_letter_url,
    }
    clients: dict[str, Callable[[], Any]] = {
        "sagemaker": lambda: sagemaker,
        "s3": lambda: registry.s3,
        "sqs": lambda: sqs,
    }

    def invoke(event: dict[str, Any]) -> dict[str, Any]:
        return handle_invocation(event, env, lambda service: clients[service]())

    poller = Poller(sqs, queue_url, queue_arn, invoke)
    registry.group()
    return Wiring(registry, sqs, events, sagemaker, queue_url, dead_letter_url, poller)


def arn_of(sqs: Any, url: str) -> str:
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    return str(attributes["Attributes"]["QueueArn"])


def endpoint_config(wiring: Wiring) -> str:
    return str(wiring.sagemaker.describe_endpoint(EndpointName=ENDPOINT)["EndpointConfigName"])


def test_approval_during_a_rollout_is_deployed_after_it_and_the_latest_wins(
    wiring: Wiring, capsys: pytest.CaptureFixture[str]
) -> None:
    v1, v2, v3, v4 = (wiring.registry.register() for _ in range(4))
    wiring.approve(v1)
    assert wiring.poller.drain() == 1
    wiring.approve(v2)
    assert wiring.poller.drain() == 1
    (first_update,) = wiring.sagemaker.updates
    assert first_update["EndpointConfigName"].startswith(f"{ENDPOINT}-v2-")
    capsys.readouterr()

    # v3 and v4 are approved while v2 rolls out.
    wiring.approve(v3)
    assert wiring.poller.drain() == 1  # v3: busy, back to the queue
    wiring.approve(v4)
    assert wiring.poller.drain() == 0  # v4 waits behind v3 (same message group)
    (deferred,) = log_lines(capsys.readouterr().out)
    assert (deferred["action"], deferred["retryable"], deferred["package_arn"]) == (
        "retry",
        True,
        v3,
    )
    assert deferred["retry_in_seconds"] == delivery.FIRST_RETRY_DELAY_SECONDS
    assert wiring.counts(wiring.queue_url) == (1, 1)
    assert len(wiring.sagemaker.updates) == 1

    wiring.sagemaker.finish_rollout(ENDPOINT)
    wiring.poller.time_passes()
    assert wiring.poller.drain() == 2

    outcomes = [
        (line["action"], line["package_version"]) for line in log_lines(capsys.readouterr().out)
    ]
    assert outcomes == [("noop", 3), ("updated", 4)]
    assert wiring.sagemaker.updates[-1]["EndpointConfigName"].startswith(f"{ENDPOINT}-v4-")
    assert wiring.counts(wiring.queue_url) == (0, 0)
    assert wiring.counts(wiring.dead_letter_url) == (0, 0)


def test_a_redelivered_event_is_stored_once_and_a_replay_changes_nothing(
    wiring: Wiring, capsys: pytest.CaptureFixture[str]
) -> None:
    arn = wiring.registry.register()
    wiring.approve(arn)
    (message,) = wiring.sqs.receive_message(QueueUrl=wiring.queue_url)["Messages"]
    wiring.poller.time_passes()
    wiring.sqs.change_message_visibility(
        QueueUrl=wiring.queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
    )
    # EventBridge retrying a delivery sends the same body: content-based deduplication.
    wiring.sqs.send_message(
        QueueUrl=wiring.queue_url, MessageBody=message["Body"], MessageGroupId=ENDPOINT
    )
    assert wiring.poller.drain() == 1
    wiring.approve(arn)  # a replayed approval (a new event id)
    assert wiring.poller.drain() == 1

    actions = [line["action"] for line in log_lines(capsys.readouterr().out)]
    assert actions == ["created", "noop"]


def test_an_approval_that_needs_an_operator_goes_to_the_dead_letter_queue_at_once(
    wiring: Wiring, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = wiring.registry.register(upload=False)
    wiring.approve(broken)

    assert wiring.poller.drain() == 1

    (failure,) = log_lines(capsys.readouterr().out)
    assert (failure["action"], failure["needs_operator"], failure["dead_lettered"]) == (
        "failed",
        True,
        True,
    )
    assert "does not exist" in failure["reason"]
    assert wiring.counts(wiring.queue_url) == (0, 0)
    (dead,) = wiring.sqs.receive_message(
        QueueUrl=wiring.dead_letter_url, MessageAttributeNames=["All"]
    )["Messages"]
    assert json.loads(dead["Body"])["detail"]["ModelPackageArn"] == broken
    assert "does not exist" in dead["MessageAttributes"]["reason"]["StringValue"]
    # Nothing was created for a package whose artifact is missing.
    assert wiring.registry.sagemaker.list_models()["Models"] == []


def test_retries_are_bounded_then_sqs_dead_letters_the_approval(wiring: Wiring) -> None:
    v1, v2 = wiring.registry.register(), wiring.registry.register()
    wiring.approve(v1)
    wiring.poller.drain()
    wiring.approve(v2)
    wiring.poller.drain()  # v2 rolls out and never finishes
    v3 = wiring.registry.register()
    wiring.approve(v3)

    receives = 0
    while wiring.poller.poll_once() is not None:
        receives += 1
        wiring.poller.time_passes()
        assert receives <= delivery.MAX_RECEIVES

    assert receives == delivery.MAX_RECEIVES
    assert wiring.counts(wiring.dead_letter_url)[0] == 1


def test_retry_window_covers_hours_for_every_allowed_rollout() -> None:
    shortest = deployer_config().rollout.__class__(
        mode="all_at_once",
        wait_seconds=0,
        termination_wait_seconds=0,
        maximum_execution_timeout_seconds=600,
    )
    longest = shortest.__class__(
        termination_wait_seconds=3600, maximum_execution_timeout_seconds=28800
    )
    assert delivery.retry_window_seconds(shortest) >= 2 * 3600
    # Longer than a rollout, within SQS's 12-hour cap, and retained long enough.
    for rollout in (shortest, longest):
        visibility = delivery.visibility_timeout_seconds(rollout)
        assert visibility > delivery.rollout_bound_seconds(rollout)
        assert visibility <= delivery.SQS_MAX_VISIBILITY_SECONDS
        assert delivery.MAX_RECEIVES * visibility < delivery.RETENTION_SECONDS
