"""The drift loop, locally: real serving code -> SageMaker-format capture in moto's S3 ->
the monitoring job, as Model Monitor would run it.

`run_drift_demo` trains a model on the realistic corpus with the pipeline's own step
code (preprocess, train, evaluate: which writes the drift baseline), registers it in
local AWS as a model package whose `DriftCheckBaselines` point at that baseline, and
puts an endpoint in front of it (moto records it; nothing is hosted). Then, per
scenario and per hour of simulated traffic, it sends requests through
ml/serving/inference.py (`input_fn` -> `predict_fn` -> `output_fn`, what the endpoint's
server runs), writes each exchange as SageMaker's data capture writes it (JSON Lines
under `data-capture/<endpoint>/<variant>/yyyy/mm/dd/hh/`, several records a file), and
runs the monitoring job the way a monitoring schedule does: the hour's capture files
downloaded to `dataset_source`, the contract's environment, the image's `monitor`
entrypoint in its own process group, the output uploaded next to the capture data. The
job finds the baseline through the endpoint, as it does in AWS, and publishes its
metrics to local CloudWatch, where the demo reads them back.

Scenarios: `unchanged` (unseen notes of the same mix: no drift), `one specialty` (only
Orthopedic notes), `another domain` (IT-support tickets, not medical notes). Everything
is seeded: the same arguments give the same capture files and the same scores.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ml.data.realistic import generate
from ml.monitoring.baseline import BASELINE_FILE
from ml.monitoring.metrics import DIMENSION, DRIFT_SCORE, REQUESTS
from ml.monitoring.report import PLOT_FILE, REPORT_FILE
from ml.serving.inference import CSV, JSON, LoadedModel, input_fn, model_fn, output_fn, predict_fn
from ml.steps import evaluate, preprocess, train
from offline.aws import LocalAws, local_aws
from offline.pipeline.container import local_images, read_image
from offline.pipeline.processes import run_job

ACCOUNT = "222222222222"
REGION = "eu-west-1"
BUCKET = "promote-code-local-monitoring"
ENDPOINT = "promote-code-local-endpoint"
VARIANT = "AllTraffic"
CAPTURE_PREFIX = "data-capture"
NAMESPACE = "promote-code/local/ModelMonitor"
START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
RECORDS_PER_FILE = 50
JOB_TIMEOUT_SECONDS = 300.0
SHIFTED_SPECIALTY = "Orthopedic"
SCENARIOS = ("unchanged", "one specialty", "another domain")

_FOREIGN_WORDS = tuple(
    " ".join(
        (
            "invoice password reset laptop printer vpn outage ticket escalate server license",
            "refund shipment warehouse router firmware deadline spreadsheet quarterly budget",
            "customer portal login timeout database backup migration rollout sprint backlog",
            "keyboard monitor cable wireless upgrade install configure restart helpdesk",
            "account billing subscription renewal contract vendor purchase order approval",
        )
    ).split()
)


def foreign_notes(count: int, seed: int = 7) -> list[str]:
    """IT-support tickets: text of another domain, a few dozen words each (seeded)."""
    rng = np.random.default_rng(seed)
    notes = []
    for _ in range(count):
        words = rng.choice(_FOREIGN_WORDS, size=int(rng.integers(40, 120)))
        notes.append("Ticket: " + " ".join(str(w) for w in words) + ".")
    return notes


def capture_record(
    request: str,
    content_type: str,
    response: str,
    accept: str,
    *,
    event_id: str,
    when: datetime,
    base64_encoded: bool = False,
) -> dict[str, Any]:
    """One exchange as SageMaker data capture writes it (declared types as CSV/JSON text)."""

    def side(data: str, media: str, mode: str) -> dict[str, str]:
        if base64_encoded:
            encoded, encoding = base64.b64encode(data.encode()).decode("ascii"), "BASE64"
        else:
            encoded, encoding = data, "CSV" if media == CSV else "JSON"
        return {"observedContentType": media, "mode": mode, "data": encoded, "encoding": encoding}

    return {
        "captureData": {
            "endpointInput": side(request, content_type, "INPUT"),
            "endpointOutput": side(response, accept, "OUTPUT"),
        },
        "eventMetadata": {
            "eventId": event_id,
            "inferenceTime": when.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
        },
        "eventVersion": "0",
    }


def serve(model: LoadedModel, notes: list[str], seed: int, start: datetime) -> list[dict[str, Any]]:
    """Send `notes` through the serving code as requests; the capture record of each.

    Request shapes vary as real clients do (seeded): one note as text/csv, or one or two
    notes as JSON `instances`; most ask for JSON answers, some for CSV.
    """
    rng = np.random.default_rng(seed)
    records = []
    position = 0
    step = timedelta(seconds=3600 / max(1, len(notes)))
    while position < len(notes):
        size = 1 if rng.random() < 0.7 else 2
        batch = notes[position : position + size]
        if size == 1 and rng.random() < 0.6:
            body, content_type = batch[0], CSV
        else:
            body, content_type = json.dumps({"instances": batch}), JSON
        accept = CSV if rng.random() < 0.15 else JSON
        response, response_type = output_fn(predict_fn(input_fn(body, content_type), model), accept)
        when = start + step * position
        event = str(uuid.UUID(bytes=rng.bytes(16), version=4))
        records.append(
            capture_record(body, content_type, response, response_type, event_id=event, when=when)
        )
        position += size
    return records


def capture_key(endpoint: str, when: datetime, event_id: str) -> str:
    """Where SageMaker puts a capture file (`.../yyyy/mm/dd/hh/<mm-ss-sss>-<id>.jsonl`)."""
    stamp = when.strftime("%Y/%m/%d/%H/%M-%S-") + f"{when.microsecond // 1000:03d}"
    return f"{CAPTURE_PREFIX}/{endpoint}/{VARIANT}/{stamp}-{event_id}.jsonl"


def write_capture(s3: Any, bucket: str, endpoint: str, records: list[dict[str, Any]]) -> list[str]:
    """Upload `records` as multi-record JSONL files (`RECORDS_PER_FILE` each); their keys."""
    keys = []
    for first in range(0, len(records), RECORDS_PER_FILE):
        chunk = records[first : first + RECORDS_PER_FILE]
        metadata = chunk[0]["eventMetadata"]
        when = datetime.fromisoformat(metadata["inferenceTime"].replace("Z", "+00:00"))
        key = capture_key(endpoint, when, metadata["eventId"])
        body = "".join(json.dumps(record) + "\n" for record in chunk)
        s3.put_object(Bucket=bucket, Key=key, Body=body.encode())
        keys.append(key)
    return keys


@dataclass(frozen=True)
class MonitorRun:
    scenario: str
    verdict: str
    score: float | None
    notes: int
    report_uri: str
    plot_uri: str
    local_report: Path
    local_plot: Path


def run_monitor_job(
    aws: LocalAws,
    bucket: str,
    endpoint: str,
    hour: datetime,
    workdir: Path,
    *,
    extra_env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """One monitoring execution for the hour starting at `hour`, as a schedule runs it."""
    s3 = aws.client("s3")
    dataset = workdir / "endpointdata"
    output = workdir / "resultdata"
    prefix = f"{CAPTURE_PREFIX}/{endpoint}/{VARIANT}/{hour:%Y/%m/%d/%H}/"
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            target = dataset / item["Key"][len(CAPTURE_PREFIX) + 1 :]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read())
    output.mkdir(parents=True, exist_ok=True)
    image = read_image(local_images()["training"])
    command = image.command("monitor")  # docker run <image> monitor
    if command[0] in ("python", "python3"):
        command[0] = sys.executable  # the local interpreter stands in for the image's
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    environment |= {
        "dataset_source": str(dataset),
        "output_path": str(output),
        "start_time": hour.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "end_time": (hour + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "sagemaker_endpoint_name": endpoint,
        "DRIFT_METRICS_NAMESPACE": NAMESPACE,
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
    report_prefix = f"{CAPTURE_PREFIX}/{endpoint}/monitoring/{hour:%Y/%m/%d/%H}"
    for name in (REPORT_FILE, PLOT_FILE):
        s3.put_object(
            Bucket=bucket, Key=f"{report_prefix}/{name}", Body=(output / name).read_bytes()
        )
    document: dict[str, Any] = json.loads((output / REPORT_FILE).read_text())
    document["s3_prefix"] = f"s3://{bucket}/{report_prefix}"
    return document


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


def register_and_serve(aws: LocalAws, bucket: str, endpoint: str, baseline: Path) -> str:
    """A model package with the baseline as DriftCheckBaselines, behind `endpoint`; its ARN."""
    s3, sagemaker = aws.client("s3"), aws.client("sagemaker")
    key = f"models/{endpoint}/{BASELINE_FILE}"
    s3.put_object(Bucket=bucket, Key=key, Body=baseline.read_bytes())
    group = f"{endpoint}-models"
    sagemaker.create_model_package_group(ModelPackageGroupName=group)
    image = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/promote-code/training@sha256:{'ab' * 32}"
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
    role = f"arn:aws:iam::{ACCOUNT}:role/local-sagemaker-execution"
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


def scenario_notes(name: str, count: int, seed: int) -> list[str]:
    """`count` notes of scenario `name` (unseen notes: another seed than training's)."""
    if name == "another domain":
        return foreign_notes(count, seed)
    live = generate(notes=max(count * 3, 1500), seed=seed)
    live = live[live["transcription"].str.strip() != ""]
    if name == "one specialty":
        live = live[live["medical_specialty"].str.strip() == SHIFTED_SPECIALTY]
        if len(live) < count:  # repeat the specialty's notes rather than send fewer
            live = pd.concat([live] * (count // max(1, len(live)) + 1))
    elif name != "unchanged":
        raise ValueError(f"unknown scenario {name!r}; one of {SCENARIOS}")
    return [str(text) for text in live["transcription"].head(count)]


def run_drift_demo(
    workdir: Path,
    *,
    notes_per_scenario: int = 300,
    training_notes: int = 1500,
    seed: int = 11,
    scenarios: tuple[str, ...] = SCENARIOS,
    aws: LocalAws | None = None,
    out: Callable[[str], None] = print,
) -> list[MonitorRun]:
    """Train, serve `notes_per_scenario` notes per scenario (one or two a request) into
    capture, run the monitor on each scenario's hour; the runs, in scenario order.

    With `aws` None, starts (and stops) its own local AWS. Prints one line per step and,
    per run, the verdict, the score and where the report and plot were written.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    out(f"drift demo: training on {training_notes} realistic notes (the pipeline's step code)")
    model_dir, evaluation = train_model(workdir / "train", training_notes, seed)
    model = model_fn(model_dir)
    runs = []
    with ExitStack() as stack:
        local = aws or stack.enter_context(local_aws(REGION, ACCOUNT))
        s3, cloudwatch = local.client("s3"), local.client("cloudwatch")
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        package = register_and_serve(local, BUCKET, ENDPOINT, evaluation / BASELINE_FILE)
        out(f"drift demo: {ENDPOINT} serves {package} (its drift baseline attached)")
        for number, scenario in enumerate(scenarios):
            hour = START + timedelta(hours=number)
            notes = scenario_notes(scenario, notes_per_scenario, seed + 100 + number)
            records = serve(model, notes, seed + number, hour)
            keys = write_capture(s3, BUCKET, ENDPOINT, records)
            out(
                f"drift demo: {scenario}: {len(records)} requests ({len(notes)} notes) through "
                f"the serving code -> {len(keys)} capture files under "
                f"s3://{BUCKET}/{CAPTURE_PREFIX}/{ENDPOINT}/{VARIANT}/{hour:%Y/%m/%d/%H}/"
            )
            job_dir = workdir / "monitor" / f"{number}-{scenario.replace(' ', '-')}"
            document = run_monitor_job(local, BUCKET, ENDPOINT, hour, job_dir)
            run = MonitorRun(
                scenario=scenario,
                verdict=document["verdict"],
                score=document["score"],
                notes=document["notes"],
                report_uri=f"{document['s3_prefix']}/{REPORT_FILE}",
                plot_uri=f"{document['s3_prefix']}/{PLOT_FILE}",
                local_report=job_dir / "resultdata" / REPORT_FILE,
                local_plot=job_dir / "resultdata" / PLOT_FILE,
            )
            runs.append(run)
            score = "n/a" if run.score is None else f"{run.score:.3f}"
            out(
                f"drift demo: {scenario}: {run.verdict} (drift score {score}, threshold "
                f"{document['threshold']:g}, worst {document['worst_component']}); report "
                f"{run.report_uri} (local {run.local_report}), plot {run.plot_uri}"
            )
        for name, value in published_scores(cloudwatch, ENDPOINT, START, len(scenarios)):
            out(f"drift demo: CloudWatch {NAMESPACE} {DRIFT_SCORE}/{REQUESTS} {name}: {value}")
    return runs


def published_scores(
    cloudwatch: Any, endpoint: str, start: datetime, hours: int
) -> Iterator[tuple[str, str]]:
    """(hour, "score / requests") as local CloudWatch holds them."""
    values: dict[str, dict[str, float]] = {}
    for metric in (DRIFT_SCORE, REQUESTS):
        answer = cloudwatch.get_metric_statistics(
            Namespace=NAMESPACE,
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
