"""Drift against the baseline: verdicts, determinism, metrics, and the job's contract."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import botocore.session
import numpy as np
import pytest
from botocore.validate import ParamValidator
from moto import mock_aws

from ml.data.realistic import generate
from ml.monitoring import analysis, job, metrics
from ml.monitoring import baseline as baselines
from ml.monitoring.drift import (
    DEFAULT_MIN_NOTES,
    DEFAULT_THRESHOLD,
    DRIFT,
    INSUFFICIENT,
    NO_DRIFT,
    DriftAccumulator,
    js_distance,
)
from tests.ml.drift_support import Trained, served, train_with_baseline
from tests.ml.test_capture import answer, record

FOREIGN = "Ticket: vpn outage on the laptop, printer firmware upgrade, invoice refund pending"


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    return train_with_baseline(tmp_path_factory.mktemp("drift"))


@pytest.fixture(scope="module")
def baseline(trained: Trained) -> baselines.Baseline:
    return baselines.load(trained.baseline_path)


def drift_of(baseline: baselines.Baseline, observations: list[Any], **kwargs: Any) -> Any:
    accumulator = DriftAccumulator(baseline)
    accumulator.add_all(observations)
    return accumulator.result(**kwargs)


def test_js_distance_is_bounded_symmetric_and_finite_with_empty_bins() -> None:
    p, q = np.array([5, 5, 0]), np.array([0, 0, 10])
    assert js_distance(p, p) == 0.0
    assert js_distance(p, q) == pytest.approx(1.0)
    assert js_distance(p, np.array([1, 9, 0])) == js_distance(np.array([1, 9, 0]), p)
    assert 0 < js_distance(p, np.array([4, 5, 1])) < 0.3


def test_a_resample_of_the_evaluation_split_is_no_drift(
    trained: Trained, baseline: baselines.Baseline
) -> None:
    texts = trained.test_split()["text"].tolist()
    picked = np.random.default_rng(3).choice(len(texts), size=400, replace=True)
    result = drift_of(baseline, served(trained.model, [texts[i] for i in picked]))
    assert result.verdict == NO_DRIFT
    assert result.score is not None
    assert result.score < DEFAULT_THRESHOLD
    assert set(result.components) == {"predicted_class", "confidence", "length", "oov"}
    assert all(c.distance is not None for c in result.components.values())


def test_unseen_notes_of_the_same_mix_are_no_drift(
    trained: Trained, baseline: baselines.Baseline
) -> None:
    live = generate(notes=1500, seed=77)["transcription"].head(400).tolist()
    assert drift_of(baseline, served(trained.model, live)).verdict == NO_DRIFT


def test_one_specialty_only_crosses_the_threshold(
    trained: Trained, baseline: baselines.Baseline
) -> None:
    live = generate(notes=3000, seed=77)
    notes = live[live["medical_specialty"].str.strip() == "Orthopedic"]["transcription"]
    result = drift_of(baseline, served(trained.model, notes.tolist() * 2))
    assert result.verdict == DRIFT
    assert result.worst == "predicted_class"
    assert result.score >= DEFAULT_THRESHOLD + 0.2


def test_another_domain_crosses_the_threshold_on_oov(
    trained: Trained, baseline: baselines.Baseline
) -> None:
    result = drift_of(baseline, served(trained.model, [f"{FOREIGN} {i}" for i in range(300)]))
    assert result.verdict == DRIFT
    assert result.components["oov"].distance == pytest.approx(1.0)
    assert result.summary["current"]["oov_token_rate"] > 0.6  # "on", "the" are known words
    assert result.summary["baseline"]["oov_token_rate"] < 0.05


def test_too_few_notes_is_insufficient_data_and_sends_no_score(
    trained: Trained, baseline: baselines.Baseline
) -> None:
    texts = trained.test_split()["text"].tolist()
    result = drift_of(baseline, served(trained.model, [FOREIGN] * (DEFAULT_MIN_NOTES - 1)))
    assert result.verdict == INSUFFICIENT
    assert result.score is None
    data = metrics.metric_data(result, 50, "ep", datetime(2026, 1, 5, 10, tzinfo=UTC))
    assert [d["MetricName"] for d in data] == [metrics.REQUESTS, metrics.NOTES]
    enough = drift_of(baseline, served(trained.model, texts), min_notes=len(texts))
    assert enough.verdict != INSUFFICIENT


def test_scores_without_confidence_leave_that_component_out(
    trained: Trained, baseline: baselines.Baseline
) -> None:
    texts = trained.test_split()["text"].tolist() * 3
    observations = [
        type(o)(o.text, o.label, None) for o in served(trained.model, texts)
    ]  # CSV answers of a margin model carry no score
    result = drift_of(baseline, observations)
    assert result.components["confidence"].distance is None
    assert result.verdict == NO_DRIFT


def test_the_score_is_deterministic_and_independent_of_batches_and_workers(
    trained: Trained, baseline: baselines.Baseline, tmp_path: Path
) -> None:
    texts = generate(notes=1500, seed=78)["transcription"].head(300).tolist()
    observations = served(trained.model, texts)
    once = drift_of(baseline, observations).as_dict()
    assert drift_of(baseline, observations).as_dict() == once
    batched = DriftAccumulator(baseline)
    for start in range(0, len(observations), 7):
        batched.add(observations[start : start + 7])
    assert batched.result().as_dict() == once
    files = []
    for number in range(6):
        lines = [
            json.dumps(record(o.text.replace("\n", " "), answer(o.label, score=o.score)))
            for o in observations[number::6]
        ]
        files.append(tmp_path / f"{number}.jsonl")
        files[-1].write_text("\n".join(lines) + "\n")
    single, _ = analysis.analyse(files, baseline, workers=1)
    double, stats = analysis.analyse(files, baseline, workers=2)
    assert single.result().as_dict() == double.result().as_dict()
    assert stats.requests == len(observations)


def test_metric_data_is_a_valid_put_metric_data_request(
    trained: Trained, baseline: baselines.Baseline
) -> None:
    result = drift_of(baseline, served(trained.model, trained.test_split()["text"].tolist() * 3))
    when = datetime(2026, 1, 5, 10, tzinfo=UTC)
    data = metrics.metric_data(result, 120, "promote-code-prod-endpoint", when)
    model = botocore.session.get_session().get_service_model("cloudwatch")
    shape = model.operation_model("PutMetricData").input_shape
    report = ParamValidator().validate(
        {"Namespace": "promote-code/prod", "MetricData": data}, shape
    )
    assert not report.has_errors(), report.generate_report()
    score = next(d for d in data if d["MetricName"] == metrics.DRIFT_SCORE)
    assert score["Value"] == result.score
    assert score["Dimensions"] == [{"Name": "EndpointName", "Value": "promote-code-prod-endpoint"}]
    assert all(d["Timestamp"] == when for d in data)


# -- the job -----------------------------------------------------------------------------


def environment(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        "dataset_source": str(tmp_path / "endpointdata"),
        "output_path": str(tmp_path / "resultdata"),
        "start_time": "2026-01-05T09:00:00Z",
        "end_time": "2026-01-05T10:00:00Z",
        "sagemaker_endpoint_name": "ep",
        **extra,
    }


def test_the_job_refuses_a_missing_variable_and_non_capture_input(
    trained: Trained, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = environment(tmp_path, DRIFT_BASELINE_URI=str(trained.baseline_path))
    assert job.main({k: v for k, v in env.items() if k != "dataset_source"}) == 2
    assert "dataset_source is not set" in capsys.readouterr().err
    (tmp_path / "endpointdata").mkdir()
    (tmp_path / "endpointdata" / "notes.jsonl").write_text('{"text": "a note"}\n')
    assert job.main(env) == 2
    assert "notes.jsonl:1: not SageMaker data capture" in capsys.readouterr().err
    assert job.main({**env, "DRIFT_THRESHOLD": "high"}) == 2


@mock_aws
def test_the_job_compares_with_the_served_package_baseline_and_publishes(
    trained: Trained, tmp_path: Path
) -> None:
    region = "eu-west-1"
    s3 = boto3.client("s3", region_name=region)
    sagemaker = boto3.client("sagemaker", region_name=region)
    cloudwatch = boto3.client("cloudwatch", region_name=region)
    s3.create_bucket(Bucket="art", CreateBucketConfiguration={"LocationConstraint": region})
    s3.put_object(
        Bucket="art", Key="b/drift_baseline.json", Body=trained.baseline_path.read_bytes()
    )
    sagemaker.create_model_package_group(ModelPackageGroupName="g")
    image = "111111111111.dkr.ecr.eu-west-1.amazonaws.com/training@sha256:" + "ab" * 32
    arn = sagemaker.create_model_package(
        ModelPackageGroupName="g",
        InferenceSpecification={
            "Containers": [{"Image": image}],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["application/json"],
        },
        DriftCheckBaselines={
            "ModelDataQuality": {
                "Statistics": {
                    "ContentType": "application/json",
                    "S3Uri": "s3://art/b/drift_baseline.json",
                }
            }
        },
    )["ModelPackageArn"]
    role = "arn:aws:iam::123456789012:role/r"
    sagemaker.create_model(
        ModelName="m", PrimaryContainer={"ModelPackageName": arn}, ExecutionRoleArn=role
    )
    variant = {"VariantName": "AllTraffic", "ModelName": "m", "InitialInstanceCount": 1,
               "InstanceType": "ml.m5.large"}  # fmt: skip
    sagemaker.create_endpoint_config(EndpointConfigName="c", ProductionVariants=[variant])
    sagemaker.create_endpoint(EndpointName="ep", EndpointConfigName="c")
    assert job.served_baseline(sagemaker, "ep") == (arn, "s3://art/b/drift_baseline.json")

    hour = tmp_path / "endpointdata" / "ep" / "AllTraffic" / "2026" / "01" / "05" / "09"
    hour.mkdir(parents=True)
    lines = [
        json.dumps(record(f"{FOREIGN} {i}", answer(o.label, score=o.score)))
        for i, o in enumerate(served(trained.model, [FOREIGN] * 250))
    ]
    (hour / "00-00-000-x.jsonl").write_text("\n".join(lines) + "\n")
    config = job.MonitorConfig.from_environment(
        environment(tmp_path, DRIFT_METRICS_NAMESPACE="promote-code/test")
    )
    clients = {"s3": s3, "sagemaker": sagemaker, "cloudwatch": cloudwatch}
    document = job.run(config, clients)
    assert document["verdict"] == DRIFT
    assert document["model_package_arn"] == arn
    assert document["capture"]["requests_analysed"] == 250
    written = json.loads((tmp_path / "resultdata" / "drift_report.json").read_text())
    assert written == json.loads(json.dumps(document))
    assert (tmp_path / "resultdata" / "drift_report.png").read_bytes()[:4] == b"\x89PNG"
    listed = cloudwatch.list_metrics(Namespace="promote-code/test")["Metrics"]
    assert {m["MetricName"] for m in listed} == {"DriftScore", "RequestsAnalysed", "NotesAnalysed"}

    bare = "arn:aws:sagemaker:eu-west-1:123456789012:model-package/g/1"
    sagemaker.create_model_package(
        ModelPackageGroupName="g",
        InferenceSpecification={
            "Containers": [{"Image": image}],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["application/json"],
        },
    )
    sagemaker.create_model(
        ModelName="m2", PrimaryContainer={"ModelPackageName": bare.replace("/1", "/2")},
        ExecutionRoleArn=role,
    )  # fmt: skip
    sagemaker.create_endpoint_config(
        EndpointConfigName="c2", ProductionVariants=[{**variant, "ModelName": "m2"}]
    )
    sagemaker.create_endpoint(EndpointName="ep2", EndpointConfigName="c2")
    with pytest.raises(job.MonitorError, match=r"no DriftCheckBaselines\.ModelDataQuality"):
        job.served_baseline(sagemaker, "ep2")
