"""The monitoring job as the drift schedule starts it, run locally.

`MonitorTarget` is where the monitor runs: the account, the region and the
CreateProcessingJob request the schedule sends (`plan_target`: the planned schedule's
own request, as `promote monitor` uses it). `run_monitor_job` runs one scheduled run with
that request's environment: `dataset_source` the capture's S3 URI, `end_time` the
scheduled time, the image's `monitor` entrypoint in its own process group; its output is
uploaded where the request's `S3Output` says, which is where the next run finds the
previous report.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from infra.components import drift_monitor as component
from ml.monitoring.report import REPORT_FILE
from offline.aws import LocalAws
from offline.pipeline.container import local_images, read_image
from offline.pipeline.processes import run_job
from offline.plan.capture import StackPlan

JOB_TIMEOUT_SECONDS = 300.0


@dataclass(frozen=True)
class MonitorTarget:
    """Where the monitor runs: the account, the endpoint, and the CreateProcessingJob
    request the schedule sends (Scheduler's placeholders still in it)."""

    account: str
    region: str
    request: dict[str, Any]

    @property
    def environment(self) -> dict[str, str]:
        return dict(self.request["Environment"])

    @property
    def endpoint(self) -> str:
        return self.environment[component.MonitorEnv.ENDPOINT_NAME]

    @property
    def namespace(self) -> str:
        return self.environment[component.MonitorEnv.METRIC_NAMESPACE]

    @property
    def capture(self) -> tuple[str, str]:
        """(bucket, key prefix) of the endpoint's capture (`dataset_source`)."""
        uri = self.environment[component.MonitorEnv.DATASET_SOURCE]
        bucket, _, prefix = uri.removeprefix("s3://").partition("/")
        return bucket, prefix

    @property
    def bucket(self) -> str:
        return self.capture[0]

    def output_uri(self, scheduled: str) -> str:
        """Where the job's output goes for the run scheduled at `scheduled`."""
        (output,) = self.request["ProcessingOutputConfig"]["Outputs"]
        uri: str = output["S3Output"]["S3Uri"]
        return uri.replace(component.SCHEDULED_TIME, scheduled).rstrip("/") + "/"


def plan_target(plan: StackPlan) -> MonitorTarget:
    """The planned drift schedule's request (`aws:scheduler/schedule:Schedule` target)."""
    for schedule in plan.of_type("aws:scheduler/schedule:Schedule"):
        target = schedule.inputs.get("target") or {}
        if target.get("arn") != component.CREATE_PROCESSING_JOB_TARGET:
            continue
        request = json.loads(target["input"])
        if component.MonitorEnv.DATASET_SOURCE in request.get("Environment", {}):
            return MonitorTarget(str(plan.outputs["account"]), str(plan.outputs["region"]), request)
    raise ValueError(
        f"the {plan.stack} plan has no drift monitor schedule: set monitoring.enabled: true "
        f"in Pulumi.{plan.stack}.yaml and run `promote plan --json` again"
    )


def scheduled_time(when: datetime) -> str:
    """`<aws.scheduler.scheduled-time>` as Scheduler fills it in (UTC, seconds, `Z`)."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def run_monitor_job(
    aws: LocalAws,
    target: MonitorTarget,
    end: datetime,
    workdir: Path,
    *,
    extra_env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """One scheduled run at `end`: the request's environment, the image's `monitor`
    entrypoint, then the EndOfJob upload of the output to the request's S3Output."""
    output = (workdir / "output").resolve()  # stands for /opt/ml/processing/output
    output.mkdir(parents=True, exist_ok=True)
    image = read_image(local_images()["training"])
    command = image.command(*target.request["AppSpecification"]["ContainerArguments"])
    if command[0] in ("python", "python3"):
        command[0] = sys.executable  # the local interpreter stands in for the image's
    scheduled = scheduled_time(end)
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    environment |= {
        key: value.replace(component.SCHEDULED_TIME, scheduled)
        for key, value in target.environment.items()
    }
    environment |= {
        component.MonitorEnv.OUTPUT_PATH: str(output),
        **(extra_env or {}),
        **aws.environment(),
    }
    log_path = workdir / "monitor.log"
    with log_path.open("w") as log:
        status = run_job(
            command, env=environment, cwd=workdir, log=log, timeout=JOB_TIMEOUT_SECONDS
        )
    if status != 0:
        raise RuntimeError(f"the monitoring job exited {status}: {log_path.read_text()[-500:]}")
    uri = target.output_uri(scheduled)
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    s3 = aws.client("s3")
    for path in sorted(output.iterdir()):
        s3.put_object(Bucket=bucket, Key=f"{prefix}{path.name}", Body=path.read_bytes())
    document: dict[str, Any] = json.loads((output / REPORT_FILE).read_text())
    document["s3_prefix"] = uri.rstrip("/")
    return document
