"""evaluate-model: score the trained model on the held-out test split.

Writes `evaluation.json` in SageMaker's model-quality format, so the registry
shows it and the pipeline's `accuracy-check` reads
`multiclass_classification_metrics.accuracy.value` from it (PropertyFile).

The model input is the training job's `model.tar.gz` (or an unpacked model
directory). A test label the model was never trained on is an error, not a
silent miss: it means the splits or the label set are wrong.

Self-contained (stdlib + numpy/pandas/scikit-learn/joblib): uploaded and run as is.
"""

from __future__ import annotations

import argparse
import json
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

MODEL_FILE = "model.joblib"
LABELS_FILE = "labels.json"
EVALUATION_FILE = "evaluation.json"


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


def load_model(model_dir: Path) -> tuple[Any, list[str]]:
    labels: list[str] = json.loads((model_dir / LABELS_FILE).read_text())
    # Our own training job's artifact, from this pipeline's artifacts bucket.
    model = joblib.load(model_dir / MODEL_FILE)
    return model, labels


def read_test(test_dir: Path) -> pd.DataFrame:
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


def evaluate(model: Any, labels: list[str], test: pd.DataFrame) -> dict[str, Any]:
    """The evaluation report for `model` on `test` (columns text, label)."""
    index = {label: position for position, label in enumerate(labels)}
    unknown = sorted(set(test["label"]) - set(index))
    if unknown:
        raise EvaluationError(
            f"test data has label(s) the model was not trained on: {unknown}; "
            f"the model knows {labels}"
        )
    truth = test["label"].map(index).to_numpy(dtype=int)
    predicted = np.asarray(model.predict(test["text"].tolist()), dtype=int)
    present = sorted(set(truth) | set(predicted))
    matrix = confusion_matrix(truth, predicted, labels=present)
    per_label = f1_score(truth, predicted, labels=present, average=None, zero_division=0)
    return {
        "multiclass_classification_metrics": {
            "accuracy": {"value": float(accuracy_score(truth, predicted)), "standard_deviation": 0},
            "weighted_f1": {
                "value": float(f1_score(truth, predicted, average="weighted", zero_division=0)),
                "standard_deviation": 0,
            },
            "macro_f1": {
                "value": float(f1_score(truth, predicted, average="macro", zero_division=0)),
                "standard_deviation": 0,
            },
            "confusion_matrix": {
                labels[row]: {labels[col]: int(matrix[i][j]) for j, col in enumerate(present)}
                for i, row in enumerate(present)
            },
        },
        "per_label_f1": {labels[p]: float(v) for p, v in zip(present, per_label, strict=True)},
        "test_notes": len(test),
    }


def run(model_dir: Path, test_dir: Path, output_dir: Path) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as scratch:
        model, labels = load_model(unpack_model(model_dir, Path(scratch)))
        report = evaluate(model, labels, read_test(test_dir))
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / EVALUATION_FILE).write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=Path("/opt/ml/processing/input/model"))
    parser.add_argument("--test-dir", type=Path, default=Path("/opt/ml/processing/input/test"))
    parser.add_argument(
        "--output-dir", type=Path, default=Path("/opt/ml/processing/output/evaluation")
    )
    args = parser.parse_args(argv)
    try:
        report = run(args.model_dir, args.test_dir, args.output_dir)
    except (EvaluationError, OSError) as error:
        print(f"evaluate-model failed: {error}", file=sys.stderr)
        return 1
    accuracy = report["multiclass_classification_metrics"]["accuracy"]["value"]
    print(f"accuracy={accuracy:.6f} test_notes={report['test_notes']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
