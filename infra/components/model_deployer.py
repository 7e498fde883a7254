"""Auto-deploy of approved models: EventBridge rule -> SQS FIFO queue -> deployer Lambda.

Only approvals (and rejections, to warn when a rejected model is still
served) in this stack's model package group match the rule. The rule sends
them to a KMS-encrypted FIFO queue, one message group per endpoint, and a
Lambda event source mapping (batch size 1, partial batch responses) hands
them to the deployer one at a time per endpoint - no reserved concurrency,
which new accounts with a concurrency quota of 10 cannot grant. A message
whose deployment must wait (endpoint busy during a rollout, throttling, 5xx)
returns to the queue and is retried for hours (`ml.deployer.delivery`);
after a bounded number of receives, or at once when it needs an operator, it
lands in an encrypted FIFO dead-letter queue with an alarm. Events the rule
cannot deliver to the queue go to a standard queue (EventBridge dead-letter
queues cannot be FIFO), with its own alarm. The Lambda's role can touch
nothing but this stack's group, endpoint, endpoint configs, models, queues
and model artifacts. The two CloudWatch alarms are the ones blue/green
updates roll back on. The handler lives in `ml.deployer`; its settings
travel as environment variables named in `ml.deployer.config.Env` and
`ml.deployer.delivery`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from infra.components.approval_queues import QueueArgs, approval_queues
from infra.components.deployer_policy import deployer_statements
from infra.components.service_role import service_role
from infra.settings import EndpointSettings
from ml.deployer import delivery, naming
from ml.deployer.config import DEFAULT_VARIANT, Env, RolloutConfig
from ml.deployer.events import deployer_event_pattern

LAMBDA_TIMEOUT_SECONDS = delivery.LAMBDA_TIMEOUT_SECONDS
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
    queue: aws.sqs.Queue
    """FIFO queue of approvals, one message group per endpoint."""
    dead_letter_queue: aws.sqs.Queue
    """FIFO queue of approvals that exhausted their retries or need an operator."""
    undelivered_queue: aws.sqs.Queue
    """Standard queue of events the rule could not deliver to `queue`."""
    event_source_mapping: aws.lambda_.EventSourceMapping
    error_alarm: aws.cloudwatch.MetricAlarm
    latency_alarm: aws.cloudwatch.MetricAlarm
    dead_letter_alarm: aws.cloudwatch.MetricAlarm
    undelivered_alarm: aws.cloudwatch.MetricAlarm
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
        rollout = RolloutConfig.from_mapping(args.endpoint.rollout.model_dump())
        queues = delivery.QueueSettings.for_rollout(rollout)

        self.error_alarm, self.latency_alarm = self._rollback_alarms(
            name, args, endpoint_name, alarm_names, child
        )
        self.rollback_alarm_arns = pulumi.Output.all(self.error_alarm.arn, self.latency_alarm.arn)

        self.rule = aws.cloudwatch.EventRule(
            f"{name}-approved",
            description=group_name.apply(
                lambda g: f"Approvals and rejections of {g} model packages, for the deployer"
            ),
            event_pattern=group_name.apply(
                lambda g: json.dumps(deployer_event_pattern(g), sort_keys=True)
            ),
            tags=tags,
            opts=child,
        )
        delivered = approval_queues(
            name,
            QueueArgs(
                rule_arn=self.rule.arn,
                rule_name=self.rule.name,
                endpoint_name=endpoint_name,
                kms_key_arn=args.kms_key_arn,
                settings=queues,
                account=args.account,
                partition=args.partition,
                tags=tags,
                alarm_actions=args.alarm_actions,
            ),
            child,
        )
        self.queue = delivered.queue
        self.dead_letter_queue = delivered.dead_letter_queue
        self.undelivered_queue = delivered.undelivered_queue
        self.dead_letter_alarm = delivered.dead_letter_alarm
        self.undelivered_alarm = delivered.undelivered_alarm

        log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=endpoint_name.apply(lambda n: f"/aws/lambda/{n}-deployer"),
            retention_in_days=LOG_RETENTION_DAYS,
            # The stack key's policy lets CloudWatch Logs of this account use it.
            kms_key_id=args.kms_key_arn,
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
                queue_arn=self.queue.arn,
                dead_letter_queue_arn=self.dead_letter_queue.arn,
            ),
            tags=tags,
            opts=child,
            description="Deployer Lambda: deploys approved models of one group to one endpoint",
            permissions_boundary=args.permissions_boundary,
        )
        self.role, policy = deployer_role.role, deployer_role.policy

        self.environment = pulumi.Output.all(
            endpoint_name,
            group_name,
            args.execution_role_arn,
            args.data_capture_s3_uri,
            args.kms_key_arn,
            alarm_names,
            self.queue.url,
            self.dead_letter_queue.url,
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
                delivery.QUEUE_URL_ENV: values[6],
                delivery.DEAD_LETTER_QUEUE_URL_ENV: values[7],
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
            # No reserved concurrency: the FIFO message group serialises deployments.
            environment={"variables": self.environment},
            logging_config={"log_format": "Text", "log_group": log_group.name},
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[policy, log_group]),
        )
        self.event_source_mapping = aws.lambda_.EventSourceMapping(
            f"{name}-approvals",
            event_source_arn=self.queue.arn,
            function_name=self.function.arn,
            batch_size=1,
            # A failed approval returns to the queue instead of failing the whole batch.
            function_response_types=["ReportBatchItemFailures"],
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[policy]),
        )

        self.register_outputs(
            {
                "function_name": self.function.name,
                "rule_arn": self.rule.arn,
                "queue_url": self.queue.url,
                "dead_letter_queue_url": self.dead_letter_queue.url,
                "undelivered_queue_url": self.undelivered_queue.url,
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
