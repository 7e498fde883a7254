"""The monitor job reading its window from S3, as the schedule starts it (moto S3).

The schedule gives the job `dataset_source=s3://<bucket>/data-capture/<endpoint>/`,
`end_time` (the scheduled time), `DRIFT_REPORT_S3_URI` and `DRIFT_MAX_LOOKBACK_SECONDS`;
the window starts at the newest earlier report's end, never earlier than the lookback.
Capture objects outside the window's hour folders are never read: here they are not even
capture data, so reading one would fail the run.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from ml.monitoring import job
from tests.ml.drift_support import Trained, served, train_with_baseline
from tests.ml.test_capture import answer, record

REGION = "eu-west-1"
BUCKET = "art"
ENDPOINT = "ep"
CAPTURE = f"data-capture/{ENDPOINT}/"
REPORTS = f"drift-reports/{ENDPOINT}/"
DAY = datetime(2026, 1, 5, tzinfo=UTC)
LOOKBACK = 6 * 3600
NOTE = "Chest pain radiating to the left arm, shortness of breath, history of hypertension."


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    return train_with_baseline(tmp_path_factory.mktemp("window"), notes=600)


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name=REGION)
        client.create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION}
        )
        yield client


def stamp(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def put_hour(s3: Any, trained: Trained, hour: datetime, count: int, *, tag: str) -> None:
    """`count` requests spread over `hour`, in one capture file of that hour's folder."""
    observations = served(trained.model, [f"{NOTE} {tag} {i}" for i in range(count)])
    lines = [
        json.dumps(
            record(
                o.text,
                answer(o.label, score=o.score),
                when=stamp(hour + timedelta(seconds=i * 3600 // count)),
                event=f"{tag}-{i}",
            )
        )
        for i, o in enumerate(observations)
    ]
    key = f"{CAPTURE}AllTraffic/{hour:%Y/%m/%d/%H}/00-00-000-{tag}.jsonl"
    s3.put_object(Bucket=BUCKET, Key=key, Body=("\n".join(lines) + "\n").encode())


def put_garbage(s3: Any, hour: datetime) -> str:
    """An object that is not capture data: reading it fails the run (exit 2)."""
    key = f"{CAPTURE}AllTraffic/{hour:%Y/%m/%d/%H}/00-00-000-garbage.jsonl"
    s3.put_object(Bucket=BUCKET, Key=key, Body=b'{"not": "capture"}\n')
    return key


def environment(trained: Trained, output: Path, end: datetime) -> dict[str, str]:
    """What the component's job request sets (infra/components/drift_monitor/args.py MonitorEnv)."""
    return {
        "sagemaker_endpoint_name": ENDPOINT,
        "dataset_source": f"s3://{BUCKET}/{CAPTURE}",
        "output_path": str(output),
        "end_time": end.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "DRIFT_MAX_LOOKBACK_SECONDS": str(LOOKBACK),
        "DRIFT_REPORT_S3_URI": f"s3://{BUCKET}/{REPORTS}",
        "DRIFT_THRESHOLD": "0.35",
        "DRIFT_MIN_NOTES": "20",
        "DRIFT_BASELINE_URI": str(trained.baseline_path),
    }


def run_scheduled(
    s3: Any, trained: Trained, tmp_path: Path, end: datetime
) -> tuple[dict[str, Any], list[str]]:
    """One scheduled run: the job, then the EndOfJob upload to `<reports><scheduled time>/`."""
    read: list[str] = []

    def record_read(params: dict[str, Any], **_: Any) -> None:
        read.append(params["Key"])

    s3.meta.events.register("provide-client-params.s3.GetObject", record_read)
    try:
        output = tmp_path / end.strftime("%H")
        config = job.MonitorConfig.from_environment(environment(trained, output, end))
        document = job.run(config, {"s3": s3})
    finally:
        s3.meta.events.unregister("provide-client-params.s3.GetObject", record_read)
    folder = f"{REPORTS}{end:%Y-%m-%dT%H:%M:%SZ}/"
    for name in ("drift_report.json", "drift_report.png"):
        s3.put_object(Bucket=BUCKET, Key=folder + name, Body=(output / name).read_bytes())
    return document, sorted(set(read))


def capture_read(keys: list[str]) -> list[str]:
    """The hour folders (yyyy/mm/dd/hh) of the capture objects read."""
    return sorted({"/".join(k.split("/")[3:7]) for k in keys if k.startswith(CAPTURE)})


def test_a_first_run_reads_the_lookback_and_nothing_older_or_newer(
    s3: Any, trained: Trained, tmp_path: Path
) -> None:
    end = DAY + timedelta(hours=12)
    put_garbage(s3, end - timedelta(seconds=LOOKBACK) - timedelta(hours=2))  # before the window
    put_garbage(s3, end)  # the next hour: the next run's
    put_hour(s3, trained, end - timedelta(hours=7), 10, tag="before")  # the overlap hour
    for back in (6, 3, 1):
        put_hour(s3, trained, end - timedelta(hours=back), 15, tag=f"h{back}")

    document, read = run_scheduled(s3, trained, tmp_path, end)

    assert document["window"] == {"start": "2026-01-05T06:00:00Z", "end": "2026-01-05T12:00:00Z"}
    assert document["capture"]["previous_report"] is None
    assert capture_read(read) == [
        "2026/01/05/05",
        "2026/01/05/06",
        "2026/01/05/09",
        "2026/01/05/11",
    ]
    # The hour before the window is read for its late records; its earlier ones are skipped.
    assert document["capture"]["requests_analysed"] == 45
    assert document["capture"]["skipped"] == {"outside the window": 10}
    assert document["capture"]["hour_folders_listed"] == 7


def test_a_second_run_reads_only_the_hours_since_the_previous_report(
    s3: Any, trained: Trained, tmp_path: Path
) -> None:
    first_end = DAY + timedelta(hours=12)
    for back in (5, 2):
        put_hour(s3, trained, first_end - timedelta(hours=back), 25, tag=f"old{back}")
    first, _ = run_scheduled(s3, trained, tmp_path, first_end)
    assert first["capture"]["requests_analysed"] == 50

    second_end = first_end + timedelta(hours=3)
    put_hour(s3, trained, first_end, 20, tag="new0")
    put_hour(s3, trained, first_end + timedelta(hours=2), 22, tag="new2")
    put_garbage(s3, first_end - timedelta(hours=3))  # the first run's, never read again
    second, read = run_scheduled(s3, trained, tmp_path, second_end)

    assert second["window"] == {"start": "2026-01-05T12:00:00Z", "end": "2026-01-05T15:00:00Z"}
    assert second["capture"]["previous_report"] == (
        f"s3://{BUCKET}/{REPORTS}2026-01-05T12:00:00Z/drift_report.json"
    )
    assert capture_read(read) == ["2026/01/05/12", "2026/01/05/14"]
    assert second["capture"]["requests_analysed"] == 42
    assert second["capture"]["skipped"] == {}


def test_the_newest_earlier_report_wins_and_the_lookback_still_bounds_it(
    s3: Any, trained: Trained, tmp_path: Path
) -> None:
    end = DAY + timedelta(hours=20)

    def report_at(when: datetime, end_recorded: str | None) -> None:
        body = {"window": {"end": end_recorded}} if end_recorded else {}
        s3.put_object(
            Bucket=BUCKET,
            Key=f"{REPORTS}{when:%Y-%m-%dT%H:%M:%SZ}/drift_report.json",
            Body=json.dumps(body).encode(),
        )

    report_at(DAY + timedelta(hours=2), "2026-01-05T02:00:00Z")  # beyond the lookback
    s3.put_object(Bucket=BUCKET, Key=f"{REPORTS}notes/readme.txt", Body=b"not a run")
    clients_config = job.MonitorConfig.from_environment(environment(trained, tmp_path, end))
    assert job.window_of(s3, clients_config).start == end - timedelta(seconds=LOOKBACK)

    report_at(DAY + timedelta(hours=17), "2026-01-05T17:00:00Z")
    report_at(DAY + timedelta(hours=23), "2026-01-05T23:00:00Z")  # a later run (backfill)
    window = job.window_of(s3, clients_config)
    assert (window.start, window.end) == (DAY + timedelta(hours=17), end)
    assert window.previous_report is not None and "T17:00:00Z" in window.previous_report


def test_the_s3_contract_refuses_a_start_time_and_needs_end_and_lookback(
    trained: Trained, tmp_path: Path
) -> None:
    env = environment(trained, tmp_path, DAY)
    with pytest.raises(job.MonitorError, match="start_time is set"):
        job.MonitorConfig.from_environment({**env, "start_time": "2026-01-04T00:00:00Z"})
    with pytest.raises(job.MonitorError, match="end_time is not set"):
        job.MonitorConfig.from_environment({k: v for k, v in env.items() if k != "end_time"})
    without = {k: v for k, v in env.items() if k != "DRIFT_MAX_LOOKBACK_SECONDS"}
    with pytest.raises(job.MonitorError, match="DRIFT_MAX_LOOKBACK_SECONDS is not set"):
        job.MonitorConfig.from_environment(without)
    with pytest.raises(job.MonitorError, match=r"DRIFT_THRESHOLD must be in \(0, 1\]"):
        job.MonitorConfig.from_environment({**env, "DRIFT_THRESHOLD": "1.5"})


# What SageMaker itself does with the job role (pull, logs, volume key, the EndOfJob upload),
# not calls of the job's code.
PLATFORM_ACTIONS = {"ecr", "logs", "kms"}
UPLOAD_ACTIONS = {"s3:PutObject", "s3:AbortMultipartUpload"}
IAM_ACTION_OF = {"s3:ListObjectsV2": "s3:ListBucket", "s3:HeadObject": "s3:GetObject"}
"""API operations whose IAM action has another name."""


def test_the_job_role_grants_exactly_the_calls_the_job_makes(
    trained: Trained, tmp_path: Path
) -> None:
    from infra.components import drift_monitor as component  # noqa: PLC0415

    with mock_aws():
        clients = {
            name: boto3.client(name, region_name=REGION)
            for name in ("s3", "sagemaker", "cloudwatch")
        }
        s3, sagemaker = clients["s3"], clients["sagemaker"]
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        key = "pipelines/pipe/run-1/evaluate-model/evaluation/drift_baseline.json"
        s3.put_object(Bucket=BUCKET, Key=key, Body=trained.baseline_path.read_bytes())
        sagemaker.create_model_package_group(ModelPackageGroupName="group")
        package = sagemaker.create_model_package(
            ModelPackageGroupName="group",
            InferenceSpecification={
                "Containers": [{"Image": "111111111111.dkr.ecr.eu-west-1.amazonaws.com/t"}],
                "SupportedContentTypes": ["text/csv"],
                "SupportedResponseMIMETypes": ["application/json"],
            },
            DriftCheckBaselines={
                "ModelDataQuality": {
                    "Statistics": {
                        "ContentType": "application/json",
                        "S3Uri": f"s3://{BUCKET}/{key}",
                    }
                }
            },
        )["ModelPackageArn"]
        sagemaker.create_model(
            ModelName=f"{ENDPOINT}-m",
            PrimaryContainer={"ModelPackageName": package},
            ExecutionRoleArn="arn:aws:iam::123456789012:role/r",
        )
        variant = {
            "VariantName": "AllTraffic",
            "ModelName": f"{ENDPOINT}-m",
            "InitialInstanceCount": 1,
            "InstanceType": "ml.m5.large",
        }
        sagemaker.create_endpoint_config(
            EndpointConfigName=f"{ENDPOINT}-c", ProductionVariants=[variant]
        )
        sagemaker.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName=f"{ENDPOINT}-c")
        end = DAY + timedelta(hours=3)
        put_hour(s3, trained, DAY + timedelta(hours=1), 30, tag="a")
        s3.put_object(
            Bucket=BUCKET, Key=f"{REPORTS}2026-01-05T00:00:00Z/drift_report.json", Body=b"{}"
        )
        called: set[str] = set()

        def note(model: Any, **_: Any) -> None:
            called.add(f"{model.service_model.endpoint_prefix}:{model.name}")

        for client in clients.values():
            client.meta.events.register("before-call.*.*", note)
        env = environment(trained, tmp_path, end)
        del env["DRIFT_BASELINE_URI"]  # the served package's baseline, as in AWS
        env["DRIFT_METRICS_NAMESPACE"] = "promote-code/prod/drift"
        document = job.run(job.MonitorConfig.from_environment(env), clients)
    assert document["model_package_arn"] == package and document["notes"] == 30

    args = component.DriftMonitorArgs(
        name_prefix="promote-code-prod",
        account="444444444444",
        region=REGION,
        endpoint_name=ENDPOINT,
        model_package_group_name="group",
        pipeline_name="pipe",
        pipeline_arn="arn:aws:sagemaker:eu-west-1:444444444444:pipeline/pipe",
        artifacts_bucket=BUCKET,
        kms_key_arn="arn:aws:kms:eu-west-1:444444444444:key/k",
        image_uri="111111111111.dkr.ecr.eu-west-1.amazonaws.com/t@sha256:" + "a" * 64,
        ops_repository_arn="arn:aws:ecr:eu-west-1:111111111111:repository/t",
        metric_namespace="promote-code/prod/drift",
        tags={},
    )
    granted = {
        action
        for statement in component.job_statements(args)
        for action in statement.actions
        if action.split(":")[0] not in PLATFORM_ACTIONS and action not in UPLOAD_ACTIONS
    }
    needed = {IAM_ACTION_OF.get(call, call) for call in called}
    needed = {
        a.replace("monitoring:", "cloudwatch:").replace("api.sagemaker:", "sagemaker:")
        for a in needed
    }
    assert needed == granted
