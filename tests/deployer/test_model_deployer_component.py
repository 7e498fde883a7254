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
from ml.deployer import delivery
from ml.deployer.config import DeployerConfig, Env
from ml.deployer.events import deployer_event_pattern, matches
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
            "aws:kms/key:Key": f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{name}",
            "aws:lambda/eventSourceMapping:EventSourceMapping": (
                f"arn:aws:lambda:{REGION}:{ACCOUNT}:event-source-mapping:{name}"
            ),
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


def test_rule_matches_only_approvals_and_rejections_of_this_group(
    planned: tuple[DeployerMocks, Any],
) -> None:
    mocks, _ = planned
    pattern = json.loads(mocks.one("aws:cloudwatch/eventRule:EventRule").inputs["eventPattern"])
    arn = f"{SAGEMAKER}:model-package/{GROUP}/3"
    assert pattern == deployer_event_pattern(GROUP)
    assert matches(pattern, approval_event(arn, GROUP, 3))
    assert matches(pattern, approval_event(arn, GROUP, 3, status="Rejected"))
    assert not matches(pattern, approval_event(arn, GROUP, 3, status="PendingManualApproval"))
    assert not matches(pattern, approval_event(arn, "promote-code-dev-models", 3))


def queue_arn(queue: Registered) -> str:
    return f"arn:aws:sqs:{REGION}:{ACCOUNT}:{queue.inputs['name']}"


def test_rule_delivers_to_a_fifo_queue_grouped_by_endpoint(
    planned: tuple[DeployerMocks, Any],
) -> None:
    mocks, outputs = planned
    target = mocks.one("aws:cloudwatch/eventTarget:EventTarget").inputs
    queue = mocks.one("aws:sqs/queue:Queue", "-queue")
    undelivered = mocks.one("aws:sqs/queue:Queue", "-undelivered")
    assert target["arn"] == queue_arn(queue)
    assert target["sqsTarget"] == {"messageGroupId": ENDPOINT}
    assert target["retryPolicy"] == {"maximumEventAgeInSeconds": 86400, "maximumRetryAttempts": 185}
    # EventBridge dead-letter queues must be standard queues.
    assert target["deadLetterConfig"] == {"arn": queue_arn(undelivered)}
    assert "fifoQueue" not in undelivered.inputs
    assert queue.inputs["name"] == f"{ENDPOINT}-approvals.fifo"
    assert queue.inputs["fifoQueue"] is True
    assert queue.inputs["contentBasedDeduplication"] is True  # EventBridge sets no dedup id
    for policy in mocks.all("aws:sqs/queuePolicy:QueuePolicy"):
        (statement,) = statements(policy.inputs["policy"]).values()
        assert statement["Principal"] == {"Service": ["events.amazonaws.com"]}
        assert statement["Action"] == ["sqs:SendMessage"]
        assert statement["Condition"] == {"ArnEquals": {"aws:SourceArn": outputs["rule"]}}
    assert len(mocks.all("aws:sqs/queuePolicy:QueuePolicy")) == 2


def test_queue_outlasts_a_rollout_and_dead_letters_after_bounded_receives(
    planned: tuple[DeployerMocks, Any],
) -> None:
    mocks, _ = planned
    queue = mocks.one("aws:sqs/queue:Queue", "-queue").inputs
    dead = mocks.one("aws:sqs/queue:Queue", "-dlq")
    rollout = endpoint_settings().rollout
    assert queue["visibilityTimeoutSeconds"] == (
        rollout.maximum_execution_timeout_seconds + rollout.termination_wait_seconds + 120
    )
    assert json.loads(queue["redrivePolicy"]) == {
        "deadLetterTargetArn": queue_arn(dead),
        "maxReceiveCount": delivery.MAX_RECEIVES,
    }
    assert dead.inputs["fifoQueue"] is True  # a FIFO queue's dead-letter queue is FIFO
    assert dead.inputs["name"] == f"{ENDPOINT}-approvals-dlq.fifo"


def test_every_queue_and_the_log_group_are_encrypted_with_the_stack_key(
    planned: tuple[DeployerMocks, Any],
) -> None:
    mocks, _ = planned
    # CI may not create keys: the identity bootstrap's data key encrypts them all.
    assert mocks.all("aws:kms/key:Key") == []
    queues = mocks.all("aws:sqs/queue:Queue")
    assert len(queues) == 3
    for queue in queues:
        assert queue.inputs["kmsMasterKeyId"] == KEY_ARN
        assert queue.inputs["messageRetentionSeconds"] == 14 * 24 * 3600
    assert mocks.one("aws:cloudwatch/logGroup:LogGroup").inputs["kmsKeyId"] == KEY_ARN


def test_function_reads_the_queue_one_approval_at_a_time_without_reserved_concurrency(
    planned: tuple[DeployerMocks, Any],
) -> None:
    mocks, _ = planned
    function = mocks.one("aws:lambda/function:Function").inputs
    assert function["packageType"] == "Image"
    assert function["imageUri"] == IMAGE
    assert "reservedConcurrentExecutions" not in function
    assert function["name"] == f"{ENDPOINT}-deployer"
    assert function["loggingConfig"]["logGroup"] == f"/aws/lambda/{ENDPOINT}-deployer"
    assert function["tags"] == TAGS
    mapping = mocks.one("aws:lambda/eventSourceMapping:EventSourceMapping").inputs
    assert mapping["eventSourceArn"] == queue_arn(mocks.one("aws:sqs/queue:Queue", "-queue"))
    assert mapping["batchSize"] == 1
    assert mapping["functionResponseTypes"] == ["ReportBatchItemFailures"]
    assert (
        function["timeout"]
        < mocks.one("aws:sqs/queue:Queue", "-queue").inputs["visibilityTimeoutSeconds"]
    )
    assert mocks.all("aws:lambda/permission:Permission") == []
    assert mocks.all("aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig") == []


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
    assert set(variables) == set(Env.ALL) | set(delivery.ENV_NAMES)
    assert variables[delivery.QUEUE_URL_ENV].endswith(f"/{ENDPOINT}-approvals.fifo")
    assert variables[delivery.DEAD_LETTER_QUEUE_URL_ENV].endswith(f"/{ENDPOINT}-approvals-dlq.fifo")


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
    for suffix in ("-dlq-alarm", "-undelivered-alarm"):
        dead_letters = mocks.one("aws:cloudwatch/metricAlarm:MetricAlarm", suffix).inputs
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
        "ApprovalsNeedingAnOperatorToDeadLetterQueue",
        "CheckModelArtifacts",
        "ConsumeApprovals",
        "CreateEndpointConfigs",
        "CreateModels",
        "DeployEndpoint",
        "DescribeKey",
        "GrantKeyToSageMaker",
        "PassExecutionRoleToSageMaker",
        "ReadModelRegistry",
        "ReadRollbackAlarms",
        "UseKeyForQueues",
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
    assert resources["ApprovalsNeedingAnOperatorToDeadLetterQueue"] == [
        f"arn:aws:sqs:{REGION}:{ACCOUNT}:{ENDPOINT}-approvals-dlq.fifo"
    ]
    assert resources["ConsumeApprovals"] == [
        f"arn:aws:sqs:{REGION}:{ACCOUNT}:{ENDPOINT}-approvals.fifo"
    ]
    assert sorted(as_list(policy["ConsumeApprovals"]["Action"])) == [
        "sqs:ChangeMessageVisibility",
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
        "sqs:ReceiveMessage",
    ]
    assert resources["UseKeyForQueues"] == [KEY_ARN]
    assert resources["CheckModelArtifacts"] == [f"arn:aws:s3:::{PREFIX}-artifacts-{ACCOUNT}/*"]
    assert policy["CheckModelArtifacts"]["Action"] == ["s3:GetObject"]


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
            "aws:lambda/eventSourceMapping:EventSourceMapping",
        }
        and r.inputs.get("tags") != TAGS
    }
    # Alarms x4, queues x3, log group, role, function, rule, event source mapping.
    assert len(taggable) == 12
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
    queue = mocks.one("aws:sqs/queue:Queue", "-queue").inputs
    assert queue["visibilityTimeoutSeconds"] == 3600 + 120 + 120
