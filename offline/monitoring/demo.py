"""The drift demo: a model trained with the pipeline's step code, served, and watched.

`run_drift_demo` trains a model on the realistic corpus with the pipeline's own step
code (preprocess, train, evaluate: which writes the drift baseline), registers it in
local AWS as a model package whose `DriftCheckBaselines` point at that baseline, and
puts an endpoint in front of it (moto records it; nothing is hosted). Then, per
scenario and per hour of simulated traffic, it serves the scenario's notes into capture
(`traffic`) and runs the monitoring job as scheduled at the hour's end (`job`). The job
finds the baseline through the endpoint, as it does in AWS, and publishes its metrics to
local CloudWatch (`published_scores` reads them back). Everything is seeded: the same
arguments give the same capture files and the same scores.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ml.data.realistic import generate
from ml.monitoring.baseline import BASELINE_FILE
from ml.monitoring.metrics import DIMENSION, DRIFT_SCORE, REQUESTS
from ml.monitoring.report import PLOT_FILE, REPORT_FILE
from ml.serving.inference import CSV, JSON, model_fn
from ml.steps import evaluate, preprocess, train
from offline.aws import LocalAws
from offline.monitoring.job import MonitorTarget, run_monitor_job
from offline.monitoring.traffic import VARIANT, scenario_notes, serve, write_capture

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


@dataclass(frozen=True)
class MonitorRun:
    """One scheduled run of the monitor on one scenario's hour: its verdict and outputs."""

    scenario: str
    verdict: str
    score: float | None
    notes: int
    end: datetime
    """The run's scheduled time (its window's end, its metrics' timestamp)."""
    report_uri: str
    plot_uri: str
    local_report: Path
    local_plot: Path
    window: dict[str, str | None]


def train_model(workdir: Path, notes: int, seed: int) -> tuple[Path, Path]:
    """(model dir, evaluation dir with drift_baseline.json): the pipeline's step code."""
    source = workdir / "corpus"
    source.mkdir(parents=True, exist_ok=True)
    generate(notes=notes, seed=seed).to_csv(source / "notes.csv", index=False)
    splits = workdir / "splits"
    preprocess.preprocess(source, splits)
    model_dir = workdir / "model"
    train.train(splits / "train", splits / "validation", model_dir, train.Hyperparameters())
    evaluation = workdir / "evaluation"
    evaluate.run(model_dir, splits / "test", evaluation, train_dir=splits / "train")
    return model_dir, evaluation


def register_and_serve(aws: LocalAws, target: MonitorTarget, baseline: Path) -> str:
    """A model package with the baseline as DriftCheckBaselines, behind the target's
    endpoint; its ARN."""
    s3, sagemaker = aws.client("s3"), aws.client("sagemaker")
    bucket, endpoint, account = target.bucket, target.endpoint, target.account
    key = f"models/{endpoint}/{BASELINE_FILE}"
    s3.put_object(Bucket=bucket, Key=key, Body=baseline.read_bytes())
    group = f"{endpoint}-models"
    sagemaker.create_model_package_group(ModelPackageGroupName=group)
    image = f"{account}.dkr.ecr.{aws.region}.amazonaws.com/promote-code/training@sha256:{'ab' * 32}"
    arn: str = sagemaker.create_model_package(
        ModelPackageGroupName=group,
        InferenceSpecification={
            "Containers": [{"Image": image, "ModelDataUrl": f"s3://{bucket}/models/model.tar.gz"}],
            "SupportedContentTypes": [CSV, JSON],
            "SupportedResponseMIMETypes": [JSON],
        },
        ModelApprovalStatus="Approved",
        DriftCheckBaselines={
            "ModelDataQuality": {
                "Statistics": {"ContentType": JSON, "S3Uri": f"s3://{bucket}/{key}"}
            }
        },
    )["ModelPackageArn"]
    role = f"arn:aws:iam::{account}:role/local-sagemaker-execution"
    sagemaker.create_model(
        ModelName=f"{endpoint}-v1",
        PrimaryContainer={"ModelPackageName": arn},
        ExecutionRoleArn=role,
    )
    sagemaker.create_endpoint_config(
        EndpointConfigName=f"{endpoint}-v1",
        ProductionVariants=[
            {
                "VariantName": VARIANT,
                "ModelName": f"{endpoint}-v1",
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large",
            }
        ],
    )
    sagemaker.create_endpoint(EndpointName=endpoint, EndpointConfigName=f"{endpoint}-v1")
    return arn


def run_drift_demo(
    aws: LocalAws,
    target: MonitorTarget,
    workdir: Path,
    scenarios: tuple[str, ...],
    *,
    notes_per_scenario: int = 300,
    training_notes: int = 1500,
    seed: int = 11,
    on_run: Callable[[LocalAws, MonitorRun], None] | None = None,
    out: Callable[[str], None] = print,
) -> list[MonitorRun]:
    """Train, serve `notes_per_scenario` notes per scenario (one or two a request) into
    capture, run the monitor once per scenario's hour, as scheduled at the hour's end; the
    runs, in scenario order. Each run reads only its hour: the previous run's report ends
    where it starts.

    `target`: the names and the job request (the planned schedule's, `plan_target`), in
    `aws`, which the caller started in the target's account. `on_run` is called after
    each run (the alarm's evaluation, in `main`). Prints one line per step and, per run,
    the verdict, the score and where the report and plot were written.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    out(f"drift demo: training on {training_notes} realistic notes (the pipeline's step code)")
    model_dir, evaluation = train_model(workdir / "train", training_notes, seed)
    model = model_fn(model_dir)
    runs = []
    bucket, capture_prefix = target.capture
    endpoint = target.endpoint
    s3, cloudwatch = aws.client("s3"), aws.client("cloudwatch")
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": target.region})
    package = register_and_serve(aws, target, evaluation / BASELINE_FILE)
    out(f"drift demo: {endpoint} serves {package} (its drift baseline attached)")
    for number, scenario in enumerate(scenarios):
        hour = START + timedelta(hours=number)
        notes = scenario_notes(scenario, notes_per_scenario, seed + 100 + number)
        records = serve(model, notes, seed + number, hour)
        keys = write_capture(s3, bucket, capture_prefix, records)
        out(
            f"drift demo: {scenario}: {len(records)} requests ({len(notes)} notes) through "
            f"the serving code -> {len(keys)} capture files under "
            f"s3://{bucket}/{capture_prefix}{VARIANT}/{hour:%Y/%m/%d/%H}/"
        )
        job_dir = workdir / "monitor" / f"{number}-{scenario.replace(' ', '-')}"
        end = hour + timedelta(hours=1)
        document = run_monitor_job(aws, target, end, job_dir)
        run = MonitorRun(
            scenario=scenario,
            verdict=document["verdict"],
            score=document["score"],
            notes=document["notes"],
            end=end,
            report_uri=f"{document['s3_prefix']}/{REPORT_FILE}",
            plot_uri=f"{document['s3_prefix']}/{PLOT_FILE}",
            local_report=job_dir / "output" / REPORT_FILE,
            local_plot=job_dir / "output" / PLOT_FILE,
            window=document["window"],
        )
        runs.append(run)
        score = "n/a" if run.score is None else f"{run.score:.3f}"
        out(
            f"drift demo: {scenario}: {run.verdict} (drift score {score}, threshold "
            f"{document['threshold']:g}, worst {document['worst_component']}) on "
            f"{run.window['start']} to {run.window['end']}; report {run.report_uri} "
            f"(local {run.local_report}), plot {run.plot_uri}"
        )
        if on_run is not None:
            on_run(aws, run)
    published = published_scores(cloudwatch, target.namespace, endpoint, START, len(scenarios) + 1)
    for name, value in published:
        out(f"drift demo: CloudWatch {target.namespace} {DRIFT_SCORE}/{REQUESTS} {name}: {value}")
    return runs


def published_scores(
    cloudwatch: Any, namespace: str, endpoint: str, start: datetime, hours: int
) -> Iterator[tuple[str, str]]:
    """(hour, "score / requests") as local CloudWatch holds them."""
    values: dict[str, dict[str, float]] = {}
    for metric in (DRIFT_SCORE, REQUESTS):
        answer = cloudwatch.get_metric_statistics(
            Namespace=namespace,
            MetricName=metric,
            Dimensions=[{"Name": DIMENSION, "Value": endpoint}],
            StartTime=start,
            EndTime=start + timedelta(hours=hours + 1),
            Period=3600,
            Statistics=["Maximum"],
        )
        for point in answer["Datapoints"]:
            stamp = point["Timestamp"].astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")
            values.setdefault(stamp, {})[metric] = point["Maximum"]
    for stamp in sorted(values):
        found = values[stamp]
        yield stamp, f"{found.get(DRIFT_SCORE, 'none')} / {found.get(REQUESTS, 0):.0f}"
