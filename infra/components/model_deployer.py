"""Auto-deploy of approved models: EventBridge rule -> deployer Lambda -> SageMaker endpoint.

Only approvals in this stack's model package group reach the Lambda. Delivery
is retried by EventBridge, then by Lambda's asynchronous invocation; what still
fails lands in an encrypted SQS dead-letter queue (with an alarm on it). One
deployment runs at a time (reserved concurrency 1), and the Lambda's role can
touch nothing but this stack's group, endpoint, endpoint configs and models.
The two CloudWatch alarms are the ones blue/green updates roll back on.
The handler lives in `ml.deployer`; its settings travel as environment
variables named in `ml.deployer.config.Env`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from infra.components.service_role import service_role
from infra.iam import Statement, policy_json
from infra.settings import EndpointSettings
from ml.deployer import naming
from ml.deployer.config import DEFAULT_VARIANT, Env, RolloutConfig
from ml.deployer.events import approval_event_pattern

LAMBDA_TIMEOUT_SECONDS = 120
"""The handler only issues a few API calls; it never waits for an endpoint."""
EVENT_MAX_AGE_SECONDS = 6 * 3600
EVENT_RETRY_ATTEMPTS = 12
ASYNC_MAX_AGE_SECONDS = 6 * 3600
ASYNC_RETRY_ATTEMPTS = 2
"""Lambda's maximum; each retry comes minutes later, after a busy endpoint may have settled."""
DLQ_RETENTION_SECONDS = 14 * 24 * 3600
LOG_RETENTION_DAYS = 90


@dataclass(frozen=True)
class ModelDeployerArgs:
    endpoint_name: pulumi.Input[str]
    model_package_group_name: pulumi.Input[str]
    model_package_group_arn: pulumi.Input[str]
    execution_role_arn: pulumi.Input[str]
    """The SageMaker execution role the handler passes to CreateModel."""
    deployer_image_uri: pulumi.Input[str]
    """Digest-pinned ops ECR image whose CMD is ml.deployer.handler.handler."""
    data_capture_s3_uri: pulumi.Input[str]
    kms_key_arn: pulumi.Input[str]
    endpoint: EndpointSettings
    account: str
    region: str
    tags: Mapping[str, str]
    partition: str = "aws"
    alarm_actions: Sequence[pulumi.Input[str]] = field(default_factory=tuple)
    """Optional SNS topics notified when a rollback alarm or the dead-letter alarm fires."""
    permissions_boundary: str | None = None
    """The account's workload boundary, which the deployer role must carry."""


class ModelDeployer(pulumi.ComponentResource):
    """Deploys every approved model package of one group to one SageMaker endpoint."""

    function: aws.lambda_.Function
    role: aws.iam.Role
    rule: aws.cloudwatch.EventRule
    dead_letter_queue: aws.sqs.Queue
    error_alarm: aws.cloudwatch.MetricAlarm
    latency_alarm: aws.cloudwatch.MetricAlarm
    dead_letter_alarm: aws.cloudwatch.MetricAlarm
    rollback_alarm_names: pulumi.Output[list[str]]
    rollback_alarm_arns: pulumi.Output[list[str]]
    """For the SageMaker execution role's cloudwatch:DescribeAlarms, if the account needs it."""
    environment: pulumi.Output[dict[str, str]]
    """The Lambda's environment; export it so `ml.deployer.manual` uses the same settings."""

    def __init__(
        self, name: str, args: ModelDeployerArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("promote:sagemaker:ModelDeployer", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        tags = dict(args.tags)
        endpoint_name = pulumi.Output.from_input(args.endpoint_name)
        group_name = pulumi.Output.from_input(args.model_package_group_name)
        alarm_names = endpoint_name.apply(naming.rollback_alarm_names)
        self.rollback_alarm_names = alarm_names.apply(list)

        self.error_alarm, self.latency_alarm = self._rollback_alarms(
            name, args, endpoint_name, alarm_names, child
        )
        self.rollback_alarm_arns = pulumi.Output.all(self.error_alarm.arn, self.latency_alarm.arn)

        self.dead_letter_queue = aws.sqs.Queue(
            f"{name}-dlq",
            # SQS-managed encryption: EventBridge and Lambda can write to it without a
            # key policy grant, and it is still encrypted at rest.
            sqs_managed_sse_enabled=True,
            message_retention_seconds=DLQ_RETENTION_SECONDS,
            tags=tags,
            opts=child,
        )
        self.dead_letter_alarm = aws.cloudwatch.MetricAlarm(
            f"{name}-dlq-alarm",
            name=endpoint_name.apply(lambda n: f"{n}-deployer-dead-letters"),
            alarm_description="An approved model could not be deployed; see the dead-letter "
            "queue and the deployer logs, then run python -m ml.deployer.manual",
            namespace="AWS/SQS",
            metric_name="ApproximateNumberOfMessagesVisible",
            dimensions={"QueueName": self.dead_letter_queue.name},
            statistic="Maximum",
            period=300,
            evaluation_periods=1,
            threshold=0,
            comparison_operator="GreaterThanThreshold",
            treat_missing_data="notBreaching",
            alarm_actions=list(args.alarm_actions),
            tags=tags,
            opts=child,
        )

        log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=endpoint_name.apply(lambda n: f"/aws/lambda/{n}-deployer"),
            retention_in_days=LOG_RETENTION_DAYS,
            tags=tags,
            opts=child,
        )
        deployer_role = service_role(
            name,
            service="lambda.amazonaws.com",
            account=args.account,
            statements=deployer_statements(
                args,
                endpoint_name=endpoint_name,
                group_name=group_name,
                alarm_names=alarm_names,
                log_group_arn=log_group.arn,
                dead_letter_queue_arn=self.dead_letter_queue.arn,
            ),
            tags=tags,
            opts=child,
            description="Deployer Lambda: deploys approved models of one group to one endpoint",
            permissions_boundary=args.permissions_boundary,
        )
        self.role, policy = deployer_role.role, deployer_role.policy

        rollout = RolloutConfig.from_mapping(args.endpoint.rollout.model_dump())
        self.environment = pulumi.Output.all(
            endpoint_name,
            group_name,
            args.execution_role_arn,
            args.data_capture_s3_uri,
            args.kms_key_arn,
            alarm_names,
        ).apply(
            lambda values: {
                Env.ENDPOINT_NAME: values[0],
                Env.MODEL_PACKAGE_GROUP: values[1],
                Env.EXECUTION_ROLE_ARN: values[2],
                Env.DATA_CAPTURE_S3_URI: values[3],
                Env.KMS_KEY_ARN: values[4],
                Env.ROLLBACK_ALARMS: json.dumps(list(values[5])),
                Env.INSTANCE_TYPE: args.endpoint.instance_type,
                Env.INSTANCE_COUNT: str(args.endpoint.instance_count),
                Env.ROLLOUT: rollout.to_json(),
                Env.DATA_CAPTURE_PERCENT: str(args.endpoint.data_capture_sampling_percent),
            }
        )

        self.function = aws.lambda_.Function(
            f"{name}-function",
            name=endpoint_name.apply(lambda n: f"{n}-deployer"),
            description="Deploys approved model packages with blue/green rollout",
            package_type="Image",
            image_uri=args.deployer_image_uri,
            role=self.role.arn,
            timeout=LAMBDA_TIMEOUT_SECONDS,
            memory_size=512,
            # One deployment at a time: a second event waits instead of racing the first.
            reserved_concurrent_executions=1,
            environment={"variables": self.environment},
            logging_config={"log_format": "Text", "log_group": log_group.name},
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[policy, log_group]),
        )
        aws.lambda_.FunctionEventInvokeConfig(
            f"{name}-async",
            function_name=self.function.name,
            maximum_retry_attempts=ASYNC_RETRY_ATTEMPTS,
            maximum_event_age_in_seconds=ASYNC_MAX_AGE_SECONDS,
            destination_config={"on_failure": {"destination": self.dead_letter_queue.arn}},
            opts=child,
        )

        self.rule = aws.cloudwatch.EventRule(
            f"{name}-approved",
            description=group_name.apply(
                lambda g: f"Approved model packages of {g} trigger the deployer"
            ),
            event_pattern=group_name.apply(
                lambda g: json.dumps(approval_event_pattern(g), sort_keys=True)
            ),
            tags=tags,
            opts=child,
        )
        permission = aws.lambda_.Permission(
            f"{name}-invoke",
            action="lambda:InvokeFunction",
            function=self.function.name,
            principal="events.amazonaws.com",
            source_arn=self.rule.arn,
            source_account=args.account,
            opts=child,
        )
        aws.sqs.QueuePolicy(
            f"{name}-dlq-policy",
            queue_url=self.dead_letter_queue.url,
            policy=policy_json(
                Statement(
                    sid="RuleDeadLetters",
                    actions=["sqs:SendMessage"],
                    principals={"Service": ["events.amazonaws.com"]},
                    resources=[self.dead_letter_queue.arn],
                    conditions={"ArnEquals": {"aws:SourceArn": self.rule.arn}},
                )
            ),
            opts=child,
        )
        aws.cloudwatch.EventTarget(
            f"{name}-target",
            rule=self.rule.name,
            arn=self.function.arn,
            retry_policy={
                "maximum_event_age_in_seconds": EVENT_MAX_AGE_SECONDS,
                "maximum_retry_attempts": EVENT_RETRY_ATTEMPTS,
            },
            dead_letter_config={"arn": self.dead_letter_queue.arn},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[permission]),
        )

        self.register_outputs(
            {
                "function_name": self.function.name,
                "rule_arn": self.rule.arn,
                "dead_letter_queue_url": self.dead_letter_queue.url,
                "rollback_alarm_names": self.rollback_alarm_names,
                "rollback_alarm_arns": self.rollback_alarm_arns,
                "environment": self.environment,
            }
        )

    @staticmethod
    def _rollback_alarms(
        name: str,
        args: ModelDeployerArgs,
        endpoint_name: pulumi.Output[str],
        alarm_names: pulumi.Output[tuple[str, str]],
        opts: pulumi.ResourceOptions,
    ) -> tuple[aws.cloudwatch.MetricAlarm, aws.cloudwatch.MetricAlarm]:
        # Both alarms watch the whole endpoint (old and new fleet): the dimensions are
        # static, while endpoint config names change with every deployment.
        dimensions: dict[str, pulumi.Input[str]] = {
            "EndpointName": endpoint_name,
            "VariantName": DEFAULT_VARIANT,
        }
        errors = aws.cloudwatch.MetricAlarm(
            f"{name}-errors",
            name=alarm_names[0],
            alarm_description="Endpoint 5xx errors: rolls a blue/green deployment back",
            namespace="AWS/SageMaker",
            metric_name="Invocation5XXErrors",
            dimensions=dimensions,
            statistic="Sum",
            period=60,
            evaluation_periods=1,
            threshold=args.endpoint.error_alarm_threshold,
            comparison_operator="GreaterThanOrEqualToThreshold",
            treat_missing_data="notBreaching",
            alarm_actions=list(args.alarm_actions),
            tags=dict(args.tags),
            opts=opts,
        )
        latency = aws.cloudwatch.MetricAlarm(
            f"{name}-latency",
            name=alarm_names[1],
            alarm_description="Endpoint p90 model latency: rolls a blue/green deployment back",
            namespace="AWS/SageMaker",
            metric_name="ModelLatency",
            dimensions=dimensions,
            extended_statistic="p90",
            period=60,
            evaluation_periods=3,
            datapoints_to_alarm=2,
            threshold=args.endpoint.latency_alarm_microseconds,
            comparison_operator="GreaterThanThreshold",
            treat_missing_data="notBreaching",
            alarm_actions=list(args.alarm_actions),
            tags=dict(args.tags),
            opts=opts,
        )
        return errors, latency


def deployer_statements(
    args: ModelDeployerArgs,
    *,
    endpoint_name: pulumi.Output[str],
    group_name: pulumi.Output[str],
    alarm_names: pulumi.Output[tuple[str, str]],
    log_group_arn: pulumi.Input[str],
    dead_letter_queue_arn: pulumi.Input[str],
) -> list[Statement]:
    """The deployer role's policy: this stack's group, endpoint, configs and models only."""
    sagemaker = f"arn:{args.partition}:sagemaker:{args.region}:{args.account}"
    cloudwatch = f"arn:{args.partition}:cloudwatch:{args.region}:{args.account}"
    # SageMaker ARNs carry resource names in lower case.
    packages = group_name.apply(lambda g: f"{sagemaker}:model-package/{g.lower()}/*")
    endpoint = endpoint_name.apply(lambda n: f"{sagemaker}:endpoint/{n.lower()}")
    configs = endpoint_name.apply(
        lambda n: f"{sagemaker}:endpoint-config/{naming.resource_pattern(n)}"
    )
    models = endpoint_name.apply(lambda n: f"{sagemaker}:model/{naming.resource_pattern(n)}")
    return [
        Statement(
            sid="ReadModelRegistry",
            actions=["sagemaker:DescribeModelPackage", "sagemaker:ListModelPackages"],
            resources=[args.model_package_group_arn, packages],
        ),
        Statement(
            sid="CreateModels",
            actions=["sagemaker:AddTags", "sagemaker:CreateModel", "sagemaker:DescribeModel"],
            resources=[models],
        ),
        Statement(
            sid="CreateEndpointConfigs",
            actions=[
                "sagemaker:AddTags",
                "sagemaker:CreateEndpointConfig",
                "sagemaker:DescribeEndpointConfig",
            ],
            resources=[configs],
        ),
        # CreateEndpoint and UpdateEndpoint authorize on the endpoint and its new config.
        Statement(
            sid="DeployEndpoint",
            actions=[
                "sagemaker:AddTags",
                "sagemaker:CreateEndpoint",
                "sagemaker:DescribeEndpoint",
                "sagemaker:UpdateEndpoint",
            ],
            resources=[endpoint, configs],
        ),
        Statement(
            sid="PassExecutionRoleToSageMaker",
            actions=["iam:PassRole"],
            resources=[args.execution_role_arn],
            conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
        ),
        Statement(
            sid="ReadRollbackAlarms",
            actions=["cloudwatch:DescribeAlarms"],
            resources=[
                alarm_names.apply(lambda names: f"{cloudwatch}:alarm:{names[0]}"),
                alarm_names.apply(lambda names: f"{cloudwatch}:alarm:{names[1]}"),
            ],
        ),
        # SageMaker creates grants on the key for endpoint volumes and captured data.
        Statement(
            sid="GrantKeyToSageMaker",
            actions=["kms:CreateGrant"],
            resources=[args.kms_key_arn],
            conditions={"Bool": {"kms:GrantIsForAWSResource": "true"}},
        ),
        Statement(sid="DescribeKey", actions=["kms:DescribeKey"], resources=[args.kms_key_arn]),
        Statement(
            sid="WriteOwnLogs",
            actions=["logs:CreateLogStream", "logs:PutLogEvents"],
            resources=[
                log_group_arn,
                pulumi.Output.concat(log_group_arn, ":log-stream:*"),
            ],
        ),
        Statement(
            sid="FailedEventsToDeadLetterQueue",
            actions=["sqs:SendMessage"],
            resources=[dead_letter_queue_arn],
        ),
    ]
