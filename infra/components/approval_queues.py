"""The approvals queue of the deployer: rule target, FIFO queue, dead letters, key, alarms.

EventBridge rule -> SQS FIFO queue (message group = endpoint, content-based
deduplication) -> the deployer's event source mapping. After
`ml.deployer.delivery.MAX_RECEIVES` receives SQS moves a message to a FIFO
dead-letter queue; events the rule cannot deliver go to a standard queue
(EventBridge dead-letter queues cannot be FIFO). All three are SSE-KMS
encrypted with the stack's data key, which the identity bootstrap makes (CI
may not create keys). EventBridge can write to an SSE-KMS queue only if the
key policy lets `events.amazonaws.com` call kms:GenerateDataKey and
kms:Decrypt (EventBridge user guide, "Amazon SQS queue target"); the queue
policies let only this stack's rule send. Both dead-letter queues have an
alarm. Created by `ModelDeployer` as its children.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from infra.iam import Statement, policy_json
from ml.deployer import delivery

EVENT_MAX_AGE_SECONDS = 24 * 3600
EVENT_RETRY_ATTEMPTS = 185
"""EventBridge's maximums for delivering to the queue (a queue is rarely unavailable)."""


@dataclass(frozen=True)
class QueueArgs:
    rule_arn: pulumi.Input[str]
    rule_name: pulumi.Input[str]
    endpoint_name: pulumi.Output[str]
    kms_key_arn: pulumi.Input[str]
    """The stack's data key (made by the identity bootstrap); its key policy must let
    events.amazonaws.com use it for this account's rules (see the module docstring)."""
    settings: delivery.QueueSettings
    account: str
    tags: Mapping[str, str]
    partition: str = "aws"
    alarm_actions: Sequence[pulumi.Input[str]] = field(default_factory=tuple)


@dataclass(frozen=True)
class ApprovalQueues:
    queue: aws.sqs.Queue
    """FIFO queue of approvals, one message group per endpoint."""
    dead_letter_queue: aws.sqs.Queue
    """FIFO queue of approvals that exhausted their retries or need an operator."""
    undelivered_queue: aws.sqs.Queue
    """Standard queue of events the rule could not deliver to `queue`."""
    dead_letter_alarm: aws.cloudwatch.MetricAlarm
    undelivered_alarm: aws.cloudwatch.MetricAlarm


def approval_queues(name: str, args: QueueArgs, opts: pulumi.ResourceOptions) -> ApprovalQueues:
    """The three queues, their policies, the rule's target and two alarms."""
    tags = dict(args.tags)
    endpoint_name = args.endpoint_name
    settings = args.settings
    from_rule = {"ArnEquals": {"aws:SourceArn": args.rule_arn}}
    dead_letter_queue = aws.sqs.Queue(
        f"{name}-dlq",
        name=endpoint_name.apply(lambda n: f"{n}-approvals-dlq.fifo"),
        fifo_queue=True,
        content_based_deduplication=True,
        kms_master_key_id=args.kms_key_arn,
        message_retention_seconds=settings.retention_seconds,
        tags=tags,
        opts=opts,
    )
    queue = aws.sqs.Queue(
        f"{name}-queue",
        name=endpoint_name.apply(lambda n: f"{n}-approvals.fifo"),
        fifo_queue=True,
        # EventBridge sets no deduplication id: the body (the event, with its id) is it.
        content_based_deduplication=True,
        kms_master_key_id=args.kms_key_arn,
        visibility_timeout_seconds=settings.visibility_timeout_seconds,
        message_retention_seconds=settings.retention_seconds,
        redrive_policy=dead_letter_queue.arn.apply(settings.redrive_policy),
        tags=tags,
        opts=opts,
    )
    undelivered_queue = aws.sqs.Queue(
        f"{name}-undelivered",
        name=endpoint_name.apply(lambda n: f"{n}-undelivered-approvals"),
        kms_master_key_id=args.kms_key_arn,
        message_retention_seconds=settings.retention_seconds,
        tags=tags,
        opts=opts,
    )
    policies = [
        aws.sqs.QueuePolicy(
            f"{name}-{role}-policy",
            queue_url=target.url,
            policy=policy_json(
                Statement(
                    sid="OnlyTheApprovalRuleSends",
                    actions=["sqs:SendMessage"],
                    principals={"Service": ["events.amazonaws.com"]},
                    resources=[target.arn],
                    conditions=from_rule,
                )
            ),
            opts=opts,
        )
        for role, target in (("queue", queue), ("undelivered", undelivered_queue))
    ]
    aws.cloudwatch.EventTarget(
        f"{name}-target",
        rule=args.rule_name,
        arn=queue.arn,
        sqs_target={"message_group_id": endpoint_name},
        retry_policy={
            "maximum_event_age_in_seconds": EVENT_MAX_AGE_SECONDS,
            "maximum_retry_attempts": EVENT_RETRY_ATTEMPTS,
        },
        dead_letter_config={"arn": undelivered_queue.arn},
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=policies)),
    )
    dead_letter_alarm = _queue_alarm(
        f"{name}-dlq-alarm",
        args,
        (endpoint_name.apply(lambda n: f"{n}-deployer-dead-letters"), dead_letter_queue),
        "An approved model could not be deployed: see the dead-letter queue and the deployer "
        "logs (action failed), then run python -m ml.deployer.manual",
        opts,
    )
    undelivered_alarm = _queue_alarm(
        f"{name}-undelivered-alarm",
        args,
        (endpoint_name.apply(lambda n: f"{n}-deployer-undelivered"), undelivered_queue),
        "An approval event could not be delivered to the deployer queue: check the queue key "
        "and queue policy, then run python -m ml.deployer.manual",
        opts,
    )
    return ApprovalQueues(
        queue, dead_letter_queue, undelivered_queue, dead_letter_alarm, undelivered_alarm
    )


def _queue_alarm(
    resource_name: str,
    args: QueueArgs,
    watched: tuple[pulumi.Input[str], aws.sqs.Queue],
    description: str,
    opts: pulumi.ResourceOptions,
) -> aws.cloudwatch.MetricAlarm:
    alarm_name, queue = watched
    return aws.cloudwatch.MetricAlarm(
        resource_name,
        name=alarm_name,
        alarm_description=description,
        namespace="AWS/SQS",
        metric_name="ApproximateNumberOfMessagesVisible",
        dimensions={"QueueName": queue.name},
        statistic="Maximum",
        period=300,
        evaluation_periods=1,
        threshold=0,
        comparison_operator="GreaterThanThreshold",
        treat_missing_data="notBreaching",
        alarm_actions=list(args.alarm_actions),
        tags=dict(args.tags),
        opts=opts,
    )
