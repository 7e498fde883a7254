"""Scoring a model on the test split: its files, the test notes and the one scorer.

The model input is the training job's `model.tar.gz` (or an unpacked model directory):
`model.joblib` (the estimator, predicting class ids), `labels.json` (a class id is its
index) and, when train-model wrote it, `model.json` (the train split's majority label,
the MLflow run). The scores are accuracy, macro-F1 and weighted F1 (`METRICS`). Test rows
whose `labels` column lists several labels (preprocess `--conflicts keep-all`) count a
prediction of any of them as right. evaluate-model judges the challenger, and
champions.py the champion, with `score`: the same notes, the same numbers.

Part of evaluate.py's code bundle (stdlib + numpy/pandas/scikit-learn/joblib).
"""

from __future__ import annotations

import json
import tarfile
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, f1_score

if __package__:  # imported as ml.steps.scoring (tests, the local tools)
    from ml import limits
else:  # a job: limits.py is beside it (its code bundle, ml/pipeline/code.py)
    import limits  # type: ignore[no-redef]

MODEL_FILE = "model.joblib"
LABELS_FILE = "labels.json"
METADATA_FILE = "model.json"
METRICS = limits.APPROVAL_METRICS


class EvaluationError(ValueError):
    """The model or the evaluation data cannot be used; the message says why."""


def unpack_model(model_dir: Path, scratch: Path) -> Path:
    """The directory holding model.joblib: `model_dir` itself or its unpacked model.tar.gz."""
    if (model_dir / MODEL_FILE).is_file():
        return model_dir
    archive = model_dir / "model.tar.gz"
    if not archive.is_file():
        raise EvaluationError(f"{model_dir}: neither {MODEL_FILE} nor model.tar.gz found")
    with tarfile.open(archive, "r:gz") as tar:
        tar.extractall(scratch, filter="data")
    if not (scratch / MODEL_FILE).is_file():
        raise EvaluationError(f"{archive}: the archive has no {MODEL_FILE}")
    return scratch


def load_model(model_dir: Path) -> tuple[Any, list[str], str | None]:
    """The estimator, its labels and the train split's majority label (None if unknown)."""
    labels: list[str] = json.loads((model_dir / LABELS_FILE).read_text())
    # Our own training job's artifact, from this pipeline's artifacts bucket.
    model = joblib.load(model_dir / MODEL_FILE)
    majority = None
    if (model_dir / METADATA_FILE).is_file():
        majority = json.loads((model_dir / METADATA_FILE).read_text()).get("majority_label")
    return model, labels, majority


def read_metadata(model_dir: Path) -> dict[str, Any]:
    """model.json of an unpacked model ({} without one)."""
    path = model_dir / METADATA_FILE
    document: dict[str, Any] = json.loads(path.read_text()) if path.is_file() else {}
    return document


def read_test(test_dir: Path) -> pd.DataFrame:
    """The test split: every CSV in `test_dir`, columns text, label[, labels]."""
    files = sorted(test_dir.glob("*.csv"))
    if not files:
        raise EvaluationError(f"{test_dir}: no test CSV found")
    # keep_default_na=False: a note (or label) reading "NA", "N/A" or "null" is text, not NaN.
    frame = pd.concat(
        [
            pd.read_csv(path, dtype={"text": str, "label": str}, keep_default_na=False)
            for path in files
        ]
    )
    missing = {"text", "label"} - set(frame.columns)
    if missing:
        raise EvaluationError(f"test data lacks column(s) {sorted(missing)}")
    if frame.empty:
        raise EvaluationError("test data is empty: nothing to evaluate")
    return frame.reset_index(drop=True)


def references(test: pd.DataFrame, predicted: list[str]) -> list[str]:
    """The label each prediction is scored against: itself if it is one of the note's labels."""
    if "labels" not in test.columns:
        return [str(label) for label in test["label"]]
    accepted = [
        set(json.loads(raw)) if raw else {label}
        for raw, label in zip(test["labels"], test["label"], strict=True)
    ]
    return [
        guess if guess in allowed else label
        for guess, allowed, label in zip(predicted, accepted, test["label"], strict=True)
    ]


def score_predictions(reference: list[str], predicted: list[str]) -> dict[str, float]:
    """Every metric of `METRICS` for `predicted` against `reference`."""
    return {
        "accuracy": float(accuracy_score(reference, predicted)),
        "macro_f1": float(f1_score(reference, predicted, average="macro", zero_division=0)),
        "weighted_f1": float(f1_score(reference, predicted, average="weighted", zero_division=0)),
    }


def predictions(model: Any, labels: list[str], test: pd.DataFrame) -> tuple[list[str], list[str]]:
    """(predicted label, reference label) per test note: what every score here compares."""
    ids = np.asarray(model.predict(test["text"].tolist()), dtype=int)
    if len(ids) and (ids.min() < 0 or ids.max() >= len(labels)):
        raise EvaluationError(f"the model predicts class ids outside its {len(labels)} labels")
    predicted = [labels[i] for i in ids]
    return predicted, references(test, predicted)


def score(model: Any, labels: list[str], test: pd.DataFrame) -> dict[str, float]:
    """The scorer the challenger and the champion are both judged by, on the same notes."""
    predicted, reference = predictions(model, labels, test)
    return score_predictions(reference, predicted)
