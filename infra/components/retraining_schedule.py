"""Scheduled retraining: EventBridge Scheduler starts the stack's pipeline.

The schedule calls SageMaker directly (universal target), assuming a role that
can start only this pipeline. Its input is only the pipeline name, so the schedule
uses Scheduler's AWS-owned key (a customer key would also have to be granted to
the schedule's role for every run). Prod retrains on prod data on its own; the code
it runs is still the commit staging already ran.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.components.service_role import service_role
from infra.iam import Statement

START_PIPELINE_TARGET = "arn:aws:scheduler:::aws-sdk:sagemaker:startPipelineExecution"


@dataclass(frozen=True)
class RetrainingScheduleArgs:
    schedule_name: str
    role_name: str
    account: str
    pipeline_name: str
    pipeline_arn: pulumi.Input[str]
    schedule_expression: str
    timezone: str
    tags: Mapping[str, str]
    permissions_boundary: str | None = None


class RetrainingSchedule(pulumi.ComponentResource):
    schedule: aws.scheduler.Schedule

    def __init__(
        self, name: str, args: RetrainingScheduleArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("promote:sagemaker:RetrainingSchedule", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        role = service_role(
            name,
            service="scheduler.amazonaws.com",
            account=args.account,
            statements=[
                Statement(
                    sid="StartOnlyThisPipeline",
                    actions=["sagemaker:StartPipelineExecution"],
                    resources=[args.pipeline_arn],
                )
            ],
            tags=args.tags,
            opts=child,
            role_name=args.role_name,
            permissions_boundary=args.permissions_boundary,
        ).role
        self.schedule = aws.scheduler.Schedule(
            f"{name}-schedule",
            name=args.schedule_name,
            description=f"Retrain {args.pipeline_name} on this account's data",
            schedule_expression=args.schedule_expression,
            schedule_expression_timezone=args.timezone,
            flexible_time_window={"mode": "OFF"},
            state="ENABLED",
            target={
                "arn": START_PIPELINE_TARGET,
                "role_arn": role.arn,
                "input": json.dumps(
                    {
                        "PipelineName": args.pipeline_name,
                        "PipelineExecutionDescription": "Scheduled retraining",
                    },
                    sort_keys=True,
                ),
                "retry_policy": {"maximum_retry_attempts": 2},
            },
            opts=child,
        )
        self.register_outputs({"schedule_arn": self.schedule.arn})
