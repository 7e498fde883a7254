"""Drift monitoring of one endpoint, and (where allowed) retraining when drift is measured.

The `DriftMonitor` component composes three parts, each in its own module:

1. **The monitor job** (`job`): an EventBridge Scheduler schedule calls SageMaker
   `CreateProcessingJob` directly, running the ops training image pinned by digest in its
   `monitor` mode; the job publishes `DriftScore` for the endpoint's captured traffic.
2. **The alarm** (`alarm`): `DriftScore` above the threshold is ALARM; too little traffic
   never alarms.
3. **Drift retraining** (`retraining`, `retrain_on_drift`): an EventBridge rule on the
   alarm starts a Step Functions state machine that starts the pipeline unless an
   execution runs or a drift-triggered one started within the minimum interval.

What the monitor is given and what its container is told are in `args`. This package is
the public entry: callers import from `infra.components.drift_monitor`.
"""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from infra.components.drift_monitor.alarm import (
    DRIFT_SCORE_METRIC,
    METRIC_DIMENSION,
    drift_alarm,
)
from infra.components.drift_monitor.args import (
    EXECUTION_ID,
    EXECUTION_ID_ROOM,
    MAX_JOB_NAME,
    OUTPUT_LOCAL_PATH,
    REPORTS_PREFIX,
    SCHEDULED_TIME,
    DriftMonitorArgs,
    MonitorEnv,
    container_environment,
)
from infra.components.drift_monitor.job import (
    CREATE_PROCESSING_JOB_TARGET,
    PROCESSING_LOG_GROUP,
    job_statements,
    monitor_job,
    processing_job_request,
    scheduler_statements,
)
from infra.components.drift_monitor.retraining import (
    DRIFT_DISPLAY_PREFIX,
    LIST_EXECUTIONS_RESOURCE,
    LISTED_EXECUTIONS,
    START_EXECUTION_RESOURCE,
    alarm_event_pattern,
    retraining_trigger,
    trigger_definition,
    trigger_statements,
)


class DriftMonitor(pulumi.ComponentResource):
    """Scheduled drift job, drift alarm and (optionally) the rate-limited retraining trigger."""

    job_role: aws.iam.Role
    schedule: aws.scheduler.Schedule
    alarm: aws.cloudwatch.MetricAlarm
    rule: aws.cloudwatch.EventRule | None
    state_machine: aws.sfn.StateMachine | None
    state_machine_arn: str | None
    report_s3_uri: str

    def __init__(
        self, name: str, args: DriftMonitorArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("promote:sagemaker:DriftMonitor", name, None, opts)
        tags = dict(args.tags)
        self.report_s3_uri = args.s3_uri(args.report_key_prefix)

        job = monitor_job(name, args, tags, self)
        self.job_role = job.job_role
        self.schedule = job.schedule
        self.alarm = drift_alarm(name, args, tags, self)
        self.rule = None
        self.state_machine = None
        self.state_machine_arn = None
        if args.retrain_on_drift:
            trigger = retraining_trigger(name, args, tags, self)
            self.rule = trigger.rule
            self.state_machine = trigger.state_machine
            self.state_machine_arn = trigger.state_machine_arn

        self.register_outputs(
            {
                "schedule_name": self.schedule.name,
                "alarm_name": self.alarm.name,
                "report_s3_uri": self.report_s3_uri,
                "state_machine_arn": self.state_machine_arn,
            }
        )


__all__ = [
    "CREATE_PROCESSING_JOB_TARGET",
    "DRIFT_DISPLAY_PREFIX",
    "DRIFT_SCORE_METRIC",
    "EXECUTION_ID",
    "EXECUTION_ID_ROOM",
    "LISTED_EXECUTIONS",
    "LIST_EXECUTIONS_RESOURCE",
    "MAX_JOB_NAME",
    "METRIC_DIMENSION",
    "OUTPUT_LOCAL_PATH",
    "PROCESSING_LOG_GROUP",
    "REPORTS_PREFIX",
    "SCHEDULED_TIME",
    "START_EXECUTION_RESOURCE",
    "DriftMonitor",
    "DriftMonitorArgs",
    "MonitorEnv",
    "alarm_event_pattern",
    "container_environment",
    "job_statements",
    "processing_job_request",
    "scheduler_statements",
    "trigger_definition",
    "trigger_statements",
]
