"""The UpdateEndpoint path, which moto lacks, checked call by call with botocore's Stubber.

Every request the deployer sends is compared with the exact parameters
expected; an unexpected call (a second update, a delete) fails the test.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from ml.deployer import handler as handler_module
from ml.deployer.config import RolloutConfig
from ml.deployer.deploy import (
    DeployError,
    EndpointBusyError,
    RetryableDeployError,
    deploy_package,
    plan_for,
)
from tests.deployer.support import (
    ACCOUNT,
    CAPTURE_URI,
    ENDPOINT,
    GROUP,
    KMS_KEY_ARN,
    REGION,
    ROLE_ARN,
    approval_event,
    deployer_config,
)

NOW = dt.datetime(2026, 11, 26, 3, 0, tzinfo=dt.UTC)
OLD_CONFIG = f"{ENDPOINT}-v2-0123abcd"


def package_arn(version: int) -> str:
    return f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/{GROUP}/{version}"


EXPECTED_DATA_CAPTURE = {
    "EnableCapture": True,
    "InitialSamplingPercentage": 25,
    "DestinationS3Uri": CAPTURE_URI,
    "KmsKeyId": KMS_KEY_ARN,
    "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
    "CaptureContentTypeHeader": {
        "CsvContentTypes": ["text/csv"],
        "JsonContentTypes": ["application/json"],
    },
}
ALARMS = {
    "Alarms": [
        {"AlarmName": f"{ENDPOINT}-invocation-5xx"},
        {"AlarmName": f"{ENDPOINT}-model-latency"},
    ]
}


@pytest.fixture
def sagemaker() -> Iterator[tuple[Any, Stubber]]:
    client = boto3.client(
        "sagemaker",
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def not_found(stubber: Stubber, method: str, what: str, params: dict[str, Any]) -> None:
    stubber.add_client_error(
        method,
        service_error_code="ValidationException",
        service_message=f'Could not find {what} "arn:aws:sagemaker:{REGION}:{ACCOUNT}:x".',
        http_status_code=400,
        expected_params=params,
    )


def expect_registry(stubber: Stubber, version: int, approved: list[int]) -> None:
    stubber.add_response(
        "describe_model_package",
        {
            "ModelPackageName": GROUP,
            "ModelPackageGroupName": GROUP,
            "ModelPackageVersion": version,
            "ModelPackageArn": package_arn(version),
            "CreationTime": NOW,
            "ModelPackageStatus": "Completed",
            "ModelPackageStatusDetails": {"ValidationStatuses": []},
            "ModelApprovalStatus": "Approved",
        },
        {"ModelPackageName": package_arn(version)},
    )
    stubber.add_response(
        "list_model_packages",
        {
            "ModelPackageSummaryList": [
                {
                    "ModelPackageGroupName": GROUP,
                    "ModelPackageVersion": v,
                    "ModelPackageArn": package_arn(v),
                    "CreationTime": NOW,
                    "ModelPackageStatus": "Completed",
                    "ModelApprovalStatus": "Approved",
                }
                for v in approved
            ]
        },
        {"ModelPackageGroupName": GROUP, "ModelApprovalStatus": "Approved"},
    )


def expect_endpoint(
    stubber: Stubber, status: str, config_name: str = OLD_CONFIG, pending: str | None = None
) -> None:
    response: dict[str, Any] = {
        "EndpointName": ENDPOINT,
        "EndpointArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/{ENDPOINT}",
        "EndpointConfigName": config_name,
        "EndpointStatus": status,
        "CreationTime": NOW,
        "LastModifiedTime": NOW,
    }
    if pending:
        response["PendingDeploymentSummary"] = {"EndpointConfigName": pending}
    if status == "Failed":
        response["FailureReason"] = "The primary container failed its ping health check."
    stubber.add_response("describe_endpoint", response, {"EndpointName": ENDPOINT})


CANARY_10 = {
    "Type": "CANARY",
    "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 10},
    "WaitIntervalInSeconds": 300,
}
"""The traffic routing of `deployer_config()`'s default rollout on two or more instances."""


def update_params(config_name: str, routing: dict[str, Any] = CANARY_10) -> dict[str, Any]:
    """The exact UpdateEndpoint request for `config_name` under `deployer_config()`'s rollout."""
    return {
        "EndpointName": ENDPOINT,
        "EndpointConfigName": config_name,
        "RetainAllVariantProperties": False,
        "DeploymentConfig": {
            "BlueGreenUpdatePolicy": {
                "TrafficRoutingConfiguration": routing,
                "TerminationWaitInSeconds": 120,
                "MaximumExecutionTimeoutInSeconds": 3600,
            },
            "AutoRollbackConfiguration": ALARMS,
        },
    }


def expect_update(stubber: Stubber, config_name: str) -> None:
    stubber.add_response(
        "update_endpoint",
        {"EndpointArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/{ENDPOINT}"},
        update_params(config_name),
    )


def tags(version: int) -> list[dict[str, str]]:
    return [
        {"Key": "managed-by", "Value": "promote-code-deployer"},
        {"Key": "model-package-arn", "Value": package_arn(version)},
    ]


def expect_new_model_and_config(stubber: Stubber, version: int, instance_count: int) -> Any:
    plan = plan_for(deployer_config(instance_count=instance_count), package_arn(version), version)
    not_found(stubber, "describe_model", "model", {"ModelName": plan.model_name})
    stubber.add_response(
        "create_model",
        {"ModelArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model/{plan.model_name}"},
        {
            "ModelName": plan.model_name,
            "PrimaryContainer": {"ModelPackageName": package_arn(version)},
            "ExecutionRoleArn": ROLE_ARN,
            "EnableNetworkIsolation": True,
            "Tags": tags(version),
        },
    )
    not_found(
        stubber,
        "describe_endpoint_config",
        "endpoint configuration",
        {"EndpointConfigName": plan.endpoint_config_name},
    )
    stubber.add_response(
        "create_endpoint_config",
        {"EndpointConfigArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint-config/x"},
        {
            "EndpointConfigName": plan.endpoint_config_name,
            "ProductionVariants": [
                {
                    "VariantName": "AllTraffic",
                    "ModelName": plan.model_name,
                    "InitialInstanceCount": instance_count,
                    "InstanceType": "ml.m5.large",
                    "InitialVariantWeight": 1.0,
                }
            ],
            "DataCaptureConfig": EXPECTED_DATA_CAPTURE,
            "KmsKeyId": KMS_KEY_ARN,
            "Tags": tags(version),
        },
    )
    return plan


@pytest.mark.parametrize(
    ("rollout", "instance_count", "routing"),
    [
        (
            RolloutConfig(mode="canary", canary_percent=10, wait_seconds=300),
            2,
            {
                "Type": "CANARY",
                "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 10},
                "WaitIntervalInSeconds": 300,
            },
        ),
        (
            RolloutConfig(mode="linear", linear_step_percent=25, wait_seconds=600),
            4,
            {
                "Type": "LINEAR",
                "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": 25},
                "WaitIntervalInSeconds": 600,
            },
        ),
        (
            RolloutConfig(mode="all_at_once", wait_seconds=0),
            2,
            {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 0},
        ),
        # One instance cannot hold a canary of at most half the fleet.
        (
            RolloutConfig(mode="canary", canary_percent=10, wait_seconds=300),
            1,
            {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 300},
        ),
    ],
    ids=["canary", "linear", "all-at-once", "single-instance-canary"],
)
def test_newer_version_updates_the_endpoint_blue_green_with_rollback_and_capture(
    sagemaker: tuple[Any, Stubber],
    rollout: RolloutConfig,
    instance_count: int,
    routing: dict[str, Any],
) -> None:
    client, stubber = sagemaker
    config = deployer_config(
        rollout=dataclasses.replace(rollout, termination_wait_seconds=180),
        instance_count=instance_count,
    )
    expect_registry(stubber, 3, approved=[1, 2, 3])
    expect_endpoint(stubber, "InService")
    plan = expect_new_model_and_config(stubber, 3, instance_count)
    stubber.add_response(
        "update_endpoint",
        {"EndpointArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/{ENDPOINT}"},
        {
            "EndpointName": ENDPOINT,
            "EndpointConfigName": plan.endpoint_config_name,
            "RetainAllVariantProperties": False,
            "DeploymentConfig": {
                "BlueGreenUpdatePolicy": {
                    "TrafficRoutingConfiguration": routing,
                    "TerminationWaitInSeconds": 180,
                    "MaximumExecutionTimeoutInSeconds": 3600,
                },
                "AutoRollbackConfiguration": ALARMS,
            },
        },
    )

    result = deploy_package(client, config, package_arn(3))

    assert result.action == "updated"
    assert result.previous_endpoint_config_name == OLD_CONFIG
    assert result.endpoint_config_name == plan.endpoint_config_name
    assert result.reason == "approved version 3 replaces the served deployment"


def test_retry_after_a_partial_failure_reuses_the_model_and_config(
    sagemaker: tuple[Any, Stubber],
) -> None:
    client, stubber = sagemaker
    config = deployer_config()
    plan = plan_for(config, package_arn(3), 3)
    expect_registry(stubber, 3, approved=[2, 3])
    expect_endpoint(stubber, "InService")
    stubber.add_response(
        "describe_model",
        {
            "ModelName": plan.model_name,
            "PrimaryContainer": {"ModelPackageName": package_arn(3)},
            "ExecutionRoleArn": ROLE_ARN,
            "EnableNetworkIsolation": True,
            "CreationTime": NOW,
            "ModelArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model/{plan.model_name}",
        },
        {"ModelName": plan.model_name},
    )
    stubber.add_response(
        "describe_endpoint_config",
        {
            "EndpointConfigName": plan.endpoint_config_name,
            "EndpointConfigArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint-config/x",
            "ProductionVariants": [{"VariantName": "AllTraffic", "ModelName": plan.model_name}],
            "CreationTime": NOW,
        },
        {"EndpointConfigName": plan.endpoint_config_name},
    )
    stubber.add_response(
        "update_endpoint",
        {"EndpointArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/{ENDPOINT}"},
        {
            "EndpointName": ENDPOINT,
            "EndpointConfigName": plan.endpoint_config_name,
            "RetainAllVariantProperties": False,
            "DeploymentConfig": {
                "BlueGreenUpdatePolicy": {
                    "TrafficRoutingConfiguration": {
                        "Type": "CANARY",
                        "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 10},
                        "WaitIntervalInSeconds": 300,
                    },
                    "TerminationWaitInSeconds": 120,
                    "MaximumExecutionTimeoutInSeconds": 3600,
                },
                "AutoRollbackConfiguration": ALARMS,
            },
        },
    )

    assert deploy_package(client, config, package_arn(3)).action == "updated"


@pytest.mark.parametrize("status", ["Updating", "Creating", "SystemUpdating", "RollingBack"])
def test_busy_endpoint_raises_a_retryable_error_and_starts_nothing(
    sagemaker: tuple[Any, Stubber], status: str
) -> None:
    client, stubber = sagemaker
    expect_registry(stubber, 3, approved=[2, 3])
    expect_endpoint(stubber, status, pending=f"{ENDPOINT}-v2-ffffffff")

    with pytest.raises(EndpointBusyError, match=status):
        deploy_package(client, deployer_config(), package_arn(3))


def test_endpoint_already_rolling_out_this_deployment_is_left_alone(
    sagemaker: tuple[Any, Stubber],
) -> None:
    client, stubber = sagemaker
    config = deployer_config()
    plan = plan_for(config, package_arn(3), 3)
    expect_registry(stubber, 3, approved=[2, 3])
    expect_endpoint(stubber, "Updating", pending=plan.endpoint_config_name)

    result = deploy_package(client, config, package_arn(3))

    assert (result.action, result.reason) == (
        "noop",
        "the endpoint is Updating with this deployment already",
    )


def test_update_racing_another_update_is_retryable(sagemaker: tuple[Any, Stubber]) -> None:
    client, stubber = sagemaker
    expect_registry(stubber, 3, approved=[2, 3])
    expect_endpoint(stubber, "InService")
    plan = expect_new_model_and_config(stubber, 3, 2)
    stubber.add_client_error(
        "update_endpoint",
        service_error_code="ValidationException",
        service_message=f"Cannot update in-progress endpoint {ENDPOINT}.",
        http_status_code=400,
        expected_params=update_params(plan.endpoint_config_name),
    )

    with pytest.raises(EndpointBusyError):
        deploy_package(client, deployer_config(), package_arn(3))


def test_failed_endpoint_needs_an_operator(sagemaker: tuple[Any, Stubber]) -> None:
    client, stubber = sagemaker
    expect_registry(stubber, 3, approved=[2, 3])
    expect_endpoint(stubber, "Failed")

    with pytest.raises(DeployError, match=r"ping health check.*operator"):
        deploy_package(client, deployer_config(), package_arn(3))


@pytest.mark.parametrize("status", ["Failed", "OutOfService"])
def test_unhealthy_endpoint_on_the_planned_config_needs_an_operator_not_a_noop(
    sagemaker: tuple[Any, Stubber], status: str
) -> None:
    client, stubber = sagemaker
    config = deployer_config()
    plan = plan_for(config, package_arn(3), 3)
    expect_registry(stubber, 3, approved=[2, 3])
    expect_endpoint(stubber, status, config_name=plan.endpoint_config_name)

    with pytest.raises(DeployError, match=rf"is {status} .*needs an operator") as raised:
        deploy_package(client, config, package_arn(3))
    assert not isinstance(raised.value, RetryableDeployError)


def test_settings_change_for_the_served_version_is_rolled_out(
    sagemaker: tuple[Any, Stubber],
) -> None:
    client, stubber = sagemaker
    served = plan_for(deployer_config(instance_count=2), package_arn(3), 3)
    expect_registry(stubber, 3, approved=[3])
    expect_endpoint(stubber, "InService", config_name=served.endpoint_config_name)
    plan = expect_new_model_and_config(stubber, 3, 4)
    expect_update(stubber, plan.endpoint_config_name)

    result = deploy_package(client, deployer_config(instance_count=4), package_arn(3))

    assert result.action == "updated"
    assert result.endpoint_config_name == plan.endpoint_config_name != served.endpoint_config_name
    assert result.reason == "settings changed for the served version 3"


def test_operator_rollback_to_an_older_version(sagemaker: tuple[Any, Stubber]) -> None:
    client, stubber = sagemaker
    expect_registry(stubber, 2, approved=[2, 3])
    expect_endpoint(stubber, "InService", config_name=f"{ENDPOINT}-v3-0123abcd")
    plan = expect_new_model_and_config(stubber, 2, 2)
    expect_update(stubber, plan.endpoint_config_name)

    result = deploy_package(client, deployer_config(), package_arn(2), allow_older=True)

    assert result.action == "updated"
    assert result.endpoint_config_name == plan.endpoint_config_name
    assert result.endpoint_config_name.startswith(f"{ENDPOINT}-v2-")
    assert result.reason == "operator rollback to approved version 2 (latest is 3)"


@pytest.fixture
def in_lambda(sagemaker: tuple[Any, Stubber], monkeypatch: pytest.MonkeyPatch) -> Stubber:
    """The handler's world: its environment set as the component sets it, boto3 stubbed."""
    client, stubber = sagemaker
    for name, value in deployer_config().to_env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(boto3, "client", lambda *_a, **_k: client)
    return stubber


def test_handler_logs_and_reraises_a_busy_endpoint(
    in_lambda: Stubber,
    capsys: pytest.CaptureFixture[str],
) -> None:
    stubber = in_lambda
    expect_registry(stubber, 3, approved=[2, 3])
    expect_endpoint(stubber, "Updating", pending=f"{ENDPOINT}-v2-ffffffff")

    with pytest.raises(EndpointBusyError):
        handler_module.handler(approval_event(package_arn(3), GROUP, 3), None)

    (deferred,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert deferred["level"] == "WARNING"
    assert deferred["action"] == "retry"
    assert deferred["retryable"] is True
    assert deferred["needs_operator"] is False
    assert deferred["package_arn"] == package_arn(3)


def test_handler_logs_a_non_retryable_failure_for_an_operator_and_reraises(
    in_lambda: Stubber,
    capsys: pytest.CaptureFixture[str],
) -> None:
    stubber = in_lambda
    expect_registry(stubber, 3, approved=[2, 3])
    expect_endpoint(stubber, "Failed")

    # Re-raised so the event reaches the dead-letter queue after Lambda's retries.
    with pytest.raises(DeployError, match="needs an operator") as raised:
        handler_module.handler(approval_event(package_arn(3), GROUP, 3), None)
    assert not isinstance(raised.value, RetryableDeployError)

    (failure,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert failure["level"] == "ERROR"
    assert failure["action"] == "failed"
    assert failure["needs_operator"] is True
    assert failure["retryable"] is False
    assert failure["error_type"] == "DeployError"
    assert "ping health check" in failure["reason"]
    assert failure["package_arn"] == package_arn(3)
    assert failure["endpoint_name"] == ENDPOINT
