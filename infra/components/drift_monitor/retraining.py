"""Drift retraining (`retrain_on_drift`): the alarm starts the pipeline, rate-limited.

An EventBridge rule on the alarm's change to ALARM starts a small Step Functions state
machine (no Lambda, so nothing runs that is not an ops image): it lists the pipeline's
newest executions, ends without starting one when an execution is Executing or Stopping,
or when a drift-triggered execution (display name `drift-...`) started within
`retrain_min_interval_seconds`, and otherwise starts the pipeline. The event's ID is the
start's ClientRequestToken, so a duplicate delivery of one alarm change starts nothing
twice; two different changes are at least one alarm period apart, far longer than the
list-then-start window. The trained model then goes through the pipeline's own approval
and the deployer.

IAM: the state machine may only list and start this pipeline; the rule's role may only
start this state machine.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.components.drift_monitor.args import DriftMonitorArgs
from infra.components.service_role import service_role
from infra.iam import Statement

LIST_EXECUTIONS_RESOURCE = "arn:aws:states:::aws-sdk:sagemaker:listPipelineExecutions"
START_EXECUTION_RESOURCE = "arn:aws:states:::aws-sdk:sagemaker:startPipelineExecution"
DRIFT_DISPLAY_PREFIX = "drift-"
"""Display name prefix of drift-triggered pipeline executions; the rate limit counts these."""
LISTED_EXECUTIONS = 100
"""Newest executions the trigger looks at (ListPipelineExecutions' maximum page)."""


def trigger_definition(args: DriftMonitorArgs) -> dict[str, Any]:
    """The state machine (JSONata) that starts the pipeline unless running or rate-limited."""
    summaries = "$states.result.PipelineExecutionSummaries"
    prefix = DRIFT_DISPLAY_PREFIX
    window_ms = args.retrain_min_interval_seconds * 1000
    running = f"{{% $count({summaries}[PipelineExecutionStatus in ['Executing', 'Stopping']]) %}}"
    # The SDK integrations return timestamps as ISO 8601 strings.
    recent = (
        f"{{% $count({summaries}[$substring(PipelineExecutionDisplayName, 0, {len(prefix)}) = "
        f"'{prefix}' and $toMillis(StartTime) > $millis() - {window_ms}]) %}}"
    )
    # The alarm event is the execution's input; a state's $states.input is the previous
    # state's output (ListExecutions' result here), so the event is read from the context.
    event = "$states.context.Execution.Input"
    # The alarm event's ID: a redelivered event reuses the token, so it starts nothing new.
    event_id = f"($exists({event}.id) ? {event}.id : $uuid())"
    return {
        "Comment": f"Retrain {args.pipeline_name} on drift of {args.endpoint_name}",
        "QueryLanguage": "JSONata",
        "StartAt": "ListExecutions",
        "States": {
            "ListExecutions": {
                "Type": "Task",
                "Resource": LIST_EXECUTIONS_RESOURCE,
                "Arguments": {
                    "PipelineName": args.pipeline_name,
                    "SortBy": "CreationTime",
                    "SortOrder": "Descending",
                    "MaxResults": LISTED_EXECUTIONS,
                },
                "Assign": {"running": running, "recent": recent},
                "Retry": [
                    {
                        "ErrorEquals": ["States.ALL"],
                        "IntervalSeconds": 5,
                        "MaxAttempts": 3,
                        "BackoffRate": 2,
                    }
                ],
                "Next": "Decide",
            },
            "Decide": {
                "Type": "Choice",
                "Choices": [
                    {"Condition": "{% $running > 0 %}", "Next": "AlreadyRunning"},
                    {"Condition": "{% $recent > 0 %}", "Next": "RateLimited"},
                ],
                "Default": "StartRetraining",
            },
            "AlreadyRunning": {
                "Type": "Succeed",
                "Comment": "An execution is running; drift alone does not start another.",
            },
            "RateLimited": {
                "Type": "Succeed",
                "Comment": "A drift-triggered execution started within the minimum interval.",
            },
            "StartRetraining": {
                "Type": "Task",
                "Resource": START_EXECUTION_RESOURCE,
                "Arguments": {
                    "PipelineName": args.pipeline_name,
                    "PipelineExecutionDisplayName": f"{{% '{prefix}' & {event_id} %}}",
                    "PipelineExecutionDescription": (
                        f"{{% 'Drift retraining: alarm ' & {event}.detail.alarmName"
                        f" & ' at ' & {event}.time %}}"
                    ),
                    "ClientRequestToken": f"{{% {event_id} %}}",
                },
                "End": True,
            },
        },
    }


def alarm_event_pattern(alarm_name: str) -> dict[str, Any]:
    return {
        "source": ["aws.cloudwatch"],
        "detail-type": ["CloudWatch Alarm State Change"],
        "detail": {"alarmName": [alarm_name], "state": {"value": ["ALARM"]}},
    }


def trigger_statements(pipeline_arn: pulumi.Input[str]) -> list[Statement]:
    return [
        Statement(
            sid="ListAndStartOnlyThisPipeline",
            actions=["sagemaker:ListPipelineExecutions", "sagemaker:StartPipelineExecution"],
            resources=[pipeline_arn],
        )
    ]


@dataclass(frozen=True)
class RetrainingTrigger:
    rule: aws.cloudwatch.EventRule
    state_machine: aws.sfn.StateMachine
    state_machine_arn: str


def retraining_trigger(
    name: str, args: DriftMonitorArgs, tags: Mapping[str, str], parent: pulumi.Resource
) -> RetrainingTrigger:
    """The state machine, its role, and the alarm rule (with its role) that starts it."""
    child = pulumi.ResourceOptions(parent=parent)
    machine_role = service_role(
        f"{name}-trigger",
        service="states.amazonaws.com",
        account=args.account,
        statements=trigger_statements(args.pipeline_arn),
        tags=tags,
        opts=child,
        role_name=f"{args.name_prefix}-drift-trigger",
        description=f"Starts {args.pipeline_name} on drift, rate-limited",
        permissions_boundary=args.permissions_boundary,
    )
    machine_name = f"{args.name_prefix}-drift-retraining"
    # Built from the name (known at preview, the form IAM and EventBridge expect).
    machine_arn = (
        f"arn:{args.partition}:states:{args.region}:{args.account}:stateMachine:{machine_name}"
    )
    machine = aws.sfn.StateMachine(
        f"{name}-trigger",
        name=machine_name,
        type="STANDARD",
        role_arn=machine_role.role.arn,
        definition=json.dumps(trigger_definition(args), sort_keys=True),
        tags=tags,
        opts=pulumi.ResourceOptions(parent=parent, depends_on=[machine_role.policy]),
    )
    rule = aws.cloudwatch.EventRule(
        f"{name}-alarm-rule",
        name=f"{args.name_prefix}-drift-alarm",
        description=f"{args.alarm_name} changed to ALARM: drift retraining",
        event_pattern=json.dumps(alarm_event_pattern(args.alarm_name), sort_keys=True),
        tags=tags,
        opts=child,
    )
    events = service_role(
        f"{name}-events",
        service="events.amazonaws.com",
        account=args.account,
        statements=[
            Statement(
                sid="StartOnlyTheDriftTrigger",
                actions=["states:StartExecution"],
                resources=[machine_arn],
            )
        ],
        tags=tags,
        opts=child,
        role_name=f"{args.name_prefix}-drift-events",
        description=f"Lets {args.name_prefix}-drift-alarm start the drift trigger",
        permissions_boundary=args.permissions_boundary,
    )
    aws.cloudwatch.EventTarget(
        f"{name}-alarm-target",
        rule=rule.name,
        arn=machine_arn,
        role_arn=events.role.arn,
        retry_policy={"maximum_retry_attempts": 4, "maximum_event_age_in_seconds": 3600},
        opts=pulumi.ResourceOptions(parent=parent, depends_on=[machine, events.policy]),
    )
    return RetrainingTrigger(rule, machine, machine_arn)
