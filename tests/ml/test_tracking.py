"""Lineage facts and MLflow tracking of train-model and evaluate-model, in-process.

The steps log through the real `mlflow` client to a SQLite store in the test's
directory, prepared as the local run prepares it (`offline.pipeline.tracking.LocalTracking`).
What a tracked run holds (parameters, metrics, tags, artifacts) is read back from the local
pipeline run's own store, and through a real `mlflow server`, in
tests/offline/test_local_run.py: that run is the tracked train-model and evaluate-model.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ml import lineage
from ml.data.synthetic import generate
from ml.pipeline.code import BUNDLES
from ml.steps import evaluate, notes_csv, preprocess, run_record, tracking, train
from offline.pipeline.tracking import LocalTracking

TRACKING_ARN = "arn:aws:sagemaker:eu-west-1:222222222222:mlflow-tracking-server/promote-code-dev"
IMAGE = "111111111111.dkr.ecr.eu-west-1.amazonaws.com/promote-code/training@sha256:" + "cd" * 32
EXECUTION_ARN = "arn:aws:sagemaker:eu-west-1:222222222222:pipeline/p/execution/abc123def"
COMMIT = "1f" * 20


@pytest.fixture(scope="module")
def splits(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tracking")
    (root / "in").mkdir()
    generate(notes_per_specialty=12).to_csv(root / "in" / "notes.csv", index=False)
    preprocess.preprocess(root / "in", root / "out")
    return root / "out"


def job_environment(uri: str) -> dict[str, str]:
    """What run_environment gives the train and evaluate jobs (the URI aside)."""
    return {
        "MLFLOW_TRACKING_URI": uri,
        "MLFLOW_EXPERIMENT_NAME": "promote-code-dev",
        "PROMOTE_COMMIT": COMMIT,
        "PROMOTE_TRAINING_IMAGE": IMAGE,
        "PROMOTE_PIPELINE_EXECUTION_ARN": EXECUTION_ARN,
    }


# -- lineage facts -------------------------------------------------------------------------
def test_input_sha256_hashes_names_and_bytes_not_the_directory(tmp_path: Path) -> None:
    def digest(directory: Path, files: dict[str, bytes]) -> str:
        directory.mkdir(parents=True)
        for name, data in files.items():
            (directory / name).write_bytes(data)
        return notes_csv.input_sha256(directory, sorted(directory.iterdir()))

    base = {"a.csv": b"x,y\n1,2\n", "b.csv": b"x,y\n3,4\n"}
    same = digest(tmp_path / "one", base)
    assert same == digest(tmp_path / "elsewhere" / "two", dict(reversed(base.items())))
    assert same != digest(tmp_path / "byte", {**base, "b.csv": b"x,y\n3,5\n"})
    assert same != digest(tmp_path / "renamed", {"a.csv": base["a.csv"], "c.csv": base["b.csv"]})
    # Bytes moved from one file to the next: the sizes keep the boundary in the hash.
    moved = {"a.csv": b"x,y\n1,2\nx", "b.csv": b",y\n3,4\n"}
    assert same != digest(tmp_path / "moved", moved)


def test_the_data_report_carries_the_dataset_hash(splits: Path) -> None:
    report = json.loads((splits / "train" / "data_report.json").read_text())
    csv = splits.parent / "in" / "notes.csv"
    assert report["input_sha256"] == notes_csv.input_sha256(csv.parent, [csv])
    assert len(report["input_sha256"]) == 64


def test_lineage_keys_are_the_registrys_and_every_value_is_a_string(
    splits: Path, tmp_path: Path
) -> None:
    model = tmp_path / "model"
    train.train(splits / "train", None, model, train.Hyperparameters())
    untracked = evaluate.run(model, splits / "test", tmp_path / "a", environ={})
    assert run_record.LINEAGE_KEYS == lineage.METADATA_KEYS
    facts = untracked["lineage"]
    assert tuple(sorted(facts)) == tuple(sorted(lineage.METADATA_KEYS))
    assert all(isinstance(v, str) and v for v in facts.values())
    # No environment, no --train-dir: absent facts are "none", never empty.
    for key in ("commit", "training_image", "data_sha256", "mlflow_run_id", "mlflow_tracking_arn"):
        assert facts[key] == "none", key
    assert facts["metric"] == "macro_f1"
    assert float(facts["metric_value"]) == pytest.approx(untracked["approval"]["value"], abs=1e-6)

    environment = {
        "PROMOTE_COMMIT": COMMIT,
        "PROMOTE_TRAINING_IMAGE": IMAGE,
        "MLFLOW_TRACKING_URI": TRACKING_ARN,
    }
    model_json = json.loads((model / "model.json").read_text())
    (model / "model.json").write_text(json.dumps({**model_json, "mlflow_run_id": "r1"}))
    facts = run_record.lineage(environment, untracked, "ab" * 32, "r1")
    assert facts["commit"] == COMMIT
    assert facts["training_image"] == IMAGE
    assert facts["data_sha256"] == "ab" * 32
    assert facts["mlflow_run_id"] == "r1"
    assert facts["mlflow_tracking_arn"] == TRACKING_ARN
    # A local store is not a tracking server ARN: the package names none.
    local = run_record.lineage({"MLFLOW_TRACKING_URI": "sqlite:///x.db"}, untracked, "none", "r1")
    assert local["mlflow_tracking_arn"] == "none"


# -- MLflow ---------------------------------------------------------------------------------
# What a tracked train-model and evaluate-model log (one run, every parameter, metric, tag
# and artifact) is read back from the local pipeline run's own store in
# tests/offline/test_local_run.py; here, how tracking fails.
@pytest.fixture(scope="module")
def store(splits: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A local store, as the local run prepares it, and a model trained without tracking."""
    root = tmp_path_factory.mktemp("store")
    local = LocalTracking(f"sqlite:///{root / 'mlflow.db'}", root / "artifacts")
    environment = job_environment(TRACKING_ARN)
    local.apply(environment)  # what the local runner does to a job's environment
    assert environment["MLFLOW_TRACKING_URI"] == local.uri
    model = root / "model"
    train.train(splits / "train", None, model, train.Hyperparameters(hash_bits=12))
    return {"uri": local.uri, "model": model}


def test_without_a_tracking_uri_mlflow_is_never_imported(splits: Path, tmp_path: Path) -> None:
    script = f"""
import sys
from pathlib import Path
from ml.steps import evaluate, train
train.train(Path({str(splits / "train")!r}), None, Path({str(tmp_path / "m")!r}),
            train.Hyperparameters(hash_bits=12))
evaluate.run(Path({str(tmp_path / "m")!r}), Path({str(splits / "test")!r}),
             Path({str(tmp_path / "e")!r}), environ={{}})
assert not [m for m in sys.modules if m == "mlflow" or m.startswith("mlflow.")], "imported"
assert "matplotlib" not in sys.modules
"""
    done = subprocess.run(
        [sys.executable, "-c", script], check=False, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr


def test_a_run_that_cannot_be_created_fails_train_before_the_model_is_written(
    splits: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A tracking server that is not there (no retries: MLflow's default retries for minutes).
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **job_environment(f"http://127.0.0.1:{port}"),
        "SM_CHANNEL_TRAIN": str(splits / "train"),
        "SM_MODEL_DIR": str(tmp_path / "model"),
        "SM_OUTPUT_DIR": str(tmp_path),
    }
    assert train.main([], env) == 1
    err = capsys.readouterr().err
    assert f"train-model failed: MLflow http://127.0.0.1:{port}: cannot create the run" in err
    assert "cannot create the run" in err
    assert not (tmp_path / "model").exists()  # nothing written
    assert "cannot create the run" in (tmp_path / "failure").read_text()


def test_evaluate_fails_when_its_run_cannot_be_resumed(
    splits: Path, store: dict[str, Any], tmp_path: Path
) -> None:
    model = store["model"]
    environment = job_environment(store["uri"])
    copy = tmp_path / "model"
    copy.mkdir()
    for path in model.iterdir():
        (copy / path.name).write_bytes(path.read_bytes())
    metadata = json.loads((copy / "model.json").read_text())
    (copy / "model.json").write_text(json.dumps({**metadata, "mlflow_run_id": "0" * 32}))
    with pytest.raises(tracking.TrackingError, match=f"cannot open run {'0' * 32}"):
        evaluate.run(copy, splits / "test", tmp_path / "e", environ=environment)
    assert not (tmp_path / "e").exists()


def test_a_logging_failure_is_a_warning_not_a_lost_evaluation(
    store: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import mlflow  # noqa: PLC0415

    client = mlflow.MlflowClient(tracking_uri=store["uri"])
    environment = job_environment(store["uri"])
    run = tracking.TrackedRun.start(environment, tags={"stack": "promote-code-dev"})
    assert run is not None
    run.log_batch("the metrics", metrics={"accuracy": 0.5})
    run.log_artifact(tmp_path / "gone.txt")  # not there when the worker logs it
    warnings = run.finish()
    assert len(warnings) == 1
    assert warnings[0].startswith(
        f"warning: MLflow {client.tracking_uri}: could not log gone.txt to run {run.run_id()}: "
    )
    assert capsys.readouterr().err.strip() == warnings[0]
    logged = client.get_run(run.run_id())
    assert logged.data.metrics == {"accuracy": 0.5}
    assert logged.info.status == "FINISHED"


def test_a_worker_that_dies_is_reported_where_the_run_is_needed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(tracking.sys, "executable", "/bin/false")  # the worker exits at once
    run = tracking.TrackedRun.start(job_environment("sqlite:///unused.db"))
    assert run is not None
    with pytest.raises(tracking.TrackingError, match="the tracking worker exited with status 1"):
        run.run_id()
    assert run.finish() == []


def test_a_job_that_fails_before_its_run_leaves_no_worker(tmp_path: Path) -> None:
    # train.py run as a job script starts its worker before its imports; refused
    # hyperparameters end the job before the run is opened: the worker goes with it.
    env = {
        **job_environment(f"sqlite:///{tmp_path / 'mlflow.db'}"),
        "PATH": "/usr/bin:/bin",
        "SM_HPS": json.dumps({"epochs": "3"}),
        "SM_OUTPUT_DIR": str(tmp_path),
    }
    code = tmp_path / "code"  # the job's code directory: train.py's bundle, as downloaded
    code.mkdir()
    for name, path in BUNDLES["train.py"].items():
        (code / name).write_bytes(path.read_bytes())
    job = subprocess.Popen(
        [sys.executable, str(code / "train.py"), "train"],
        env=env,
        start_new_session=True,
        cwd=tmp_path,
    )
    assert job.wait(timeout=60) == 1
    with pytest.raises(ProcessLookupError):  # nothing of the job's process group is left
        os.killpg(job.pid, 0)
    assert "mean nothing to the tfidf-linear trainer" in (tmp_path / "failure").read_text()
