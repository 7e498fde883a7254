"""The drift monitoring job: `docker run <training image> monitor` (`python -m ml.monitoring.job`).

SageMaker Model Monitor's bring-your-own-container contract: a monitoring schedule with a
data-quality job definition on this image starts a processing job per period and hands
it, in the environment,

- `dataset_source`: the local directory holding the period's capture files
  (`<endpoint>/<variant>/yyyy/mm/dd/hh/*.jsonl`; it may hold more hours than asked for,
  so records are also filtered by their `inferenceTime`);
- `start_time`, `end_time`: the period (ISO 8601, UTC);
- `output_path`: the local directory uploaded to the job definition's S3 output;
- `sagemaker_endpoint_name`: the endpoint.

The job definition adds (its `Environment`):

- `DRIFT_METRICS_NAMESPACE`: the CloudWatch namespace to publish to (unset: no metrics);
- `DRIFT_THRESHOLD` (default 0.35), `DRIFT_MIN_NOTES` (default 200);
- `DRIFT_BASELINE_URI` (optional, `s3://...` or a path): the baseline to compare with.
  Unset, the job asks SageMaker which package the endpoint serves (DescribeEndpoint ->
  DescribeEndpointConfig -> DescribeModel -> DescribeModelPackage) and reads that
  package's `DriftCheckBaselines.ModelDataQuality.Statistics`, so a deployment never
  leaves the monitor comparing with the previous model's baseline;
- `AWS_DEFAULT_REGION` for boto3.

It writes `drift_report.json` and `drift_report.png` to `output_path` and publishes the
metrics (`ml.monitoring.metrics`). Exit status 0 whatever the verdict (drift is a
metric for the alarm, not a failed job), 2 for a configuration or input problem (one
line naming the variable, file or resource), 3 for an internal error.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from ml.monitoring import baseline as baselines
from ml.monitoring import capture, metrics, report
from ml.monitoring.analysis import analyse
from ml.monitoring.drift import DEFAULT_MIN_NOTES, DEFAULT_THRESHOLD

FAILURE_MESSAGE = Path("/opt/ml/output/message")
"""Where a processing job's failure reason goes (shown as its FailureReason)."""


class MonitorError(ValueError):
    """A configuration or input the job cannot use; the message says which and what to do."""


@dataclass(frozen=True)
class MonitorConfig:
    dataset_source: Path
    output_path: Path
    endpoint: str
    start: datetime | None
    end: datetime | None
    threshold: float
    min_notes: int
    namespace: str | None
    baseline_uri: str | None

    @classmethod
    def from_environment(cls, env: Mapping[str, str]) -> MonitorConfig:
        def required(name: str) -> str:
            value = env.get(name, "").strip()
            if not value:
                raise MonitorError(
                    f"environment variable {name} is not set (Model Monitor sets it)"
                )
            return value

        def number(name: str, default: float, kind: type[float] | type[int]) -> Any:
            raw = env.get(name, "").strip()
            try:
                return kind(raw) if raw else default
            except ValueError:
                raise MonitorError(f"{name}={raw!r} is not a {kind.__name__}") from None

        def when(name: str) -> datetime | None:
            raw = env.get(name, "").strip()
            try:
                return capture.parse_time(raw) if raw else None
            except ValueError:
                raise MonitorError(f"{name}={raw!r} is not an ISO 8601 time") from None

        threshold = number("DRIFT_THRESHOLD", DEFAULT_THRESHOLD, float)
        min_notes = number("DRIFT_MIN_NOTES", DEFAULT_MIN_NOTES, int)
        if not 0 < threshold <= 1 or min_notes < 1:
            raise MonitorError("DRIFT_THRESHOLD must be in (0, 1] and DRIFT_MIN_NOTES >= 1")
        return cls(
            dataset_source=Path(required("dataset_source")),
            output_path=Path(required("output_path")),
            endpoint=required("sagemaker_endpoint_name"),
            start=when("start_time"),
            end=when("end_time"),
            threshold=threshold,
            min_notes=min_notes,
            namespace=env.get("DRIFT_METRICS_NAMESPACE", "").strip() or None,
            baseline_uri=env.get("DRIFT_BASELINE_URI", "").strip() or None,
        )


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
    """Analyse the capture files, write the report and plot, publish the metrics."""
    started = time.perf_counter()
    package = None
    uri = config.baseline_uri
    if uri is None:
        package, uri = served_baseline(clients["sagemaker"], config.endpoint)
    with tempfile.TemporaryDirectory() as scratch:
        s3 = clients["s3"] if uri.startswith("s3://") else None
        baseline = fetch_baseline(uri, s3, Path(scratch))
    files = capture.capture_files(config.dataset_source)
    accumulator, stats = analyse(files, baseline, config.start, config.end)
    result = accumulator.result(config.threshold, config.min_notes)
    document: dict[str, Any] = {
        "endpoint": config.endpoint,
        "window": {
            "start": config.start.isoformat() if config.start else None,
            "end": config.end.isoformat() if config.end else None,
        },
        "baseline_uri": uri,
        "model_package_arn": package,
        "capture": {
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
        when = config.end or datetime.now().astimezone()
        data = metrics.metric_data(result, stats.requests, config.endpoint, when)
        metrics.publish(clients["cloudwatch"], config.namespace, data)
    elapsed = time.perf_counter() - started
    score = "n/a" if result.score is None else f"{result.score:.3f}"
    print(
        f"{config.endpoint}: {result.verdict} (score {score}, threshold {config.threshold:g}) "
        f"on {result.notes} notes of {stats.requests} requests in {elapsed:.1f} s; "
        f"wrote {', '.join(str(p) for p in written)}"
    )
    return document


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
