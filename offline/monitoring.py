"""The drift loop, locally: real serving code -> SageMaker-format capture in moto's S3 ->
the monitoring job as the schedule starts it -> (prod) the drift alarm and the retraining
state machine of the stack's plan.

`run_drift_demo` trains a model on the realistic corpus with the pipeline's own step
code (preprocess, train, evaluate: which writes the drift baseline), registers it in
local AWS as a model package whose `DriftCheckBaselines` point at that baseline, and
puts an endpoint in front of it (moto records it; nothing is hosted). Then, per
scenario and per hour of simulated traffic, it sends requests through
ml/serving/inference.py (`input_fn` -> `predict_fn` -> `output_fn`, what the endpoint's
server runs), writes each exchange as SageMaker's data capture writes it (JSON Lines
under `data-capture/<endpoint>/<variant>/yyyy/mm/dd/hh/`, several records a file), and
runs the monitoring job with the environment of the component's CreateProcessingJob
request (`MonitorTarget`: the planned schedule's own request with `promote monitor`,
else the component's builder on local names): `dataset_source` the capture's S3 URI,
`end_time` the hour's end as the scheduled time, the image's `monitor` entrypoint in its
own process group; its output is uploaded where the request's `S3Output` says, which
is where the next run finds the previous report. The job finds the baseline through the
endpoint, as it does in AWS, and publishes its metrics to local CloudWatch.

`main` (`promote monitor --local`) runs that on the planned stack's names, then the
planned drift alarm and (where the stack retrains on drift) the planned state machine
(offline/retraining.py) after each run.

Scenarios: `unchanged` (unseen notes of the same mix: no drift), `one specialty` (only
Orthopedic notes), `another domain` (IT-support tickets, not medical notes). Everything
is seeded: the same arguments give the same capture files and the same scores.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from infra.components import drift_monitor as component
from ml.data.realistic import generate
from ml.monitoring.baseline import BASELINE_FILE
from ml.monitoring.metrics import DIMENSION, DRIFT_SCORE, REQUESTS
from ml.monitoring.report import PLOT_FILE, REPORT_FILE
from ml.serving.inference import CSV, JSON, LoadedModel, input_fn, model_fn, output_fn, predict_fn
from ml.steps import evaluate, preprocess, train
from offline.aws import LocalAws, local_aws
from offline.pipeline.container import local_images, read_image
from offline.pipeline.processes import run_job
from offline.plan.capture import StackPlan
from offline.retraining import DriftTrigger, Outcome

ACCOUNT = "222222222222"
REGION = "eu-west-1"
BUCKET = "promote-code-local-monitoring"
ENDPOINT = "promote-code-local-endpoint"
VARIANT = "AllTraffic"
CAPTURE_PREFIX = "data-capture"
NAMESPACE = "promote-code/local/drift"
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


def capture_key(prefix: str, when: datetime, event_id: str) -> str:
    """Where SageMaker puts a capture file: `<prefix><variant>/yyyy/mm/dd/hh/<mm-ss-sss>-<id>.jsonl`
    (`prefix`: the endpoint's, `data-capture/<endpoint>/`)."""
    stamp = when.strftime("%Y/%m/%d/%H/%M-%S-") + f"{when.microsecond // 1000:03d}"
    return f"{prefix}{VARIANT}/{stamp}-{event_id}.jsonl"


def write_capture(s3: Any, bucket: str, prefix: str, records: list[dict[str, Any]]) -> list[str]:
    """Upload `records` as multi-record JSONL files (`RECORDS_PER_FILE` each); their keys."""
    keys = []
    for first in range(0, len(records), RECORDS_PER_FILE):
        chunk = records[first : first + RECORDS_PER_FILE]
        metadata = chunk[0]["eventMetadata"]
        when = datetime.fromisoformat(metadata["inferenceTime"].replace("Z", "+00:00"))
        key = capture_key(prefix, when, metadata["eventId"])
        body = "".join(json.dumps(record) + "\n" for record in chunk)
        s3.put_object(Bucket=bucket, Key=key, Body=body.encode())
        keys.append(key)
    return keys


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


def local_target() -> MonitorTarget:
    """The component's own request (`processing_job_request`) on this module's local names."""
    args = component.DriftMonitorArgs(
        name_prefix="promote-code-local",
        account=ACCOUNT,
        region=REGION,
        endpoint_name=ENDPOINT,
        model_package_group_name=f"{ENDPOINT}-models",
        pipeline_name="promote-code-local-training",
        pipeline_arn=f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:pipeline/promote-code-local-training",
        artifacts_bucket=BUCKET,
        kms_key_arn=f"arn:aws:kms:{REGION}:{ACCOUNT}:key/local",
        image_uri=f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/promote-code/training@sha256:"
        + "ab" * 32,
        ops_repository_arn=f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/promote-code/training",
        metric_namespace=NAMESPACE,
        tags={},
    )
    return MonitorTarget(ACCOUNT, REGION, component.processing_job_request(args))


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


@dataclass(frozen=True)
class MonitorRun:
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
    target: MonitorTarget | None = None,
    on_run: Callable[[LocalAws, MonitorRun], None] | None = None,
    out: Callable[[str], None] = print,
) -> list[MonitorRun]:
    """Train, serve `notes_per_scenario` notes per scenario (one or two a request) into
    capture, run the monitor once per scenario's hour, as scheduled at the hour's end; the
    runs, in scenario order. Each run reads only its hour: the previous run's report ends
    where it starts.

    `target`: the names and the job request (default `local_target()`). With `aws` None,
    starts (and stops) its own local AWS in the target's account. `on_run` is called after
    each run (the alarm's evaluation, in `main`). Prints one line per step and, per run,
    the verdict, the score and where the report and plot were written.
    """
    target = target or local_target()
    workdir.mkdir(parents=True, exist_ok=True)
    out(f"drift demo: training on {training_notes} realistic notes (the pipeline's step code)")
    model_dir, evaluation = train_model(workdir / "train", training_notes, seed)
    model = model_fn(model_dir)
    runs = []
    bucket, capture_prefix = target.capture
    endpoint = target.endpoint
    with ExitStack() as stack:
        local = aws or stack.enter_context(local_aws(target.region, target.account))
        s3, cloudwatch = local.client("s3"), local.client("cloudwatch")
        s3.create_bucket(
            Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": target.region}
        )
        package = register_and_serve(local, bucket, endpoint, evaluation / BASELINE_FILE)
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
            document = run_monitor_job(local, target, end, job_dir)
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
                on_run(local, run)
        published = published_scores(
            cloudwatch, target.namespace, endpoint, START, len(scenarios) + 1
        )
        for name, value in published:
            out(
                f"drift demo: CloudWatch {target.namespace} {DRIFT_SCORE}/{REQUESTS} "
                f"{name}: {value}"
            )
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


LOOP_SCENARIOS = ("unchanged", "one specialty")
"""`promote monitor --local`: the no-drift stream, then the shifted one."""
ALARM_DELAY = timedelta(minutes=1)
"""The alarm is evaluated this long after a run's scheduled time (its metric is there)."""


def _alarm_step(
    trigger: DriftTrigger, out: Callable[[str], None], outcomes: list[Outcome]
) -> Callable[[LocalAws, MonitorRun], None]:
    """After each run: evaluate the planned alarm, run the planned trigger on its event."""

    def step(aws: LocalAws, run: MonitorRun) -> None:
        outcome = trigger.evaluate(aws.client, run.end + ALARM_DELAY)
        outcomes.append(outcome)
        evaluation = outcome.evaluation
        out(
            f"drift loop: alarm {evaluation.alarm_name}: {evaluation.previous_state} -> "
            f"{evaluation.state} ({evaluation.reason})"
        )
        if evaluation.event is None:
            out("drift loop: no state change, so no EventBridge event")
            return
        if not trigger.retrains:
            out("drift loop: this stack plans no retraining trigger (retrain_on_drift off)")
            return
        out(
            f"drift loop: EventBridge event {evaluation.event['id']} "
            f"{'matches' if outcome.matched else 'does not match'} the planned rule's pattern"
        )
        execution = outcome.execution
        if execution is None:
            return
        out(
            f"drift loop: state machine {trigger.machine_name}: {' -> '.join(execution.path)} "
            f"({execution.status}{', ' + str(execution.error) if execution.error else ''})"
        )
        for started in trigger.executions(aws.client)[:1]:
            out(
                f"drift loop: local SageMaker records {started['PipelineExecutionArn']} "
                f"({started['PipelineExecutionDisplayName']}, "
                f"{started['PipelineExecutionStatus']} in moto)"
            )

    return step


def loop_problem(
    trigger: DriftTrigger, runs: list[MonitorRun], outcomes: list[Outcome]
) -> str | None:
    """None when the loop behaved as planned, else what did not happen."""
    quiet = runs[0]
    if quiet.verdict == "drift" or outcomes[0].evaluation.state == "ALARM":
        return f"the unchanged stream alarmed (score {quiet.score})"
    if outcomes[1].evaluation.state != "ALARM":
        return f"the alarm did not fire on the shifted stream ({outcomes[1].evaluation.reason})"
    if not trigger.retrains:
        return None
    execution = outcomes[1].execution
    if execution is None or execution.final_state != "StartRetraining":
        reached = "nothing" if execution is None else " -> ".join(execution.path)
        return f"the retraining trigger did not start the pipeline (reached {reached})"
    if execution.status != "SUCCEEDED":
        return f"StartRetraining failed: {execution.error}: {execution.cause}"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """`promote monitor --local [--stack prod]`: the drift loop on the stack's plan.

    Exit 0 when the loop behaved (no drift -> no alarm; shifted stream -> drift -> alarm
    -> one drift-triggered pipeline execution where the stack retrains on drift), 1 when
    the shifted stream does not cross the threshold or the loop did something else, 2 for
    usage (no plan: run `promote plan --json` first; a stack without a drift monitor).
    """
    parser = argparse.ArgumentParser(
        prog="promote monitor",
        description="Drift monitoring, locally: capture, the monitor job, the planned alarm "
        "and retraining trigger, on local AWS.",
    )
    parser.add_argument("--local", action="store_true", help="run on local AWS (required)")
    parser.add_argument("--stack", default="prod", help="planned stack (default prod)")
    parser.add_argument("--plan-dir", type=Path, default=Path("build/plan"))
    parser.add_argument(
        "--workdir", type=Path, help="scratch folder (default build/monitor/<stack>, emptied)"
    )
    parser.add_argument("--notes", type=int, default=250, help="notes per stream")
    parser.add_argument("--training-notes", type=int, default=900)
    args = parser.parse_args(argv)
    if not args.local:
        parser.print_usage(sys.stderr)
        print(
            "promote monitor: only --local exists (in AWS the job runs on its schedule)",
            file=sys.stderr,
        )
        return 2
    path = args.plan_dir / f"{args.stack}.json"
    if not path.is_file():
        print(
            f"promote monitor: no plan {path}: run `promote plan --json` first",
            file=sys.stderr,
        )
        return 2
    plan = StackPlan.from_json(path.read_text())
    try:
        target = plan_target(plan)
        trigger = DriftTrigger.from_plan(plan)
    except (ValueError, KeyError) as error:
        print(f"promote monitor: {path}: {error}", file=sys.stderr)
        return 2
    workdir = args.workdir or Path("build/monitor") / args.stack
    if args.workdir is None and workdir.exists():
        shutil.rmtree(workdir)
    started = time.perf_counter()
    outcomes: list[Outcome] = []
    with local_aws(target.region, target.account) as aws:
        trigger.install(aws.client)
        print(
            f"drift loop: {args.stack} plan: alarm {trigger.alarm_name} "
            f"({trigger.alarm['metricName']} {trigger.alarm['comparisonOperator']} "
            f"{trigger.alarm['threshold']}), "
            + (
                f"trigger {trigger.machine_name} -> pipeline {trigger.pipeline_name}"
                if trigger.retrains
                else "no retraining trigger"
            )
        )
        runs = run_drift_demo(
            workdir,
            notes_per_scenario=args.notes,
            training_notes=args.training_notes,
            scenarios=LOOP_SCENARIOS,
            aws=aws,
            target=target,
            on_run=_alarm_step(trigger, print, outcomes),
        )
    elapsed = time.perf_counter() - started
    shifted = runs[1]
    if shifted.verdict != "drift":
        print(
            f"drift loop: FAILED in {elapsed:.0f} s: the shifted stream scored {shifted.score} "
            f"({shifted.verdict}), not above the threshold"
        )
        return 1
    problem = loop_problem(trigger, runs, outcomes)
    if problem is not None:
        print(f"drift loop: FAILED in {elapsed:.0f} s: {problem}")
        return 1
    print(f"drift loop: behaved as planned in {elapsed:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
