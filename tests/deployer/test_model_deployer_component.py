"""The ModelDeployer component under Pulumi mocks: what it would ask AWS to create."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pytest
from pulumi.runtime import settings as pulumi_settings

from infra.components.model_deployer import ModelDeployer, ModelDeployerArgs
from infra.settings import EndpointSettings, RolloutSettings
from ml.deployer.config import DeployerConfig, Env
from ml.deployer.events import approval_event_pattern, matches
from tests.deployer.support import approval_event

ACCOUNT = "444444444444"
REGION = "eu-west-1"
PREFIX = "promote-code-prod"
ENDPOINT = f"{PREFIX}-endpoint"
GROUP = f"{PREFIX}-models"
GROUP_ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package-group/{GROUP}"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/{PREFIX}-sagemaker-execution"
KEY_ARN = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/608c9bf9-a73a-53e5-80ff-1327559b80c9"
IMAGE = "111111111111.dkr.ecr.eu-west-1.amazonaws.com/promote-code/deployer@sha256:" + "b" * 64
CAPTURE = f"s3://{PREFIX}-artifacts-{ACCOUNT}/data-capture"
TAGS = {"project": "promote-code", "environment": "prod", "managed-by": "pulumi"}
SAGEMAKER = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}"


@dataclass
class Registered:
    type: str
    name: str
    inputs: dict[str, Any]


class DeployerMocks(pulumi.runtime.Mocks):
    """Answers like AWS would: ARNs in the prod account and region, queue URLs, names."""

    def __init__(self) -> None:
        self.registered: list[Registered] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        self.registered.append(Registered(args.typ, args.name, dict(args.inputs)))
        name = args.inputs.get("name") or f"{args.name}-1a2b3c4"
        state = {**args.inputs, "name": name}
        arns = {
            "aws:sqs/queue:Queue": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}",
            "aws:cloudwatch/logGroup:LogGroup": f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{name}",
            "aws:iam/role:Role": f"arn:aws:iam::{ACCOUNT}:role/{name}",
            "aws:lambda/function:Function": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}",
            "aws:cloudwatch/eventRule:EventRule": f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{name}",
            "aws:cloudwatch/metricAlarm:MetricAlarm": (
                f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{name}"
            ),
        }
        if args.typ in arns:
            state["arn"] = arns[args.typ]
        if args.typ == "aws:sqs/queue:Queue":
            state["url"] = f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{name}"
        return name, state

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], None]:
        raise AssertionError(f"the ModelDeployer component makes no invokes, got {args.token}")

    def one(self, type_token: str, suffix: str = "") -> Registered:
        found = [r for r in self.registered if r.type == type_token and r.name.endswith(suffix)]
        assert len(found) == 1, f"{type_token} *{suffix}: {[r.name for r in found]}"
        return found[0]

    def all(self, type_token: str) -> list[Registered]:
        return [r for r in self.registered if r.type == type_token]


def endpoint_settings() -> EndpointSettings:
    return EndpointSettings(
        instance_type="ml.m5.xlarge",
        instance_count=2,
        rollout=RolloutSettings(mode="linear", linear_step_percent=25, wait_seconds=600),
        data_capture_sampling_percent=20,
        latency_alarm_microseconds=250_000,
        error_alarm_threshold=3,
    )


def deploy_component(settings: EndpointSettings | None = None) -> tuple[DeployerMocks, Any]:
    """Declare one ModelDeployer under fresh mocks; return the mocks and its outputs."""
    asyncio.set_event_loop(asyncio.new_event_loop())
    pulumi_settings.ROOT.set(None)  # a root stack left by an earlier program is not ours
    mocks = DeployerMocks()
    pulumi.runtime.set_mocks(mocks, project="promote-code", stack="prod", preview=False)
    outputs: dict[str, Any] = {}

    @pulumi.runtime.test  # type: ignore[untyped-decorator]
    def program() -> pulumi.Output[None]:
        deployer = ModelDeployer(
            f"{PREFIX}-deployer",
            ModelDeployerArgs(
                endpoint_name=ENDPOINT,
                model_package_group_name=GROUP,
                model_package_group_arn=GROUP_ARN,
                execution_role_arn=ROLE_ARN,
                deployer_image_uri=IMAGE,
                data_capture_s3_uri=CAPTURE,
                kms_key_arn=KEY_ARN,
                endpoint=settings or endpoint_settings(),
                account=ACCOUNT,
                region=REGION,
                tags=TAGS,
            ),
        )
        return pulumi.Output.all(
            environment=deployer.environment,
            alarms=deployer.rollback_alarm_names,
            alarm_arns=deployer.rollback_alarm_arns,
            function=deployer.function.arn,
            rule=deployer.rule.arn,
        ).apply(outputs.update)

    program()
    return mocks, outputs


@pytest.fixture(scope="module")
def planned() -> tuple[DeployerMocks, Any]:
    return deploy_component()


def statements(policy: str) -> dict[str, dict[str, Any]]:
    document = json.loads(policy)
    return {s["Sid"]: s for s in document["Statement"]}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_rule_matches_only_approvals_of_this_group(planned: tuple[DeployerMocks, Any]) -> None:
    mocks, _ = planned
    pattern = json.loads(mocks.one("aws:cloudwatch/eventRule:EventRule").inputs["eventPattern"])
    arn = f"{SAGEMAKER}:model-package/{GROUP}/3"
    assert pattern == approval_event_pattern(GROUP)
    assert matches(pattern, approval_event(arn, GROUP, 3))
    assert not matches(pattern, approval_event(arn, GROUP, 3, status="Rejected"))
    assert not matches(pattern, approval_event(arn, "promote-code-dev-models", 3))


def test_target_retries_then_dead_letters_to_an_encrypted_queue(
    planned: tuple[DeployerMocks, Any],
) -> None:
    mocks, outputs = planned
    target = mocks.one("aws:cloudwatch/eventTarget:EventTarget").inputs
    queue = mocks.one("aws:sqs/queue:Queue")
    queue_arn = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{queue.name}-1a2b3c4"
    assert target["arn"] == outputs["function"]
    assert target["retryPolicy"] == {"maximumEventAgeInSeconds": 21600, "maximumRetryAttempts": 12}
    assert target["deadLetterConfig"] == {"arn": queue_arn}
    assert queue.inputs["sqsManagedSseEnabled"] is True
    assert queue.inputs["messageRetentionSeconds"] == 14 * 24 * 3600
    queue_policy = statements(mocks.one("aws:sqs/queuePolicy:QueuePolicy").inputs["policy"])
    (statement,) = queue_policy.values()
    assert statement["Principal"] == {"Service": ["events.amazonaws.com"]}
    assert statement["Action"] == ["sqs:SendMessage"]
    assert statement["Condition"] == {"ArnEquals": {"aws:SourceArn": outputs["rule"]}}


def test_function_runs_the_pinned_image_one_at_a_time(planned: tuple[DeployerMocks, Any]) -> None:
    mocks, _ = planned
    function = mocks.one("aws:lambda/function:Function").inputs
    assert function["packageType"] == "Image"
    assert function["imageUri"] == IMAGE
    assert function["reservedConcurrentExecutions"] == 1
    assert function["name"] == f"{ENDPOINT}-deployer"
    assert function["loggingConfig"]["logGroup"] == f"/aws/lambda/{ENDPOINT}-deployer"
    assert function["tags"] == TAGS
    permission = mocks.one("aws:lambda/permission:Permission").inputs
    assert permission["principal"] == "events.amazonaws.com"
    assert permission["sourceArn"].startswith(f"arn:aws:events:{REGION}:{ACCOUNT}:rule/")


def test_async_invocation_retries_are_bounded_and_failures_go_to_the_queue(
    planned: tuple[DeployerMocks, Any],
) -> None:
    mocks, _ = planned
    config = mocks.one("aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig").inputs
    queue = mocks.one("aws:sqs/queue:Queue")
    assert config["functionName"] == f"{ENDPOINT}-deployer"
    assert config["maximumRetryAttempts"] == 2
    assert config["maximumEventAgeInSeconds"] == 21600
    assert config["destinationConfig"] == {
        "onFailure": {"destination": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{queue.name}-1a2b3c4"}
    }


def test_handler_environment_carries_the_settings(planned: tuple[DeployerMocks, Any]) -> None:
    mocks, outputs = planned
    variables = mocks.one("aws:lambda/function:Function").inputs["environment"]["variables"]
    assert variables == outputs["environment"]
    config = DeployerConfig.from_env(variables)
    assert (config.endpoint_name, config.model_package_group_name) == (ENDPOINT, GROUP)
    assert (config.execution_role_arn, config.kms_key_arn) == (ROLE_ARN, KEY_ARN)
    assert (config.instance_type, config.instance_count) == ("ml.m5.xlarge", 2)
    assert (config.data_capture_s3_uri, config.data_capture_sampling_percent) == (CAPTURE, 20)
    assert (config.rollout.mode, config.rollout.linear_step_percent) == ("linear", 25)
    assert config.rollout.wait_seconds == 600
    assert list(config.rollback_alarm_names) == outputs["alarms"]
    assert set(variables) == set(Env.ALL)


def test_rollback_alarms_watch_the_endpoint(planned: tuple[DeployerMocks, Any]) -> None:
    mocks, outputs = planned
    errors = mocks.one("aws:cloudwatch/metricAlarm:MetricAlarm", "-errors").inputs
    latency = mocks.one("aws:cloudwatch/metricAlarm:MetricAlarm", "-latency").inputs
    assert outputs["alarms"] == [errors["name"], latency["name"]]
    assert outputs["alarm_arns"] == [
        f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{name}" for name in outputs["alarms"]
    ]
    for alarm in (errors, latency):
        assert alarm["namespace"] == "AWS/SageMaker"
        assert alarm["dimensions"] == {"EndpointName": ENDPOINT, "VariantName": "AllTraffic"}
        assert alarm["treatMissingData"] == "notBreaching"
        assert alarm["tags"] == TAGS
    assert (errors["metricName"], errors["statistic"], errors["threshold"]) == (
        "Invocation5XXErrors",
        "Sum",
        3,
    )
    assert (latency["metricName"], latency["extendedStatistic"], latency["threshold"]) == (
        "ModelLatency",
        "p90",
        250_000,
    )
    dead_letters = mocks.one("aws:cloudwatch/metricAlarm:MetricAlarm", "-dlq-alarm").inputs
    assert dead_letters["namespace"] == "AWS/SQS"
    assert dead_letters["metricName"] == "ApproximateNumberOfMessagesVisible"


def test_role_is_least_privilege(planned: tuple[DeployerMocks, Any]) -> None:
    mocks, _ = planned
    trust = json.loads(mocks.one("aws:iam/role:Role").inputs["assumeRolePolicy"])
    assert trust["Statement"][0]["Principal"] == {"Service": ["lambda.amazonaws.com"]}
    assert trust["Statement"][0]["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT}}
    policy = statements(mocks.one("aws:iam/rolePolicy:RolePolicy").inputs["policy"])
    resources = {sid: as_list(s["Resource"]) for sid, s in policy.items()}

    assert all(s["Effect"] == "Allow" for s in policy.values())
    assert sorted(policy) == [
        "CreateEndpointConfigs",
        "CreateModels",
        "DeployEndpoint",
        "DescribeKey",
        "FailedEventsToDeadLetterQueue",
        "GrantKeyToSageMaker",
        "PassExecutionRoleToSageMaker",
        "ReadModelRegistry",
        "ReadRollbackAlarms",
        "WriteOwnLogs",
    ]
    assert "*" not in [r for rs in resources.values() for r in rs]
    for sid, statement in policy.items():
        for action in as_list(statement["Action"]):
            assert "*" not in action, f"{sid} grants a wildcard action {action}"
    assert resources["ReadModelRegistry"] == [GROUP_ARN, f"{SAGEMAKER}:model-package/{GROUP}/*"]
    assert resources["CreateModels"] == [f"{SAGEMAKER}:model/{ENDPOINT}-v*"]
    assert resources["CreateEndpointConfigs"] == [f"{SAGEMAKER}:endpoint-config/{ENDPOINT}-v*"]
    assert resources["DeployEndpoint"] == [
        f"{SAGEMAKER}:endpoint/{ENDPOINT}",
        f"{SAGEMAKER}:endpoint-config/{ENDPOINT}-v*",
    ]
    assert "sagemaker:DeleteEndpoint" not in json.dumps(policy)
    assert "sagemaker:DeleteEndpointConfig" not in json.dumps(policy)

    pass_role = policy["PassExecutionRoleToSageMaker"]
    assert pass_role["Action"] == ["iam:PassRole"]
    assert resources["PassExecutionRoleToSageMaker"] == [ROLE_ARN]
    assert pass_role["Condition"] == {
        "StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}
    }
    assert policy["ReadRollbackAlarms"]["Action"] == ["cloudwatch:DescribeAlarms"]
    assert resources["ReadRollbackAlarms"] == [
        f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{ENDPOINT}-invocation-5xx",
        f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{ENDPOINT}-model-latency",
    ]
    assert resources["GrantKeyToSageMaker"] == resources["DescribeKey"] == [KEY_ARN]
    assert policy["GrantKeyToSageMaker"]["Condition"] == {
        "Bool": {"kms:GrantIsForAWSResource": "true"}
    }
    log_group = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/lambda/{ENDPOINT}-deployer"
    assert resources["WriteOwnLogs"] == [log_group, f"{log_group}:log-stream:*"]
    assert resources["FailedEventsToDeadLetterQueue"][0].startswith(f"arn:aws:sqs:{REGION}:")


def test_every_taggable_child_is_tagged(planned: tuple[DeployerMocks, Any]) -> None:
    mocks, _ = planned
    taggable = [r for r in mocks.registered if "tags" in r.inputs]
    untagged = {
        r.type
        for r in mocks.registered
        if r.type
        in {
            "aws:sqs/queue:Queue",
            "aws:cloudwatch/logGroup:LogGroup",
            "aws:iam/role:Role",
            "aws:lambda/function:Function",
            "aws:cloudwatch/eventRule:EventRule",
            "aws:cloudwatch/metricAlarm:MetricAlarm",
        }
        and r.inputs.get("tags") != TAGS
    }
    assert len(taggable) == 8
    assert untagged == set()


def test_children_are_named_after_the_component(planned: tuple[DeployerMocks, Any]) -> None:
    mocks, _ = planned
    component = mocks.one("promote:sagemaker:ModelDeployer")
    children = [r for r in mocks.registered if r is not component]
    assert component.name == f"{PREFIX}-deployer"
    assert all(r.name.startswith(f"{PREFIX}-deployer-") for r in children)


def test_default_settings_produce_a_single_instance_all_at_once_environment() -> None:
    mocks, outputs = deploy_component(EndpointSettings())
    config = DeployerConfig.from_env(outputs["environment"])
    assert (config.instance_count, config.rollout.mode) == (1, "all_at_once")
    assert mocks.one("aws:lambda/function:Function").inputs["reservedConcurrentExecutions"] == 1
