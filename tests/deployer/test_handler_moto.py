"""The Lambda handler end to end against moto's server on 127.0.0.1.

moto lacks UpdateEndpoint, so these cover everything up to and including the
first deployment; `test_update_stubber.py` covers updates and
`test_delivery_moto.py` the queue. `SageMakerEmulator` refuses duplicate
names as AWS does, for the concurrent first deployments.
"""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from ml.deployer import delivery
from ml.deployer import handler as handler_module
from ml.deployer.config import DeployerConfigError, Env
from ml.deployer.errors import DeployError
from ml.deployer.handler import handle_event, handle_invocation, handler
from tests.deployer.emulation import SageMakerEmulator
from tests.deployer.support import (
    CAPTURE_URI,
    ENDPOINT,
    GROUP,
    KMS_KEY_ARN,
    ROLE_ARN,
    Registry,
    approval_event,
    deployer_config,
)


@pytest.fixture(autouse=True)
def lambda_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in deployer_config().to_env().items():
        monkeypatch.setenv(name, value)


def log_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def endpoint_exists(registry: Registry) -> bool:
    try:
        registry.sagemaker.describe_endpoint(EndpointName=ENDPOINT)
    except ClientError:
        return False
    return True


def test_first_approval_creates_model_config_and_endpoint_with_data_capture(
    registry: Registry, capsys: pytest.CaptureFixture[str]
) -> None:
    registry.group()
    arn = registry.register()
    registry.approve(arn)

    result = handler(approval_event(arn, GROUP, 1), None)

    assert result["action"] == "created"
    assert result["package_version"] == 1
    sm = registry.sagemaker
    endpoint = sm.describe_endpoint(EndpointName=ENDPOINT)
    assert endpoint["EndpointConfigName"] == result["endpoint_config_name"]
    assert result["endpoint_config_name"].startswith(f"{ENDPOINT}-v1-")
    config = sm.describe_endpoint_config(EndpointConfigName=result["endpoint_config_name"])
    variant = config["ProductionVariants"][0]
    assert variant["ModelName"] == result["model_name"]
    assert (variant["VariantName"], variant["InstanceType"], variant["InitialInstanceCount"]) == (
        "AllTraffic",
        "ml.m5.large",
        2,
    )
    capture = config["DataCaptureConfig"]
    assert capture["EnableCapture"] is True
    assert capture["InitialSamplingPercentage"] == 25
    assert capture["DestinationS3Uri"] == CAPTURE_URI
    assert capture["KmsKeyId"] == KMS_KEY_ARN
    assert {o["CaptureMode"] for o in capture["CaptureOptions"]} == {"Input", "Output"}
    assert config["KmsKeyId"] == KMS_KEY_ARN
    model = sm.describe_model(ModelName=result["model_name"])
    assert model["PrimaryContainer"]["ModelPackageName"] == arn
    assert model["ExecutionRoleArn"] == ROLE_ARN

    (decision,) = [line for line in log_lines(capsys.readouterr().out) if "action" in line]
    assert decision["package_arn"] == arn
    assert decision["endpoint_name"] == ENDPOINT
    assert decision["action"] == "created"
    assert decision["reason"] == "first deployment of this endpoint"
    assert decision["level"] == "INFO"


def test_replayed_event_changes_nothing(registry: Registry) -> None:
    registry.group()
    arn = registry.register()
    registry.approve(arn)
    event = approval_event(arn, GROUP, 1)
    first = handler(event, None)

    again = handler(event, None)

    assert again["action"] == "noop"
    assert again["reason"] == "the endpoint already serves this package with these settings"
    assert again["endpoint_config_name"] == first["endpoint_config_name"]
    assert len(registry.sagemaker.list_endpoint_configs()["EndpointConfigs"]) == 1
    assert len(registry.sagemaker.list_models()["Models"]) == 1


def test_event_that_is_not_an_approval_is_ignored(registry: Registry) -> None:
    registry.group()
    arn = registry.register()

    result = handler(approval_event(arn, GROUP, 1, status="PendingManualApproval"), None)

    assert result["action"] == "noop"
    assert not endpoint_exists(registry)


def test_stale_approval_of_a_package_rejected_since_is_ignored(registry: Registry) -> None:
    registry.group()
    arn = registry.register()
    registry.approve(arn)
    registry.sagemaker.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Rejected")

    result = handler(approval_event(arn, GROUP, 1), None)

    assert result["action"] == "noop"
    assert result["reason"] == "the package is Rejected, not Approved"
    assert not endpoint_exists(registry)


def test_approval_in_another_group_is_ignored(registry: Registry) -> None:
    registry.group()
    other = registry.group("someone-elses-models")
    arn = registry.register(other)
    registry.approve(arn)

    by_event = handler(approval_event(arn, other, 1), None)
    # The same package named in an event that claims to be of this stack's group.
    by_registry = handler(approval_event(arn, GROUP, 1), None)

    assert by_event["action"] == by_registry["action"] == "noop"
    assert "someone-elses-models" in by_registry["reason"]
    assert not endpoint_exists(registry)


def test_older_version_approved_after_a_newer_one_is_not_deployed(registry: Registry) -> None:
    registry.group()
    older, newer = registry.register(), registry.register()
    registry.approve(newer)
    deployed = handler(approval_event(newer, GROUP, 2), None)
    registry.approve(older)

    late = handler(approval_event(older, GROUP, 1), None)

    assert deployed["action"] == "created"
    assert late["action"] == "noop"
    assert late["reason"] == "not the latest approved version: version 2 is"
    endpoint = registry.sagemaker.describe_endpoint(EndpointName=ENDPOINT)
    assert endpoint["EndpointConfigName"] == deployed["endpoint_config_name"]


class NoCallsClient:
    """A SageMaker client stand-in that fails the test on any call."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"unexpected SageMaker call: {name}")


def test_event_of_another_service_is_ignored_without_calling_aws(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(handler_module.boto3, "client", lambda *_a, **_k: NoCallsClient())
    event = approval_event("arn:aws:sagemaker:eu-west-1:123456789012:model-package/x/1", GROUP, 1)
    event["source"] = "my.application"

    assert handler(event, None)["action"] == "noop"


def test_a_configuration_error_is_logged_as_a_failure_and_raised(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv(Env.EXECUTION_ROLE_ARN)
    monkeypatch.setattr(handler_module.boto3, "client", lambda *_a, **_k: NoCallsClient())
    arn = "arn:aws:sagemaker:eu-west-1:123456789012:model-package/x/1"

    with pytest.raises(DeployerConfigError, match=Env.EXECUTION_ROLE_ARN):
        handler(approval_event(arn, GROUP, 1), None)

    (failure,) = log_lines(capsys.readouterr().out)
    assert failure["level"] == "ERROR"
    assert failure["action"] == "failed"
    assert failure["needs_operator"] is True
    assert failure["retryable"] is False
    assert Env.EXECUTION_ROLE_ARN in failure["reason"]
    assert failure["package_arn"] == arn
    assert failure["endpoint_name"] == ENDPOINT


def test_concurrent_first_deployments_converge_to_one_endpoint(registry: Registry) -> None:
    registry.group()
    arn = registry.register()
    registry.approve(arn)
    sagemaker = SageMakerEmulator(registry.sagemaker)
    config = deployer_config()
    start = threading.Barrier(8)

    def deploy(_: int) -> str:
        start.wait(timeout=30)
        return handle_event(approval_event(arn, GROUP, 1), sagemaker, config, registry.s3).action

    with ThreadPoolExecutor(max_workers=8) as pool:
        actions = list(pool.map(deploy, range(8)))

    assert sorted(actions) == ["created"] + ["noop"] * 7
    assert len(registry.sagemaker.list_endpoints()["Endpoints"]) == 1
    assert len(registry.sagemaker.list_models()["Models"]) == 1
    assert len(registry.sagemaker.list_endpoint_configs()["EndpointConfigs"]) == 1


@pytest.mark.parametrize("event", [["not", "an", "object"], "approved", 42, None])
def test_a_malformed_event_writes_one_log_line(
    event: object, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(handler_module.boto3, "client", lambda *_a, **_k: NoCallsClient())
    with pytest.raises(DeployError, match="not an EventBridge event"):
        handler(event, None)
    (line,) = log_lines(capsys.readouterr().out)
    assert (line["action"], line["needs_operator"], line["level"]) == ("failed", True, "ERROR")


def test_a_malformed_queue_message_is_dead_lettered_with_one_log_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    sent: list[dict[str, Any]] = []

    class Sqs:
        def send_message(self, **kwargs: Any) -> dict[str, str]:
            sent.append(kwargs)
            return {"MessageId": "m2"}

    env = {**deployer_config().to_env(), delivery.DEAD_LETTER_QUEUE_URL_ENV: "https://sqs/dlq.fifo"}
    record = {
        "messageId": "m1",
        "receiptHandle": "r1",
        "body": "[1, 2]",
        "attributes": {"ApproximateReceiveCount": "1", "MessageGroupId": ENDPOINT},
        "eventSource": "aws:sqs",
    }
    response = handle_invocation(
        {"Records": [record]}, env, lambda s: Sqs() if s == "sqs" else NoCallsClient()
    )

    assert response == {"batchItemFailures": []}
    (line,) = log_lines(capsys.readouterr().out)
    assert (line["action"], line["dead_lettered"], line["message_id"]) == ("failed", True, "m1")
    assert sent[0]["MessageBody"] == "[1, 2]"
    assert sent[0]["MessageGroupId"] == ENDPOINT


def test_a_rejected_package_still_served_is_a_warning_with_what_to_do(
    registry: Registry, capsys: pytest.CaptureFixture[str]
) -> None:
    registry.group()
    older, served = registry.register(), registry.register()
    registry.approve(older)
    registry.approve(served)
    assert handler(approval_event(served, GROUP, 2), None)["action"] == "created"
    registry.sagemaker.update_model_package(ModelPackageArn=served, ModelApprovalStatus="Rejected")
    capsys.readouterr()

    result = handler(approval_event(served, GROUP, 2, status="Rejected"), None)

    assert result["action"] == "noop"
    (line,) = log_lines(capsys.readouterr().out)
    assert line["level"] == "WARNING"
    assert served in line["warning"]
    assert "--version 1" in line["warning"]


class FailingSageMaker:
    """Every call fails with `error`."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def __getattr__(self, name: str) -> Any:
        def call(**_: Any) -> Any:
            raise self.error

        return call


class RecordingSqs:
    def __init__(self) -> None:
        self.visibility: list[int] = []
        self.sent: list[dict[str, Any]] = []

    def change_message_visibility(self, **kwargs: Any) -> None:
        self.visibility.append(kwargs["VisibilityTimeout"])

    def send_message(self, **kwargs: Any) -> dict[str, str]:
        self.sent.append(kwargs)
        return {"MessageId": "dead"}


@pytest.mark.parametrize(
    ("error", "retried"),
    [
        (
            ClientError(
                {"Error": {"Code": "InternalFailure"}, "ResponseMetadata": {"HTTPStatusCode": 500}},
                "X",
            ),
            True,
        ),
        (
            ClientError(
                {
                    "Error": {"Code": "ThrottlingException"},
                    "ResponseMetadata": {"HTTPStatusCode": 400},
                },
                "X",
            ),
            True,
        ),
        (
            EndpointConnectionError(endpoint_url="https://api.sagemaker.eu-west-1.amazonaws.com"),
            True,
        ),
        (
            ClientError(
                {
                    "Error": {"Code": "AccessDeniedException"},
                    "ResponseMetadata": {"HTTPStatusCode": 403},
                },
                "X",
            ),
            False,
        ),
    ],
    ids=["http-500", "throttling", "connection", "access-denied"],
)
def test_transient_aws_failures_return_to_the_queue_and_others_are_dead_lettered(
    error: Exception, retried: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    sqs = RecordingSqs()
    env = {
        **deployer_config().to_env(),
        delivery.QUEUE_URL_ENV: "https://sqs/q.fifo",
        delivery.DEAD_LETTER_QUEUE_URL_ENV: "https://sqs/dlq.fifo",
    }
    arn = "arn:aws:sagemaker:eu-west-1:123456789012:model-package/x/1"
    record = {
        "messageId": "m1",
        "receiptHandle": "r1",
        "body": json.dumps(approval_event(arn, GROUP, 1)),
        "attributes": {"ApproximateReceiveCount": "3", "MessageGroupId": ENDPOINT},
        "eventSource": "aws:sqs",
    }
    clients = {"sqs": sqs, "sagemaker": FailingSageMaker(error), "s3": NoCallsClient()}

    response = handle_invocation({"Records": [record]}, env, clients.__getitem__)

    (line,) = log_lines(capsys.readouterr().out)
    if retried:
        assert response == {"batchItemFailures": [{"itemIdentifier": "m1"}]}
        assert (line["action"], line["retryable"], line["needs_operator"]) == ("retry", True, False)
        assert sqs.visibility == [4 * delivery.FIRST_RETRY_DELAY_SECONDS]  # third receive
        assert sqs.sent == []
    else:
        assert response == {"batchItemFailures": []}
        assert (line["action"], line["needs_operator"], line["dead_lettered"]) == (
            "failed",
            True,
            True,
        )
        assert sqs.visibility == []
        assert len(sqs.sent) == 1
