"""The drift monitoring job: `docker run <training image> monitor` (`python -m ml.monitoring.job`).

Started as a plain SageMaker processing job by EventBridge Scheduler
(infra/components/drift_monitor/: no Model Monitor schedule, which AWS no longer opens to
new customers), with these variables in its environment (`MonitorEnv` there):

- `sagemaker_endpoint_name`: the endpoint;
- `dataset_source`: the endpoint's capture, `s3://<bucket>/<capture prefix>/<endpoint>/`
  (SageMaker writes `<variant>/yyyy/mm/dd/hh/*.jsonl` below it). The job lists and reads
  only the hour folders of its window, plus the hour before it (a file is filed under the
  hour it was started in, so its later records may fall into the next hour), a batch at a
  time into scratch space, and keeps the records whose `inferenceTime` is in the window;
- `end_time`: the window's end, ISO 8601 UTC (the schedule's scheduled time);
- `DRIFT_REPORT_S3_URI`: where the runs' reports are (`<uri><scheduled time>/drift_report.json`):
  the window starts at the end of the newest report before `end_time`,
- `DRIFT_MAX_LOOKBACK_SECONDS`: and never earlier than this before `end_time` (the first run,
  or after a long pause);
- `output_path`: the local directory uploaded, when the job ends, next to the earlier reports;
- `DRIFT_THRESHOLD`, `DRIFT_MIN_NOTES` (defaults: ml/limits.py `DRIFT_THRESHOLD`,
  `DRIFT_MIN_RECORDS`, the stack settings' defaults);
- `DRIFT_METRICS_NAMESPACE`: the CloudWatch namespace to publish to (unset: no metrics);
- `AWS_DEFAULT_REGION` for boto3.

A local folder as `dataset_source` (every capture file below it, records filtered by the
optional `start_time` and `end_time`) serves tests and benchmarks; no `start_time` in the
S3 form, where the reports decide it.

`DRIFT_BASELINE_URI` (optional, `s3://...` or a path) names the baseline to compare with.
Unset, the job asks SageMaker which package the endpoint serves (DescribeEndpoint ->
DescribeEndpointConfig -> DescribeModel -> DescribeModelPackage) and reads that package's
`DriftCheckBaselines.ModelDataQuality.Statistics`, so a deployment never leaves the
monitor comparing with the previous model's baseline.

It writes `drift_report.json` (with the window it analysed, which the next run starts from)
and `drift_report.png` to `output_path` and publishes the metrics (`ml.monitoring.metrics`).
Exit status 0 whatever the verdict (drift is a metric for the alarm, not a failed job), 2
for a configuration or input problem (one line naming the variable, file or resource), 3
for an internal error.

The environment is read and checked by `ml.monitoring.config`; the window and the capture
objects in it are found in S3 by `ml.monitoring.window`. This module runs the job: the
baseline, the analysis, the report, the metrics and the exit status.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ml.monitoring import baseline as baselines
from ml.monitoring import capture, metrics, report
from ml.monitoring.analysis import analyse
from ml.monitoring.config import MonitorConfig, MonitorError
from ml.monitoring.window import analyse_s3, split_s3_uri, window_objects, window_of

FAILURE_MESSAGE = Path("/opt/ml/output/message")
"""Where a processing job's failure reason goes (shown as its FailureReason)."""


def served_baseline(sagemaker: Any, endpoint: str) -> tuple[str, str]:
    """(model package ARN, drift baseline URI) of the package `endpoint` serves now."""
    try:
        config_name = sagemaker.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"]
        variants = sagemaker.describe_endpoint_config(EndpointConfigName=config_name)[
            "ProductionVariants"
        ]
        model = sagemaker.describe_model(ModelName=variants[0]["ModelName"])
    except sagemaker.exceptions.ClientError as error:
        raise MonitorError(f"endpoint {endpoint}: {error}") from None
    container = model.get("PrimaryContainer") or (model.get("Containers") or [{}])[0]
    package = container.get("ModelPackageName")
    if not package:
        raise MonitorError(
            f"endpoint {endpoint} serves model {model['ModelName']}, which is not a model "
            "package: set DRIFT_BASELINE_URI"
        )
    described = sagemaker.describe_model_package(ModelPackageName=package)
    source = (
        described.get("DriftCheckBaselines", {})
        .get("ModelDataQuality", {})
        .get("Statistics", {})
        .get("S3Uri")
    )
    if not source:
        raise MonitorError(
            f"model package {package} has no DriftCheckBaselines.ModelDataQuality.Statistics "
            "(registered before drift baselines): retrain it or set DRIFT_BASELINE_URI"
        )
    return str(described.get("ModelPackageArn", package)), str(source)


def fetch_baseline(uri: str, s3: Any, scratch: Path) -> baselines.Baseline:
    """The baseline at `uri` (`s3://bucket/key` or a local path)."""
    if not uri.startswith("s3://"):
        return baselines.load(Path(uri))
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    target = scratch / baselines.BASELINE_FILE
    try:
        s3.download_file(bucket, key, str(target))
    except Exception as error:  # botocore raises several unrelated types here
        raise MonitorError(f"cannot read the drift baseline {uri}: {error}") from None
    return replace(baselines.load(target), source=uri)


def run(config: MonitorConfig, clients: Mapping[str, Any]) -> dict[str, Any]:
    """Analyse the window's capture, write the report and plot, publish the metrics."""
    started = time.perf_counter()
    package = None
    uri = config.baseline_uri
    if uri is None:
        package, uri = served_baseline(clients["sagemaker"], config.endpoint)
    with tempfile.TemporaryDirectory() as scratch:
        s3 = clients["s3"] if uri.startswith("s3://") else None
        baseline = fetch_baseline(uri, s3, Path(scratch))
        source: dict[str, Any] = {"source": config.dataset_source}
        start: datetime | None
        end: datetime | None
        if config.from_s3:
            s3 = clients["s3"]
            window = window_of(s3, config)
            objects, hours = window_objects(s3, config.dataset_source, window)
            bucket, _ = split_s3_uri(config.dataset_source)
            accumulator, stats = analyse_s3(
                s3, bucket, objects, baseline, window=window, scratch=Path(scratch)
            )
            start, end = window.start, window.end
            source |= {"hour_folders_listed": hours, "previous_report": window.previous_report}
        else:
            files = capture.capture_files(Path(config.dataset_source))
            accumulator, stats = analyse(files, baseline, config.start, config.end)
            start, end = config.start, config.end
    result = accumulator.result(config.threshold, config.min_notes)
    document: dict[str, Any] = {
        "endpoint": config.endpoint,
        "window": {
            "start": _iso(start) if start else None,
            "end": _iso(end) if end else None,
        },
        "baseline_uri": uri,
        "model_package_arn": package,
        "capture": {
            **source,
            "files": stats.files,
            "records": stats.records,
            "requests_analysed": stats.requests,
            "skipped": dict(sorted(stats.skipped.items())),
        },
        **result.as_dict(),
    }
    written = [
        report.write_json(document, config.output_path),
        report.write_plot(result, config.output_path, config.endpoint),
    ]
    if config.namespace is not None:
        when = end or datetime.now().astimezone()
        data = metrics.metric_data(result, stats.requests, config.endpoint, when)
        metrics.publish(clients["cloudwatch"], config.namespace, data)
    elapsed = time.perf_counter() - started
    score = "n/a" if result.score is None else f"{result.score:.3f}"
    span = f" from {document['window']['start']} to {document['window']['end']}" if end else ""
    print(
        f"{config.endpoint}: {result.verdict} (score {score}, threshold {config.threshold:g}) "
        f"on {result.notes} notes of {stats.requests} requests{span} in {elapsed:.1f} s; "
        f"wrote {', '.join(str(p) for p in written)}"
    )
    return document


def _iso(when: datetime) -> str:
    """UTC with `Z`, as Scheduler writes its scheduled time (milliseconds only if any)."""
    text = when.astimezone(UTC).isoformat(
        timespec="milliseconds" if when.microsecond else "seconds"
    )
    return text.replace("+00:00", "Z")


class AwsClients(Mapping[str, Any]):
    """boto3 clients made on first use: a run that needs no AWS (a local baseline, no
    metrics) needs no region and no credentials."""

    NAMES = ("s3", "sagemaker", "cloudwatch")

    def __init__(self) -> None:
        self._made: dict[str, Any] = {}

    def __getitem__(self, name: str) -> Any:
        if name not in self.NAMES:
            raise KeyError(name)
        if name not in self._made:
            import boto3  # noqa: PLC0415 - only the job talks to AWS; the analysis does not
            from botocore.exceptions import NoRegionError  # noqa: PLC0415

            try:
                self._made[name] = boto3.client(name)
            except NoRegionError:
                raise MonitorError(
                    "no AWS region: set AWS_DEFAULT_REGION in the job definition's Environment"
                ) from None
        return self._made[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.NAMES)

    def __len__(self) -> int:
        return len(self.NAMES)


def main(environ: Mapping[str, str] | None = None) -> int:
    env = os.environ if environ is None else environ
    try:
        config = MonitorConfig.from_environment(env)
        run(config, AwsClients())
    except (
        MonitorError,
        capture.CaptureError,
        baselines.BaselineError,
    ) as error:
        return _fail(f"drift monitor: {error}", 2)
    except Exception as error:  # the one line SageMaker shows as FailureReason
        return _fail(f"drift monitor internal error: {type(error).__name__}: {error}", 3)
    return 0


def _fail(message: str, status: int) -> int:
    print(message, file=sys.stderr)
    if FAILURE_MESSAGE.parent.is_dir():
        FAILURE_MESSAGE.write_text(message[:1000])
    return status


if __name__ == "__main__":
    sys.exit(main())
