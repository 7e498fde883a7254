"""The DriftMonitor component under the offline mocks: job, schedule, alarm, trigger, IAM."""

from __future__ import annotations

import asyncio
import json
import warnings
from dataclasses import replace
from typing import Any

import pulumi
import pytest
from pulumi.runtime import settings as pulumi_settings

from infra.components.drift_monitor import (
    CREATE_PROCESSING_JOB_TARGET,
    DRIFT_SCORE_METRIC,
    EXECUTION_ID,
    LIST_EXECUTIONS_RESOURCE,
    METRIC_DIMENSION,
    SCHEDULED_TIME,
    START_EXECUTION_RESOURCE,
    DriftMonitor,
    DriftMonitorArgs,
    MonitorEnv,
)
from offline.plan.capture import CapturedResource, StackPlan
from offline.plan.harness import PROJECT, CapturingMonitor
from offline.plan.mocks import OfflineMocks
from tests.plan_helpers import policy_document, statements

ACCOUNT = "444444444444"
OPS = "111111111111"
REGION = "eu-west-1"
PREFIX = "promote-code-prod"
ENDPOINT = f"{PREFIX}-endpoint"
GROUP = f"{PREFIX}-models"
PIPELINE = f"{PREFIX}-training"
PIPELINE_ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:pipeline/{PIPELINE}"
BUCKET = f"{PREFIX}-artifacts-{ACCOUNT}"
KEY_ARN = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/608c9bf9-a73a-53e5-80ff-1327559b80c9"
REPOSITORY_ARN = f"arn:aws:ecr:{REGION}:{OPS}:repository/promote-code/training"
IMAGE = f"{OPS}.dkr.ecr.{REGION}.amazonaws.com/promote-code/training@sha256:" + "c" * 64
NAMESPACE = "promote-code/prod/drift"
TAGS = {"project": "promote-code", "environment": "prod", "managed-by": "pulumi"}
SCHEDULE = "aws:scheduler/schedule:Schedule"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"


def monitor_args(**changes: Any) -> DriftMonitorArgs:
    """The prod monitor as the environment stack would wire it, with drift retraining on."""
    args = DriftMonitorArgs(
        name_prefix=PREFIX,
        account=ACCOUNT,
        region=REGION,
        endpoint_name=ENDPOINT,
        model_package_group_name=GROUP,
        pipeline_name=PIPELINE,
        pipeline_arn=PIPELINE_ARN,
        artifacts_bucket=BUCKET,
        kms_key_arn=KEY_ARN,
        image_uri=IMAGE,
        ops_repository_arn=REPOSITORY_ARN,
        metric_namespace=NAMESPACE,
        tags=TAGS,
        drift_threshold=0.25,
        retrain_on_drift=True,
        retrain_min_interval_seconds=3 * 86400,
        permissions_boundary=f"arn:aws:iam::{ACCOUNT}:policy/{PREFIX}-workload-boundary",
    )
    return replace(args, **changes)


def monitor_plan(args: DriftMonitorArgs | None = None) -> StackPlan:
    """Declare one DriftMonitor under the offline mocks; return what it registered."""
    asyncio.set_event_loop(asyncio.new_event_loop())
    pulumi_settings.ROOT.set(None)
    monitor = CapturingMonitor(OfflineMocks(account=ACCOUNT, region=REGION))
    pulumi.runtime.set_mocks(
        monitor.mocks, project=PROJECT, stack="prod", preview=False, monitor=monitor
    )

    @pulumi.runtime.test  # type: ignore[untyped-decorator]
    def program() -> None:
        DriftMonitor(f"{PREFIX}-drift", args or monitor_args())

    program()
    return StackPlan(PROJECT, "prod", tuple(sorted(monitor.captured, key=lambda r: r.urn)), {})


@pytest.fixture(scope="module")
def plan() -> StackPlan:
    return monitor_plan()


def sids(plan: StackPlan, policy_name: str) -> dict[str, dict[str, Any]]:
    resource = plan.one(ROLE_POLICY, policy_name)
    return {s["Sid"]: s for s in statements(policy_document(resource))}


def request(plan: StackPlan) -> dict[str, Any]:
    (schedule,) = plan.of_type(SCHEDULE)
    parsed: dict[str, Any] = json.loads(schedule.inputs["target"]["input"])
    return parsed


def test_the_schedule_creates_a_processing_job_of_the_ops_digest_image(plan: StackPlan) -> None:
    (schedule,) = plan.of_type(SCHEDULE)
    target = schedule.inputs["target"]
    assert target["arn"] == CREATE_PROCESSING_JOB_TARGET
    assert schedule.inputs["scheduleExpression"] == "rate(1 day)"
    assert schedule.inputs["state"] == "ENABLED"
    job = request(plan)
    assert job["AppSpecification"] == {"ImageUri": IMAGE, "ContainerArguments": ["monitor"]}
    assert job["ProcessingJobName"] == f"{PREFIX}-drift-{EXECUTION_ID}"
    assert job["RoleArn"] == f"arn:aws:iam::{ACCOUNT}:role/{PREFIX}-drift-monitor"
    cluster = job["ProcessingResources"]["ClusterConfig"]
    assert cluster["VolumeKmsKeyId"] == KEY_ARN
    assert cluster["InstanceCount"] == 1
    assert job["StoppingCondition"] == {"MaxRuntimeInSeconds": 3600}
    # The scheduler role (not the job role) is what the schedule assumes.
    assert target["roleArn"] == f"arn:aws:iam::{ACCOUNT}:role/{PREFIX}-drift-scheduler"


def test_the_container_is_told_its_window_prefixes_and_namespace(plan: StackPlan) -> None:
    environment = request(plan)["Environment"]
    assert environment[MonitorEnv.END_TIME] == SCHEDULED_TIME
    assert environment[MonitorEnv.DATASET_SOURCE] == f"s3://{BUCKET}/data-capture/{ENDPOINT}/"
    assert environment[MonitorEnv.REPORT_S3_URI] == f"s3://{BUCKET}/drift-reports/{ENDPOINT}/"
    assert environment[MonitorEnv.METRIC_NAMESPACE] == NAMESPACE
    assert environment[MonitorEnv.ENDPOINT_NAME] == ENDPOINT
    assert environment[MonitorEnv.THRESHOLD] == "0.25"
    (output,) = request(plan)["ProcessingOutputConfig"]["Outputs"]
    assert output["S3Output"] == {
        "S3Uri": f"s3://{BUCKET}/drift-reports/{ENDPOINT}/{SCHEDULED_TIME}",
        "LocalPath": environment[MonitorEnv.OUTPUT_PATH],
        "S3UploadMode": "EndOfJob",
    }
    assert request(plan)["ProcessingOutputConfig"]["KmsKeyId"] == KEY_ARN
    # botocore's ProcessingEnvironmentKey/Value limits: the API would refuse anything else.
    assert len(environment) <= 100
    assert all(len(k) <= 256 and len(v) <= 256 for k, v in environment.items())


def test_the_request_is_known_at_preview_and_deterministic() -> None:
    first, second = monitor_plan(), monitor_plan()
    assert request(first) == request(second)
    (schedule,) = first.of_type(SCHEDULE)
    assert isinstance(schedule.inputs["target"]["input"], str)


def test_the_alarm_watches_the_drift_score_and_ignores_missing_data(plan: StackPlan) -> None:
    (alarm,) = plan.of_type(ALARM)
    assert alarm.inputs["namespace"] == NAMESPACE
    assert alarm.inputs["metricName"] == DRIFT_SCORE_METRIC
    assert alarm.inputs["dimensions"] == {"EndpointName": ENDPOINT}
    assert alarm.inputs["threshold"] == 0.25
    assert alarm.inputs["comparisonOperator"] == "GreaterThanThreshold"
    assert alarm.inputs["treatMissingData"] == "notBreaching"
    assert alarm.inputs["period"] == 86400


def test_the_alarm_rule_targets_the_trigger_state_machine(plan: StackPlan) -> None:
    (rule,) = plan.of_type("aws:cloudwatch/eventRule:EventRule")
    pattern = json.loads(rule.inputs["eventPattern"])
    assert pattern["source"] == ["aws.cloudwatch"]
    assert pattern["detail"] == {"alarmName": [f"{ENDPOINT}-drift"], "state": {"value": ["ALARM"]}}
    (target,) = plan.of_type("aws:cloudwatch/eventTarget:EventTarget")
    (machine,) = plan.of_type("aws:sfn/stateMachine:StateMachine")
    assert target.inputs["rule"] == rule.inputs["name"]
    assert target.inputs["arn"] == (
        f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{machine.inputs['name']}"
    )
    events = sids(plan, f"{PREFIX}-drift-events-policy")
    assert events["StartOnlyTheDriftTrigger"]["Action"] == ["states:StartExecution"]
    assert events["StartOnlyTheDriftTrigger"]["Resource"] == [target.inputs["arn"]]


def _definition(plan: StackPlan) -> dict[str, Any]:
    (machine,) = plan.of_type("aws:sfn/stateMachine:StateMachine")
    parsed: dict[str, Any] = json.loads(machine.inputs["definition"])
    return parsed


def test_the_trigger_checks_running_and_recent_executions_before_starting(
    plan: StackPlan,
) -> None:
    definition = _definition(plan)
    states = definition["States"]
    assert definition["QueryLanguage"] == "JSONata"
    assert definition["StartAt"] == "ListExecutions"
    listing = states["ListExecutions"]
    assert listing["Resource"] == LIST_EXECUTIONS_RESOURCE
    assert listing["Arguments"]["PipelineName"] == PIPELINE
    assert listing["Arguments"]["SortOrder"] == "Descending"
    assert "'Executing', 'Stopping'" in listing["Assign"]["running"]
    # The rate limit: 3 days in milliseconds, counted on drift-triggered executions only.
    assert "$millis() - 259200000" in listing["Assign"]["recent"]
    assert "'drift-'" in listing["Assign"]["recent"]
    choices = {c["Next"]: c["Condition"] for c in states["Decide"]["Choices"]}
    assert choices == {"AlreadyRunning": "{% $running > 0 %}", "RateLimited": "{% $recent > 0 %}"}
    assert states["Decide"]["Default"] == "StartRetraining"
    assert states["AlreadyRunning"]["Type"] == states["RateLimited"]["Type"] == "Succeed"
    start = states["StartRetraining"]
    assert start["Resource"] == START_EXECUTION_RESOURCE
    assert start["Arguments"]["PipelineName"] == PIPELINE
    # The event is the execution's input, not StartRetraining's (ListExecutions' result).
    assert "$states.context.Execution.Input.id" in start["Arguments"]["ClientRequestToken"]
    assert "$states.input" not in json.dumps(start)
    assert start["Arguments"]["PipelineExecutionDisplayName"].startswith("{% 'drift-' & ")


def test_the_rate_limit_follows_its_setting() -> None:
    hourly = monitor_plan(monitor_args(retrain_min_interval_seconds=3600))
    assert (
        "$millis() - 3600000" in _definition(hourly)["States"]["ListExecutions"]["Assign"]["recent"]
    )


def test_without_drift_retraining_there_is_no_rule_or_trigger() -> None:
    off = monitor_plan(monitor_args(retrain_on_drift=False))
    assert off.of_type(SCHEDULE)
    assert off.of_type(ALARM)
    assert not off.of_type("aws:cloudwatch/eventRule:EventRule")
    assert not off.of_type("aws:sfn/stateMachine:StateMachine")
    assert not any("trigger" in r.name or "events" in r.name for r in off.resources)


def test_the_job_role_reads_only_this_endpoints_capture_and_writes_only_its_reports(
    plan: StackPlan,
) -> None:
    job = sids(plan, f"{PREFIX}-drift-job-policy")
    s3 = f"arn:aws:s3:::{BUCKET}"
    listing = job["ListCaptureAndReports"]
    assert listing["Resource"] == [s3]
    assert listing["Condition"]["StringLike"]["s3:prefix"] == [
        f"data-capture/{ENDPOINT}/*",
        f"drift-reports/{ENDPOINT}/*",
    ]
    assert job["ReadCaptureAndBaselines"]["Resource"] == [
        f"{s3}/data-capture/{ENDPOINT}/*",
        f"{s3}/pipelines/{PIPELINE}/*",
    ]
    assert job["ReadWriteReports"]["Resource"] == [f"{s3}/drift-reports/{ENDPOINT}/*"]
    writes = [s for s in job.values() if "s3:PutObject" in s["Action"]]
    assert writes == [job["ReadWriteReports"]]
    assert job["StackKey"]["Resource"] == [KEY_ARN]
    assert job["PullTrainingImage"]["Resource"] == [REPOSITORY_ARN]


def test_the_job_role_publishes_metrics_only_in_its_namespace(plan: StackPlan) -> None:
    job = sids(plan, f"{PREFIX}-drift-job-policy")
    metrics = job["DriftMetricsOnly"]
    assert metrics["Action"] == ["cloudwatch:PutMetricData"]
    assert metrics["Condition"] == {"StringEquals": {"cloudwatch:namespace": NAMESPACE}}
    # `*` only where the action has no resource-level form, and then with a condition.
    wildcard = {sid for sid, s in job.items() if "*" in s["Resource"]}
    assert wildcard == {"DriftMetricsOnly", "EcrLogin"}
    assert job["EcrLogin"]["Action"] == ["ecr:GetAuthorizationToken"]


def test_the_scheduler_and_trigger_roles_do_one_thing_each(plan: StackPlan) -> None:
    scheduler = sids(plan, f"{PREFIX}-drift-scheduler-policy")
    sagemaker = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}"
    assert scheduler["CreateDriftJobsOnly"]["Resource"] == [
        f"{sagemaker}:processing-job/{PREFIX}-drift-*"
    ]
    assert scheduler["PassJobRoleToSageMaker"]["Resource"] == [
        f"arn:aws:iam::{ACCOUNT}:role/{PREFIX}-drift-monitor"
    ]
    assert scheduler["PassJobRoleToSageMaker"]["Condition"] == {
        "StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}
    }
    trigger = sids(plan, f"{PREFIX}-drift-trigger-policy")
    assert trigger == {
        "ListAndStartOnlyThisPipeline": {
            "Sid": "ListAndStartOnlyThisPipeline",
            "Effect": "Allow",
            "Action": ["sagemaker:ListPipelineExecutions", "sagemaker:StartPipelineExecution"],
            "Resource": [PIPELINE_ARN],
        }
    }


def test_every_role_trusts_one_service_and_carries_the_boundary(plan: StackPlan) -> None:
    roles = {r.inputs["name"]: r for r in plan.of_type("aws:iam/role:Role")}
    services = {
        name: statements(policy_document(role, "assumeRolePolicy"))[0]["Principal"]["Service"]
        for name, role in roles.items()
    }
    assert services == {
        f"{PREFIX}-drift-monitor": ["sagemaker.amazonaws.com"],
        f"{PREFIX}-drift-scheduler": ["scheduler.amazonaws.com"],
        f"{PREFIX}-drift-trigger": ["states.amazonaws.com"],
        f"{PREFIX}-drift-events": ["events.amazonaws.com"],
    }
    assert {r.inputs["permissionsBoundary"] for r in roles.values()} == {
        f"arn:aws:iam::{ACCOUNT}:policy/{PREFIX}-workload-boundary"
    }


def test_the_alarm_watches_what_the_job_publishes() -> None:
    from ml.monitoring import metrics  # noqa: PLC0415

    assert (DRIFT_SCORE_METRIC, METRIC_DIMENSION) == (metrics.DRIFT_SCORE, metrics.DIMENSION)


def test_parliament_finds_no_escalation_or_malformed_statement(plan: StackPlan) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        from tests.security.test_parliament import ALLOWED, findings_of  # noqa: PLC0415

    found = findings_of({"component:drift-monitor": plan})
    unexplained = [f for f in found if not any(a.matches(f) for a in ALLOWED)]
    assert not unexplained, "\n".join(map(str, unexplained))


def _documents(resources: tuple[CapturedResource, ...]) -> int:
    return sum(1 for r in resources if r.type in (ROLE_POLICY, "aws:iam/role:Role"))


def test_parliament_sees_every_document_of_the_component(plan: StackPlan) -> None:
    # Four roles with a trust policy and an inline policy each: eight documents checked.
    assert _documents(plan.resources) == 8


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"report_prefix": "drift-reports"}, "report_prefix must be a key prefix ending in '/'"),
        ({"name_prefix": "x" * 30}, "too long for a processing job name"),
        ({"schedule_expression": "every day"}, "schedule_expression must be cron"),
        ({"alarm_period_seconds": 90}, "alarm_period_seconds must be a multiple of 60"),
        ({"drift_threshold": 0.0}, "drift_threshold must be in (0, 1], got 0.0"),
        ({"drift_threshold": 1.5}, "drift_threshold must be in (0, 1], got 1.5"),
        ({"min_records": 0}, "min_records must be >= 1, got 0"),
        ({"extra_environment": {MonitorEnv.END_TIME: "x"}}, "may not override"),
    ],
)
def test_bad_args_fail_with_the_field_named(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match="DriftMonitorArgs: ") as raised:
        monitor_args(**changes)
    assert message in str(raised.value)
