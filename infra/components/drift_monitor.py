"""Drift monitoring of one endpoint, and (where allowed) retraining when drift is measured.

Three parts:

1. **The monitor job.** An EventBridge Scheduler schedule calls SageMaker
   `CreateProcessingJob` directly (universal target), running the ops training image
   pinned by digest in its `monitor` mode. The job reads the endpoint's data capture
   since its last run, compares it with the served package's baseline, writes a report
   under this stack's report prefix and publishes `DriftScore` and `RequestsAnalysed` to
   CloudWatch (dimension `EndpointName`) in this stack's namespace; with too little
   traffic it publishes no score ("insufficient data").

   Why not a SageMaker Model Monitor `MonitoringSchedule`: the AWS guide marks Model
   Monitor as no longer open to new customers, and this project deploys into fresh
   accounts; a monitoring schedule runs the very same processing job underneath
   ("Model Monitor ultimately kicks off processing jobs"), so creating it ourselves
   loses nothing a custom container would use, and keeps the container contract in our
   hands. The job name carries `<aws.scheduler.execution-id>` (unique per invocation)
   and the run's end of window is `<aws.scheduler.scheduled-time>`, both filled in by
   Scheduler. The request is built from names known at preview time, so the policy
   pack's image rule can read the image in prod's first preview.

2. **The alarm.** `DriftScore` (maximum over one schedule period) above the threshold
   is ALARM; missing data is not breaching, so a run without enough traffic never alarms.

3. **Drift retraining** (`retrain_on_drift`). An EventBridge rule on the alarm's change to
   ALARM starts a small Step Functions state machine (no Lambda, so nothing runs that is
   not an ops image): it lists the pipeline's newest executions, ends without starting
   one when an execution is Executing or Stopping, or when a drift-triggered execution
   (display name `drift-...`) started within `retrain_min_interval_seconds`, and
   otherwise starts the pipeline. The event's ID is the start's ClientRequestToken, so a
   duplicate delivery of one alarm change starts nothing twice; two different changes
   are at least one alarm period apart, far longer than the list-then-start window. The
   trained model then goes through the pipeline's own approval and the deployer.

IAM: the job role reads only this endpoint's capture prefix and the pipeline's output
prefix (baselines), reads and writes only this endpoint's report prefix, uses the stack
key, describes only this endpoint, its configs, models and the stack's model packages,
and may PutMetricData only in its namespace. The scheduler role may only create
`<prefix>-drift-*` processing jobs and pass the job role to SageMaker; the state machine
may only list and start this pipeline; the rule's role may only start this state machine.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.components.secure_bucket import DATA_CAPTURE_PREFIX, PIPELINE_OUTPUT_PREFIX
from infra.components.service_role import service_role
from infra.iam import ECR_PULL_ACTIONS, Statement, in_account
from infra.settings import schedule_problem
from ml import limits
from ml.deployer import naming

CREATE_PROCESSING_JOB_TARGET = "arn:aws:scheduler:::aws-sdk:sagemaker:createProcessingJob"
LIST_EXECUTIONS_RESOURCE = "arn:aws:states:::aws-sdk:sagemaker:listPipelineExecutions"
START_EXECUTION_RESOURCE = "arn:aws:states:::aws-sdk:sagemaker:startPipelineExecution"
EXECUTION_ID = "<aws.scheduler.execution-id>"
SCHEDULED_TIME = "<aws.scheduler.scheduled-time>"
EXECUTION_ID_ROOM = 32
"""Characters kept free for the execution ID in a job name (Scheduler's are 16)."""
MAX_JOB_NAME = 63

DRIFT_SCORE_METRIC = "DriftScore"
METRIC_DIMENSION = "EndpointName"
"""The job's metric and dimension (`ml.monitoring.metrics`; a test keeps them equal)."""
DRIFT_DISPLAY_PREFIX = "drift-"
"""Display name prefix of drift-triggered pipeline executions; the rate limit counts these."""
LISTED_EXECUTIONS = 100
"""Newest executions the trigger looks at (ListPipelineExecutions' maximum page)."""
REPORTS_PREFIX = "drift-reports/"
"""Default key prefix of the monitor's reports in the artifacts bucket (per endpoint below)."""
PROCESSING_LOG_GROUP = "/aws/sagemaker/ProcessingJobs"


class MonitorEnv:
    """Environment variables the monitor container is given: the names of SageMaker Model
    Monitor's container contract (`ml/monitoring/job.py` reads them) plus `DRIFT_*`."""

    ENDPOINT_NAME = "sagemaker_endpoint_name"
    DATASET_SOURCE = "dataset_source"
    """Here an `s3://` URI, the endpoint's capture (SageMaker adds <variant>/yyyy/mm/dd/hh/):
    no Model Monitor downloads the window, so the job lists and reads those hours itself."""
    OUTPUT_PATH = "output_path"
    """Local directory the job writes its report and plot to; uploaded at the end of the job
    to `<report prefix><endpoint>/<scheduled time>/`."""
    END_TIME = "end_time"
    """End of the window, ISO 8601 UTC (the schedule's scheduled time); no `start_time`:"""
    MAX_LOOKBACK_SECONDS = "DRIFT_MAX_LOOKBACK_SECONDS"
    """the window starts at the previous report's end, never earlier than this before end."""
    REPORT_S3_URI = "DRIFT_REPORT_S3_URI"
    """Where earlier runs' reports are (to find the previous run's end)."""
    THRESHOLD = "DRIFT_THRESHOLD"
    MIN_RECORDS = "DRIFT_MIN_NOTES"
    METRIC_NAMESPACE = "DRIFT_METRICS_NAMESPACE"
    REGION = "AWS_DEFAULT_REGION"


OUTPUT_LOCAL_PATH = "/opt/ml/processing/output"


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(f"DriftMonitorArgs: {message}")


@dataclass(frozen=True)
class DriftMonitorArgs:
    """Where the monitor runs and what it watches. Names and ARNs are plain strings known at
    preview time, so the job request (and the image in it) is known in every preview."""

    name_prefix: str
    """`<project>-<stack>`; every physical name starts with it."""
    account: str
    region: str
    endpoint_name: str
    model_package_group_name: str
    pipeline_name: str
    pipeline_arn: pulumi.Input[str]
    artifacts_bucket: str
    """Bucket holding the data capture, the pipeline outputs (baselines) and the reports."""
    kms_key_arn: str
    image_uri: str
    """The ops training image pinned by digest (`<ops>.dkr.ecr.../training@sha256:...`)."""
    ops_repository_arn: str
    """The ops ECR repository of that image (pull permission)."""
    metric_namespace: str
    """CloudWatch namespace the job publishes in, e.g. `promote-code/prod/drift`."""
    tags: Mapping[str, str]
    instance_type: str = "ml.m5.large"
    volume_size_gb: int = 30
    max_runtime_seconds: int = 3600
    schedule_expression: str = "rate(1 day)"
    timezone: str = "UTC"
    drift_threshold: float = limits.DRIFT_THRESHOLD.default
    """DriftScore above this is ALARM (the job gets it too, for the report's verdict)."""
    min_records: int = limits.DRIFT_MIN_RECORDS.default
    """Fewer captured requests in a window than this: "insufficient data", no score."""
    max_lookback_seconds: int = 7 * 86400
    alarm_period_seconds: int = 86400
    """Should match the schedule's period: one score per period is expected."""
    capture_prefix: str = DATA_CAPTURE_PREFIX
    report_prefix: str = REPORTS_PREFIX
    baseline_prefixes: Sequence[str] | None = None
    """Key prefixes the job may read baselines from; default: this pipeline's outputs."""
    container_entrypoint: Sequence[str] = ()
    """Empty: the image's ENTRYPOINT (ml/images/training/entrypoint.sh)."""
    container_arguments: Sequence[str] = ("monitor",)
    extra_environment: Mapping[str, str] = field(default_factory=dict)
    retrain_on_drift: bool = False
    retrain_min_interval_seconds: int = 7 * 86400
    """At most one drift-triggered pipeline execution starts within this many seconds."""
    alarm_actions: Sequence[pulumi.Input[str]] = ()
    permissions_boundary: str | None = None
    partition: str = "aws"

    def __post_init__(self) -> None:
        for key in ("capture_prefix", "report_prefix"):
            value = getattr(self, key)
            _require(
                value.endswith("/") and not value.startswith("/"),
                f"{key} must be a key prefix ending in '/' (e.g. 'data-capture/'), got {value!r}",
            )
        for prefix in self.baseline_prefixes or ():
            _require(
                prefix.endswith("/") and not prefix.startswith("/"),
                f"baseline_prefixes entries must end in '/', got {prefix!r}",
            )
        _require(
            len(self.job_name_prefix) <= MAX_JOB_NAME - EXECUTION_ID_ROOM,
            f"name_prefix {self.name_prefix!r} is too long for a processing job name; "
            f"keep it under {MAX_JOB_NAME - EXECUTION_ID_ROOM - len('-drift-')} characters",
        )
        problem = schedule_problem(self.schedule_expression)
        _require(problem is None, f"schedule_expression {problem}")
        # The job refuses what ml/limits.py refuses: a bad value fails here, not in every run.
        for problem in (
            limits.DRIFT_THRESHOLD.problem("drift_threshold", self.drift_threshold),
            limits.DRIFT_MIN_RECORDS.problem("min_records", self.min_records),
        ):
            _require(problem is None, str(problem))
        # CloudWatch alarm periods are multiples of 60 s up to one day for a standard alarm.
        _require(
            self.alarm_period_seconds % 60 == 0 and 60 <= self.alarm_period_seconds <= 86400,
            f"alarm_period_seconds must be a multiple of 60 from 60 to 86400, "
            f"got {self.alarm_period_seconds}",
        )
        _require(
            self.retrain_min_interval_seconds >= 60,
            f"retrain_min_interval_seconds must be >= 60, got {self.retrain_min_interval_seconds}",
        )
        _require(
            self.max_lookback_seconds >= 60,
            f"max_lookback_seconds must be >= 60, got {self.max_lookback_seconds}",
        )
        container_environment(self)  # raises on an override of a contract variable
        _require(
            bool(self.container_arguments) or bool(self.container_entrypoint),
            "set container_arguments (e.g. ['monitor']) or container_entrypoint",
        )

    # Derived names --------------------------------------------------------------------
    @property
    def job_name_prefix(self) -> str:
        return f"{self.name_prefix}-drift-"

    @property
    def job_role_name(self) -> str:
        return f"{self.name_prefix}-drift-monitor"

    @property
    def job_role_arn(self) -> str:
        return f"arn:{self.partition}:iam::{self.account}:role/{self.job_role_name}"

    @property
    def alarm_name(self) -> str:
        return f"{self.endpoint_name}-drift"

    @property
    def capture_key_prefix(self) -> str:
        """Where this endpoint's capture lands (SageMaker adds the endpoint name)."""
        return f"{self.capture_prefix}{self.endpoint_name}/"

    @property
    def report_key_prefix(self) -> str:
        return f"{self.report_prefix}{self.endpoint_name}/"

    @property
    def baseline_key_prefixes(self) -> tuple[str, ...]:
        if self.baseline_prefixes is not None:
            return tuple(self.baseline_prefixes)
        return (f"{PIPELINE_OUTPUT_PREFIX}{self.pipeline_name}/",)

    def s3_uri(self, key_prefix: str) -> str:
        return f"s3://{self.artifacts_bucket}/{key_prefix}"


def container_environment(args: DriftMonitorArgs) -> dict[str, str]:
    """What the monitor container is told (see MonitorEnv), plus `extra_environment`."""
    environment = {
        MonitorEnv.ENDPOINT_NAME: args.endpoint_name,
        MonitorEnv.DATASET_SOURCE: args.s3_uri(args.capture_key_prefix),
        MonitorEnv.OUTPUT_PATH: OUTPUT_LOCAL_PATH,
        MonitorEnv.END_TIME: SCHEDULED_TIME,
        MonitorEnv.MAX_LOOKBACK_SECONDS: str(args.max_lookback_seconds),
        MonitorEnv.REPORT_S3_URI: args.s3_uri(args.report_key_prefix),
        MonitorEnv.THRESHOLD: repr(float(args.drift_threshold)),
        MonitorEnv.MIN_RECORDS: str(args.min_records),
        MonitorEnv.METRIC_NAMESPACE: args.metric_namespace,
        MonitorEnv.REGION: args.region,
    }
    overlap = sorted(set(environment) & set(args.extra_environment))
    _require(not overlap, f"extra_environment may not override {overlap}")
    return {**environment, **args.extra_environment}


def processing_job_request(args: DriftMonitorArgs) -> dict[str, Any]:
    """The CreateProcessingJob request Scheduler sends on every run (botocore's shape)."""
    app: dict[str, Any] = {"ImageUri": args.image_uri}
    if args.container_entrypoint:
        app["ContainerEntrypoint"] = list(args.container_entrypoint)
    if args.container_arguments:
        app["ContainerArguments"] = list(args.container_arguments)
    return {
        "ProcessingJobName": f"{args.job_name_prefix}{EXECUTION_ID}",
        "RoleArn": args.job_role_arn,
        "AppSpecification": app,
        "Environment": container_environment(args),
        "ProcessingResources": {
            "ClusterConfig": {
                "InstanceCount": 1,
                "InstanceType": args.instance_type,
                "VolumeSizeInGB": args.volume_size_gb,
                "VolumeKmsKeyId": args.kms_key_arn,
            }
        },
        "ProcessingOutputConfig": {
            "Outputs": [
                {
                    "OutputName": "report",
                    "S3Output": {
                        # One folder per run, named by its scheduled time (sortable).
                        "S3Uri": f"{args.s3_uri(args.report_key_prefix)}{SCHEDULED_TIME}",
                        "LocalPath": OUTPUT_LOCAL_PATH,
                        "S3UploadMode": "EndOfJob",
                    },
                }
            ],
            "KmsKeyId": args.kms_key_arn,
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": args.max_runtime_seconds},
        # The job reads S3 and calls SageMaker and CloudWatch itself: no network isolation.
        "NetworkConfig": {
            "EnableInterContainerTrafficEncryption": True,
            "EnableNetworkIsolation": False,
        },
        "Tags": [{"Key": key, "Value": value} for key, value in sorted(args.tags.items())],
    }


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


def job_statements(args: DriftMonitorArgs) -> list[Statement]:
    """The monitor job's role: its capture, baselines, reports, key, image, logs, metrics."""
    s3 = f"arn:{args.partition}:s3:::{args.artifacts_bucket}"
    sagemaker = f"arn:{args.partition}:sagemaker:{args.region}:{args.account}"
    logs = f"arn:{args.partition}:logs:{args.region}:{args.account}:log-group:"
    pattern = naming.resource_pattern(args.endpoint_name)
    group = args.model_package_group_name
    return [
        Statement(
            sid="ListCaptureAndReports",
            actions=["s3:ListBucket"],
            resources=[s3],
            conditions={
                **in_account(args.account),
                "StringLike": {
                    "s3:prefix": [f"{args.capture_key_prefix}*", f"{args.report_key_prefix}*"]
                },
            },
        ),
        Statement(
            sid="ReadCaptureAndBaselines",
            actions=["s3:GetObject"],
            resources=[
                f"{s3}/{args.capture_key_prefix}*",
                *(f"{s3}/{prefix}*" for prefix in args.baseline_key_prefixes),
            ],
            conditions=in_account(args.account),
        ),
        Statement(
            sid="ReadWriteReports",
            actions=["s3:AbortMultipartUpload", "s3:GetObject", "s3:PutObject"],
            resources=[f"{s3}/{args.report_key_prefix}*"],
            conditions=in_account(args.account),
        ),
        Statement(
            sid="StackKey",
            actions=["kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKey"],
            resources=[args.kms_key_arn],
        ),
        # SageMaker encrypts the job's volume with the stack key through a grant.
        Statement(
            sid="GrantKeyToSageMaker",
            actions=["kms:CreateGrant"],
            resources=[args.kms_key_arn],
            conditions={"Bool": {"kms:GrantIsForAWSResource": "true"}},
        ),
        Statement(
            sid="ServedModel",
            actions=[
                "sagemaker:DescribeEndpoint",
                "sagemaker:DescribeEndpointConfig",
                "sagemaker:DescribeModel",
            ],
            resources=[
                f"{sagemaker}:endpoint/{args.endpoint_name.lower()}",
                f"{sagemaker}:endpoint-config/{pattern}",
                f"{sagemaker}:model/{pattern}",
            ],
        ),
        Statement(
            sid="ServedPackageBaseline",
            actions=["sagemaker:DescribeModelPackage"],
            resources=[
                f"{sagemaker}:model-package-group/{group.lower()}",
                f"{sagemaker}:model-package/{group.lower()}/*",
            ],
        ),
        Statement(
            sid="PullTrainingImage", actions=ECR_PULL_ACTIONS, resources=[args.ops_repository_arn]
        ),
        # GetAuthorizationToken has no resource-level form.
        Statement(sid="EcrLogin", actions=["ecr:GetAuthorizationToken"], resources=["*"]),
        Statement(
            sid="JobLogs",
            actions=[
                "logs:CreateLogGroup",
                "logs:CreateLogStream",
                "logs:DescribeLogStreams",
                "logs:PutLogEvents",
            ],
            resources=[
                f"{logs}{PROCESSING_LOG_GROUP}",
                f"{logs}{PROCESSING_LOG_GROUP}:log-stream:{args.job_name_prefix}*",
            ],
        ),
        # PutMetricData has no resource-level form; the namespace condition scopes it.
        Statement(
            sid="DriftMetricsOnly",
            actions=["cloudwatch:PutMetricData"],
            resources=["*"],
            conditions={"StringEquals": {"cloudwatch:namespace": args.metric_namespace}},
        ),
    ]


def scheduler_statements(args: DriftMonitorArgs) -> list[Statement]:
    sagemaker = f"arn:{args.partition}:sagemaker:{args.region}:{args.account}"
    return [
        Statement(
            sid="CreateDriftJobsOnly",
            actions=["sagemaker:AddTags", "sagemaker:CreateProcessingJob"],
            resources=[f"{sagemaker}:processing-job/{args.job_name_prefix.lower()}*"],
        ),
        Statement(
            sid="PassJobRoleToSageMaker",
            actions=["iam:PassRole"],
            resources=[args.job_role_arn],
            conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
        ),
    ]


def trigger_statements(pipeline_arn: pulumi.Input[str]) -> list[Statement]:
    return [
        Statement(
            sid="ListAndStartOnlyThisPipeline",
            actions=["sagemaker:ListPipelineExecutions", "sagemaker:StartPipelineExecution"],
            resources=[pipeline_arn],
        )
    ]


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
        child = pulumi.ResourceOptions(parent=self)
        tags = dict(args.tags)
        self.report_s3_uri = args.s3_uri(args.report_key_prefix)

        job = service_role(
            f"{name}-job",
            service="sagemaker.amazonaws.com",
            account=args.account,
            statements=job_statements(args),
            tags=tags,
            opts=child,
            role_name=args.job_role_name,
            description=f"Drift monitor job of {args.endpoint_name}",
            permissions_boundary=args.permissions_boundary,
        )
        self.job_role = job.role
        scheduler = service_role(
            f"{name}-scheduler",
            service="scheduler.amazonaws.com",
            account=args.account,
            statements=scheduler_statements(args),
            tags=tags,
            opts=child,
            role_name=f"{args.name_prefix}-drift-scheduler",
            description=f"Starts the drift monitor job of {args.endpoint_name}",
            permissions_boundary=args.permissions_boundary,
        )
        self.schedule = aws.scheduler.Schedule(
            f"{name}-schedule",
            name=f"{args.name_prefix}-drift-monitor",
            description=f"Drift monitor of {args.endpoint_name}",
            schedule_expression=args.schedule_expression,
            schedule_expression_timezone=args.timezone,
            flexible_time_window={"mode": "OFF"},
            state="ENABLED",
            target={
                "arn": CREATE_PROCESSING_JOB_TARGET,
                "role_arn": scheduler.role.arn,
                "input": json.dumps(processing_job_request(args), sort_keys=True),
                "retry_policy": {"maximum_retry_attempts": 2},
            },
            # The job role must exist (and be allowed to run) before the first run passes it.
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[job.role, job.policy, scheduler.policy]
            ),
        )
        self.alarm = aws.cloudwatch.MetricAlarm(
            f"{name}-alarm",
            name=args.alarm_name,
            alarm_description=(
                f"Drift of {args.endpoint_name} above {args.drift_threshold}"
                + (": starts drift retraining" if args.retrain_on_drift else "")
            ),
            namespace=args.metric_namespace,
            metric_name=DRIFT_SCORE_METRIC,
            dimensions={METRIC_DIMENSION: args.endpoint_name},
            statistic="Maximum",
            period=args.alarm_period_seconds,
            evaluation_periods=1,
            threshold=args.drift_threshold,
            comparison_operator="GreaterThanThreshold",
            # "Insufficient data" publishes no score: never a reason to retrain.
            treat_missing_data="notBreaching",
            alarm_actions=list(args.alarm_actions),
            tags=tags,
            opts=child,
        )
        self.rule = None
        self.state_machine = None
        self.state_machine_arn = None
        if args.retrain_on_drift:
            self._retraining(name, args, tags, child)

        self.register_outputs(
            {
                "schedule_name": self.schedule.name,
                "alarm_name": self.alarm.name,
                "report_s3_uri": self.report_s3_uri,
                "state_machine_arn": self.state_machine_arn,
            }
        )

    def _retraining(
        self,
        name: str,
        args: DriftMonitorArgs,
        tags: dict[str, str],
        child: pulumi.ResourceOptions,
    ) -> None:
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
            opts=pulumi.ResourceOptions(parent=self, depends_on=[machine_role.policy]),
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
            opts=pulumi.ResourceOptions(parent=self, depends_on=[machine, events.policy]),
        )
        self.rule = rule
        self.state_machine = machine
        self.state_machine_arn = machine_arn
