"""What a drift monitor is given, and what its container is told.

`DriftMonitorArgs` holds names and ARNs known at preview time (so the job request, and the
image in it, is known in every preview), checks them on construction (a bad value fails
here, not in every run) and derives the physical names. `MonitorEnv` and
`container_environment` are the container contract: the environment variables
`ml/monitoring/job.py` reads.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi

from infra.components.secure_bucket import DATA_CAPTURE_PREFIX, PIPELINE_OUTPUT_PREFIX
from infra.settings import schedule_problem
from ml import limits

EXECUTION_ID = "<aws.scheduler.execution-id>"
SCHEDULED_TIME = "<aws.scheduler.scheduled-time>"
EXECUTION_ID_ROOM = 32
"""Characters kept free for the execution ID in a job name (Scheduler's are 16)."""
MAX_JOB_NAME = 63

REPORTS_PREFIX = "drift-reports/"
"""Default key prefix of the monitor's reports in the artifacts bucket (per endpoint below)."""


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
