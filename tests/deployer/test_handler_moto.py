"""The Lambda handler end to end against moto's server on 127.0.0.1.

moto lacks UpdateEndpoint, so these cover everything up to and including the
first deployment; `test_update_stubber.py` covers updates.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from ml.deployer import handler as handler_module
from ml.deployer.config import DeployerConfigError, Env
from ml.deployer.handler import handler
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
