"""evaluate-model: score the trained model on the held-out test split.

Writes `evaluation.json` in SageMaker's model-quality format, so the registry
shows it and the pipeline's `accuracy-check` reads
`multiclass_classification_metrics.accuracy.value` from it (PropertyFile).

Besides accuracy it reports macro-F1, weighted F1 and per-class F1, the same metrics
for a majority-class baseline (the most frequent train label, from model.json), and an
`approval` block: the model passes when `--metric` (default macro_f1) is at least
`--threshold` AND beats the baseline's value by at least `--baseline-margin`. The
report says in `summary` when the model is not better than the baseline. Test rows
whose `labels` column lists several labels (preprocess `--conflicts keep-all`) count a
prediction of any of them as right.

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
METADATA_FILE = "model.json"
METRICS = ("macro_f1", "accuracy", "weighted_f1")
DEFAULT_METRIC = "macro_f1"
DEFAULT_THRESHOLD = 0.2
DEFAULT_BASELINE_MARGIN = 0.1


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


def _references(test: pd.DataFrame, predicted: list[str]) -> list[str]:
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


def _scores(reference: list[str], predicted: list[str]) -> dict[str, float]:
    return {
        "accuracy": float(accuracy_score(reference, predicted)),
        "macro_f1": float(f1_score(reference, predicted, average="macro", zero_division=0)),
        "weighted_f1": float(f1_score(reference, predicted, average="weighted", zero_division=0)),
    }


def evaluate(
    model: Any,
    labels: list[str],
    test: pd.DataFrame,
    majority: str | None = None,
    *,
    metric: str = DEFAULT_METRIC,
    threshold: float = DEFAULT_THRESHOLD,
    baseline_margin: float = DEFAULT_BASELINE_MARGIN,
) -> dict[str, Any]:
    """The evaluation report for `model` on `test` (columns text, label[, labels])."""
    if metric not in METRICS:
        raise EvaluationError(f"--metric must be one of {list(METRICS)}, got {metric!r}")
    index = {label: position for position, label in enumerate(labels)}
    unknown = sorted(set(test["label"]) - set(index))
    if unknown:
        raise EvaluationError(
            f"test data has label(s) the model was not trained on: {unknown}; "
            f"the model knows {labels}"
        )
    ids = np.asarray(model.predict(test["text"].tolist()), dtype=int)
    predicted = [labels[i] for i in ids]
    reference = _references(test, predicted)
    present = sorted(set(reference) | set(predicted))
    matrix = confusion_matrix(reference, predicted, labels=present)
    per_label = f1_score(reference, predicted, labels=present, average=None, zero_division=0)
    scores = _scores(reference, predicted)
    base_label = majority if majority in index else str(test["label"].mode().iloc[0])
    base_predicted = [base_label] * len(test)
    base_scores = _scores(_references(test, base_predicted), base_predicted)
    baseline: dict[str, Any] = {"label": base_label, **base_scores}
    comparison = {
        name: {
            "model": scores[name],
            "baseline": base_scores[name],
            "margin": scores[name] - base_scores[name],
        }
        for name in METRICS
    }
    value = scores[metric]
    required = max(threshold, base_scores[metric] + baseline_margin)
    passed = value >= threshold and comparison[metric]["margin"] >= baseline_margin
    better = comparison[metric]["margin"] > 0
    summary = (
        f"{metric} {value:.3f} vs majority baseline ({base_label}) {base_scores[metric]:.3f}: "
        + ("better than the baseline" if better else "NOT better than the baseline")
        + f"; needs >= {threshold:g} and baseline + {baseline_margin:g}: "
        + ("passes" if passed else "fails")
    )
    return {
        "multiclass_classification_metrics": {
            **{
                name: {"value": scores[name], "standard_deviation": 0}
                for name in ("accuracy", "weighted_f1", "macro_f1")
            },
            "confusion_matrix": {
                row: {col: int(matrix[i][j]) for j, col in enumerate(present)}
                for i, row in enumerate(present)
            },
        },
        "per_label_f1": {p: float(v) for p, v in zip(present, per_label, strict=True)},
        "per_class_f1": {p: float(v) for p, v in zip(present, per_label, strict=True)},
        "baseline": baseline,
        "baseline_comparison": comparison,
        "better_than_baseline": better,
        "approval": {
            "metric": metric,
            "value": value,
            "threshold": threshold,
            "baseline": base_scores[metric],
            "baseline_margin": baseline_margin,
            "required": required,
            "margin_over_required": value - required,
            "passed": passed,
        },
        "summary": summary,
        "test_notes": len(test),
        "scoring": "any listed label" if "labels" in test.columns else "single label",
    }


def run(
    model_dir: Path,
    test_dir: Path,
    output_dir: Path,
    *,
    metric: str = DEFAULT_METRIC,
    threshold: float = DEFAULT_THRESHOLD,
    baseline_margin: float = DEFAULT_BASELINE_MARGIN,
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as scratch:
        model, labels, majority = load_model(unpack_model(model_dir, Path(scratch)))
        report = evaluate(
            model,
            labels,
            read_test(test_dir),
            majority,
            metric=metric,
            threshold=threshold,
            baseline_margin=baseline_margin,
        )
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
    parser.add_argument("--metric", choices=METRICS, default=DEFAULT_METRIC)
    parser.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD)
    parser.add_argument("--baseline-margin", type=float, default=DEFAULT_BASELINE_MARGIN)
    args = parser.parse_args(argv)
    try:
        report = run(
            args.model_dir,
            args.test_dir,
            args.output_dir,
            metric=args.metric,
            threshold=args.threshold,
            baseline_margin=args.baseline_margin,
        )
    except (EvaluationError, OSError) as error:
        print(f"evaluate-model failed: {error}", file=sys.stderr)
        return 1
    accuracy = report["multiclass_classification_metrics"]["accuracy"]["value"]
    print(f"accuracy={accuracy:.6f} test_notes={report['test_notes']}")
    print(report["summary"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
