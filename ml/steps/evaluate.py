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

It also writes `drift_baseline.json`, what the drift monitor (ml/monitoring) compares
an endpoint's captured traffic with: on the test split, the predicted-class shares, the
histogram of the endpoint's `score` (computed as ml/serving/inference.py's predict_fn
does), the note-length histogram (tokens) and, with `--train-dir`, the histogram of each
note's share of words outside the training vocabulary, with that vocabulary as a bitmap
of hashed words (see ml/monitoring/baseline.py for the format and why a bitmap).

Self-contained (stdlib + numpy/pandas/scikit-learn/joblib): uploaded and run as is.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import tarfile
import tempfile
import zlib
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

MODEL_FILE = "model.joblib"
LABELS_FILE = "labels.json"
EVALUATION_FILE = "evaluation.json"
METADATA_FILE = "model.json"
METRICS = ("macro_f1", "accuracy", "weighted_f1")
DEFAULT_METRIC = "macro_f1"
DEFAULT_THRESHOLD = 0.2
DEFAULT_BASELINE_MARGIN = 0.1
DRIFT_BASELINE_FILE = "drift_baseline.json"
DRIFT_FORMAT = "promote-code/drift-baseline"
DRIFT_VERSION = 1
VOCABULARY_BUCKETS = 2**20
DECILES = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
OOV_CUTS = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5)
"""Fixed OOV bins: most evaluation notes have almost no unknown words, so quantile cuts
would collapse into one bin; these resolve small rates and still catch a foreign domain."""
DEFAULT_WORD_PATTERN = r"(?u)\b\w\w+\b"


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


# -- drift baseline ----------------------------------------------------------------------
# The monitor (ml/monitoring/baseline.py) reads this document; it cannot import this file
# nor this file it, so tests/ml/test_drift_baseline.py holds both sides' features equal.


def text_spec(model: Any) -> dict[str, Any]:
    """The tokenizer the model's own hashing step uses, and the vocabulary's hash space."""
    steps = getattr(model, "named_steps", {})
    hashing = steps.get("hashing") if isinstance(steps, dict) else None
    pattern = getattr(hashing, "token_pattern", None) or DEFAULT_WORD_PATTERN
    lowercase = getattr(hashing, "lowercase", True)
    return {"token_pattern": pattern, "lowercase": bool(lowercase), "buckets": VOCABULARY_BUCKETS}


def _word_counts(texts: list[str], spec: dict[str, Any]) -> Any:
    """Unigram counts per note in the spec's hash space (rows sum to token counts)."""
    return HashingVectorizer(
        token_pattern=spec["token_pattern"],
        lowercase=spec["lowercase"],
        n_features=spec["buckets"],
        ngram_range=(1, 1),
        alternate_sign=False,
        norm=None,
        dtype=np.float32,
    ).transform(texts)


def training_vocabulary(train_texts: list[str], spec: dict[str, Any]) -> np.ndarray:
    """Bool per hash bucket: some training word falls into it."""
    hit = np.zeros(spec["buckets"], dtype=bool)
    hit[np.unique(_word_counts(train_texts, spec).indices)] = True
    return hit


def note_features(
    texts: list[str], spec: dict[str, Any], vocabulary: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray | None, float, float]:
    """Per note: token count and OOV share; and the totals (tokens, tokens out of vocabulary)."""
    counts = _word_counts(texts, spec)
    lengths = np.asarray(counts.sum(axis=1), dtype=float).ravel()
    if vocabulary is None:
        return lengths, None, float(lengths.sum()), 0.0
    known = np.asarray(counts @ vocabulary.astype(np.float32), dtype=float).ravel()
    unknown = lengths - known
    rates = np.divide(unknown, lengths, out=np.zeros_like(lengths), where=lengths > 0)
    return lengths, rates, float(lengths.sum()), float(unknown.sum())


def served_predictions(model: Any, texts: list[str]) -> tuple[np.ndarray, np.ndarray | None]:
    """Class ids and the `score` the endpoint answers (None for a model with neither
    probabilities nor margins): the probability, else a softmax of the margins, as in
    ml/serving/inference.py predict_fn."""
    if hasattr(model, "predict_proba"):
        confidence = np.asarray(model.predict_proba(texts), dtype=float)
    elif hasattr(model, "decision_function"):
        margins = np.asarray(model.decision_function(texts), dtype=float)
        if margins.ndim == 1:  # two classes: one margin, positive for classes_[1]
            margins = np.column_stack([np.zeros_like(margins), margins])
        shifted = np.exp(margins - margins.max(axis=1, keepdims=True))
        confidence = shifted / shifted.sum(axis=1, keepdims=True)
    else:
        return np.asarray(model.predict(texts), dtype=int), None
    best = confidence.argmax(axis=1)
    ids = np.asarray(model.classes_)[best].astype(int)
    # predict_fn rounds the score to 6 decimals in the response; bin what it answers.
    return ids, np.round(confidence[np.arange(len(best)), best], 6)


def _histogram(values: np.ndarray, cuts: tuple[float, ...] | list[float]) -> dict[str, Any]:
    index = np.searchsorted(np.asarray(cuts, dtype=float), values, side="right")
    counts = np.bincount(index, minlength=len(cuts) + 1)
    return {
        "cuts": [float(c) for c in cuts],
        "shares": [float(c) / len(values) for c in counts],
        "mean": float(values.mean()),
    }


def _quantile_cuts(values: np.ndarray) -> list[float]:
    """Decile cuts of `values` (fewer when values tie): about a tenth of the notes per bin."""
    return sorted({round(float(q), 6) for q in np.quantile(values, DECILES)})


def encode_vocabulary(vocabulary: np.ndarray) -> str:
    return base64.b64encode(zlib.compress(np.packbits(vocabulary).tobytes(), 9)).decode("ascii")


def drift_baseline(
    model: Any, labels: list[str], test: pd.DataFrame, train_texts: list[str] | None = None
) -> dict[str, Any]:
    """The drift baseline of `model` on `test`; the OOV part needs the train split's texts."""
    texts = test["text"].tolist()
    spec = text_spec(model)
    vocabulary = None if train_texts is None else training_vocabulary(train_texts, spec)
    ids, scores = served_predictions(model, texts)
    counts = np.bincount(ids, minlength=len(labels))
    lengths, rates, tokens, unknown = note_features(texts, spec, vocabulary)
    length = _histogram(lengths, _quantile_cuts(lengths))
    length["median"] = float(np.median(lengths))
    document: dict[str, Any] = {
        "format": DRIFT_FORMAT,
        "version": DRIFT_VERSION,
        "evaluation_notes": len(texts),
        "predicted_class": {
            label: float(n) / len(texts) for label, n in zip(labels, counts, strict=True)
        },
        "confidence": None if scores is None else _histogram(scores, _quantile_cuts(scores)),
        "length": length,
        "text": spec,
        "oov": None,
        "vocabulary": None,
    }
    if vocabulary is not None and rates is not None:
        document["oov"] = {
            **_histogram(rates, OOV_CUTS),
            "token_rate": unknown / tokens if tokens else 0.0,
        }
        document["vocabulary"] = {
            "encoding": "numpy packbits, zlib, base64",
            "buckets_hit": int(vocabulary.sum()),
            "fill": float(vocabulary.mean()),
            "train_notes": len(train_texts or []),
            "data": encode_vocabulary(vocabulary),
        }
    return document


def read_train_texts(train_dir: Path) -> list[str]:
    """The notes of the train split (its CSVs' `text` column)."""
    files = sorted(train_dir.glob("*.csv"))
    if not files:
        raise EvaluationError(f"{train_dir}: no train CSV found (--train-dir)")
    frames = [
        pd.read_csv(path, dtype={"text": str}, keep_default_na=False, usecols=["text"])
        for path in files
    ]
    return [str(text) for frame in frames for text in frame["text"]]


def run(
    model_dir: Path,
    test_dir: Path,
    output_dir: Path,
    *,
    metric: str = DEFAULT_METRIC,
    threshold: float = DEFAULT_THRESHOLD,
    baseline_margin: float = DEFAULT_BASELINE_MARGIN,
    train_dir: Path | None = None,
) -> dict[str, Any]:
    """Write evaluation.json and drift_baseline.json; return the evaluation report."""
    with tempfile.TemporaryDirectory() as scratch:
        model, labels, majority = load_model(unpack_model(model_dir, Path(scratch)))
        test = read_test(test_dir)
        report = evaluate(
            model,
            labels,
            test,
            majority,
            metric=metric,
            threshold=threshold,
            baseline_margin=baseline_margin,
        )
        train_texts = None if train_dir is None else read_train_texts(train_dir)
        baseline = drift_baseline(model, labels, test, train_texts)
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / EVALUATION_FILE).write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    (output_dir / DRIFT_BASELINE_FILE).write_text(
        json.dumps(baseline, indent=2, sort_keys=True) + "\n"
    )
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
    parser.add_argument(
        "--train-dir",
        type=Path,
        default=None,
        help="the train split: its words are the drift baseline's vocabulary (no OOV without)",
    )
    args = parser.parse_args(argv)
    try:
        report = run(
            args.model_dir,
            args.test_dir,
            args.output_dir,
            metric=args.metric,
            threshold=args.threshold,
            baseline_margin=args.baseline_margin,
            train_dir=args.train_dir,
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
