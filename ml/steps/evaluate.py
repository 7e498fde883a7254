"""evaluate-model: score the trained model on the held-out test split.

Writes `evaluation.json` in SageMaker's model-quality format, so the registry
shows it and the pipeline's `accuracy-check` reads
`multiclass_classification_metrics.accuracy.value` from it (PropertyFile).

Besides accuracy it reports macro-F1, weighted F1 and per-class F1, the same metrics
for a majority-class baseline (the most frequent train label, from model.json), and an
`approval` block: the model passes when `--metric` (default macro_f1) is at least
`--threshold` AND beats the baseline's value by at least `--baseline-margin` AND (with
`--model-package-group`) falls short of the group's champion by at most
`--champion-tolerance`. `summary` says in words whether the model is approved and why.
Test rows whose `labels` column lists several labels (preprocess `--conflicts
keep-all`) count a prediction of any of them as right.

Champion/challenger: the champion is the group's newest `Approved` package
(ListModelPackages, newest CreationTime first); its ModelDataUrl archive is scored on
the same test split with the same scorer. The `champion` block holds its ARN and value
(null without one), the challenger's value, `shortfall` = champion - challenger (0.0
without a champion; negative when the challenger is better), the tolerance and
`passed`. No champion, or one whose archive cannot be downloaded (deleted, refused):
judged by the threshold and baseline alone, the report says why. A champion archive
that downloads but cannot be unpacked, loaded or run (corrupt, or pickled by an
incompatible scikit-learn) gets `shortfall` = UNSCORABLE_SHORTFALL (more than any
tolerance): the challenger is registered but not approved automatically, because
nobody can tell whether it is worse than what is served. A registry that cannot be
listed fails the step: the guard would otherwise be off without anyone noticing.

Lineage: a `lineage` block whose keys are ml/lineage.py's METADATA_KEYS, string values
("none" when absent), which the register step copies into the package's
CustomerMetadataProperties: commit and training image (`PROMOTE_COMMIT`,
`PROMOTE_TRAINING_IMAGE`), the train split's data hash (`input_sha256` of
`--train-dir`'s data_report.json), the MLflow run and tracking server, the metric,
its value and the champion's value.

MLflow: with `MLFLOW_TRACKING_URI` set, the step resumes the run train-model created
(`mlflow_run_id` in model.json; a new run named after the pipeline execution if
there is none) and logs the scores, the baseline's, the champion's, the approval
parameters, and as artifacts evaluation.json, a classification report, a
confusion-matrix PNG and the model archive (`log_artifact` only: the execution role
may call the run, metric, param and tag APIs, not the model registry's). A run that
cannot be opened fails the step (every run is tracked, or the pipeline says so);
a logging call that fails after that is a warning line (the run exists, the model
is evaluated). Without the variable, mlflow is never imported.

The model input is the training job's `model.tar.gz` (or an unpacked model
directory). A test label the model was never trained on is an error, not a
silent miss: it means the splits or the label set are wrong.

It also writes `drift_baseline.json`, what the drift monitor (ml/monitoring) compares
an endpoint's captured traffic with: on the test split, the predicted-class shares, the
histogram of the endpoint's `score` (computed as ml/serving/inference.py's predict_fn
does), the note-length histogram (tokens) and, with `--train-dir`, the histogram of each
note's share of words outside the training vocabulary, with that vocabulary as a bitmap
of hashed words (see ml/monitoring/baseline.py for the format and why a bitmap).

Code bundle: this file and tracking.py (stdlib + numpy/pandas/scikit-learn/joblib, boto3
for the champion; mlflow and matplotlib in tracking.py's worker when tracked), uploaded
side by side and run as is.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import sys
import tarfile
import tempfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.metrics import accuracy_score, classification_report, confusion_matrix, f1_score

if __package__:  # imported as ml.steps.evaluate (tests, the local tools)
    from ml.steps import tracking
else:  # the job's script: tracking.py is beside it (its code bundle, ml/pipeline/code.py)
    import tracking  # type: ignore[no-redef]

MODEL_FILE = "model.joblib"
LABELS_FILE = "labels.json"
EVALUATION_FILE = "evaluation.json"
METADATA_FILE = "model.json"
METRICS = ("macro_f1", "accuracy", "weighted_f1")
DEFAULT_METRIC = "macro_f1"
DEFAULT_THRESHOLD = 0.2
DEFAULT_BASELINE_MARGIN = 0.1
DEFAULT_CHAMPION_TOLERANCE = 0.01
UNSCORABLE_SHORTFALL = 2.0
"""`champion.shortfall` of a champion that exists but cannot be scored: above any
tolerance (at most 1), so accuracy-check leaves the challenger for a person."""
SUMMARY_MAX = 1024
"""CreateModelPackage's ModelPackageDescription (the summary lands there) holds 1024."""
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


def predictions(model: Any, labels: list[str], test: pd.DataFrame) -> tuple[list[str], list[str]]:
    """(predicted label, reference label) per test note: what every score here compares."""
    ids = np.asarray(model.predict(test["text"].tolist()), dtype=int)
    if len(ids) and (ids.min() < 0 or ids.max() >= len(labels)):
        raise EvaluationError(f"the model predicts class ids outside its {len(labels)} labels")
    predicted = [labels[i] for i in ids]
    return predicted, _references(test, predicted)


def score(model: Any, labels: list[str], test: pd.DataFrame) -> dict[str, float]:
    """The scorer the challenger and the champion are both judged by, on the same notes."""
    predicted, reference = predictions(model, labels, test)
    return _scores(reference, predicted)


@dataclass(frozen=True)
class Champion:
    """The group's newest approved package, as far as it could be read and scored."""

    status: str
    """'none' (no approved package), 'scored', 'unreadable' (its archive could not be
    downloaded) or 'corrupt' (downloaded, but it cannot be unpacked, loaded or run)."""
    model_package_arn: str | None = None
    scores: Mapping[str, float] | None = None
    note: str = ""
    """Why it was not scored (empty when scored)."""


NO_CHAMPION = Champion("none", note="no approved package in the group yet")


def evaluate(
    model: Any,
    labels: list[str],
    test: pd.DataFrame,
    majority: str | None = None,
    *,
    metric: str = DEFAULT_METRIC,
    threshold: float = DEFAULT_THRESHOLD,
    baseline_margin: float = DEFAULT_BASELINE_MARGIN,
    champion: Champion = NO_CHAMPION,
    champion_tolerance: float = DEFAULT_CHAMPION_TOLERANCE,
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
    predicted, reference = predictions(model, labels, test)
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
    duel = champion_block(champion, metric, value, champion_tolerance)
    checks = {
        "threshold": value >= threshold,
        "baseline": comparison[metric]["margin"] >= baseline_margin,
        "champion": duel["passed"],
    }
    passed = all(checks.values())
    approval = {
        "metric": metric,
        "value": value,
        "threshold": threshold,
        "baseline": base_scores[metric],
        "baseline_margin": baseline_margin,
        "required": required,
        "margin_over_required": value - required,
        "champion_tolerance": champion_tolerance,
        "checks": checks,
        "passed": passed,
    }
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
        "better_than_baseline": comparison[metric]["margin"] > 0,
        "champion": duel,
        "approval": approval,
        "summary": summarize(approval, base_label, duel),
        "test_notes": len(test),
        "scoring": "any listed label" if "labels" in test.columns else "single label",
    }


def champion_block(
    champion: Champion, metric: str, challenger: float, tolerance: float
) -> dict[str, Any]:
    """The `champion` block: what accuracy-check compares (`shortfall` <= tolerance)."""
    value = None
    if champion.status == "scored" and champion.scores is not None:
        value = float(champion.scores[metric])
        shortfall = value - challenger
    elif champion.status == "corrupt":
        shortfall = UNSCORABLE_SHORTFALL
    else:  # none, unreadable: judged by the threshold and the baseline alone
        shortfall = 0.0
    return {
        "model_package_arn": champion.model_package_arn,
        "status": champion.status,
        "metric": metric,
        "value": value,
        "scores": None if champion.scores is None else dict(champion.scores),
        "challenger": challenger,
        "shortfall": shortfall,
        "tolerance": tolerance,
        # The same comparison accuracy-check makes on the same floats.
        "passed": shortfall <= tolerance,
        "note": champion.note,
    }


def summarize(approval: Mapping[str, Any], base_label: str, duel: Mapping[str, Any]) -> str:
    """Whether the challenger is approved and why, in one line (failing reasons first)."""
    metric, value = approval["metric"], approval["value"]
    threshold, margin = approval["threshold"], approval["baseline_margin"]
    base = approval["baseline"]
    over = value - base
    checks = approval["checks"]
    reasons = {
        "threshold": f"{metric} {value:.3f} "
        + ("meets" if checks["threshold"] else "fails")
        + f" the threshold {threshold:g}",
        "baseline": (
            f"{over:.3f} above the majority baseline ({base_label}) {base:.3f}, "
            + ("at least" if checks["baseline"] else "less than")
            + f" the margin {margin:g}"
            if over > 0
            else f"NOT better than the majority baseline ({base_label}) {base:.3f}"
        ),
        "champion": _champion_reason(metric, value, duel),
    }
    failing = [reasons[name] for name in reasons if not checks[name]]
    passing = [reasons[name] for name in reasons if checks[name]]
    verdict = "approved" if approval["passed"] else "not approved"
    summary = f"{verdict}: " + "; ".join(failing + passing)
    # One line in the registry's description: no control characters, at most 1024.
    summary = re.sub(r"[\x00-\x1f\x7f]+", " ", summary)
    return summary if len(summary) <= SUMMARY_MAX else summary[: SUMMARY_MAX - 3] + "..."


def _champion_reason(metric: str, value: float, duel: Mapping[str, Any]) -> str:
    arn, status, tolerance = duel["model_package_arn"], duel["status"], duel["tolerance"]
    if status == "none":
        return "no approved champion in the group: judged by the threshold and baseline alone"
    if status == "unreadable":
        return (
            f"the champion {arn} could not be read ({duel['note']}): "
            "judged by the threshold and baseline alone"
        )
    if status == "corrupt":
        return f"the champion {arn} could not be scored ({duel['note']}): left for manual approval"
    shortfall, champion = duel["shortfall"], duel["value"]
    if shortfall <= 0:
        return f"{-shortfall:.3f} above the champion ({arn}, {champion:.3f})"
    if duel["passed"]:
        return (
            f"{shortfall:.3f} below the champion ({arn}, {champion:.3f}), "
            f"within the tolerance {tolerance:g}"
        )
    return (
        f"{metric} {value:.3f} is {shortfall:.3f} below the champion ({arn}, {champion:.3f}), "
        f"more than the tolerance {tolerance:g}"
    )


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


# -- champion ----------------------------------------------------------------------------


class ChampionError(EvaluationError):
    """The registry could not be asked for the group's approved packages."""


@dataclass(frozen=True)
class Registry:
    """The AWS clients the champion lookup needs (boto3's, or a test's)."""

    sagemaker: Any
    s3: Any


def newest_approved(sagemaker: Any, group: str) -> Mapping[str, Any] | None:
    """The summary of the group's newest Approved package, None if it has none."""
    try:
        response = sagemaker.list_model_packages(
            ModelPackageGroupName=group,
            ModelApprovalStatus="Approved",
            SortBy="CreationTime",
            SortOrder="Descending",
            MaxResults=10,
        )
    except Exception as error:  # botocore's errors, by shape: a one-line reason
        raise ChampionError(
            f"--model-package-group {group}: cannot list its approved packages "
            f"({tracking.one_line(error)}); the job's role needs sagemaker:ListModelPackages on it"
        ) from None
    summaries = response.get("ModelPackageSummaryList") or []
    if not summaries:
        return None
    # Newest first already; the version breaks a tie of timestamps.
    newest: Mapping[str, Any] = max(
        summaries, key=lambda s: (s.get("CreationTime"), int(s.get("ModelPackageVersion") or 0))
    )
    return newest


def _s3_location(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://") or "/" not in uri[len("s3://") :]:
        raise ValueError(f"not an s3:// object URI: {uri!r}")
    bucket, _, key = uri[len("s3://") :].partition("/")
    return bucket, key


def find_champion(registry: Registry, group: str, test: pd.DataFrame, scratch: Path) -> Champion:
    """The group's newest approved package, scored on `test` with `score`."""
    summary = newest_approved(registry.sagemaker, group)
    if summary is None:
        return NO_CHAMPION
    arn = str(summary["ModelPackageArn"])
    try:
        package = registry.sagemaker.describe_model_package(ModelPackageName=arn)
        containers = (package.get("InferenceSpecification") or {}).get("Containers") or []
        url = next((c["ModelDataUrl"] for c in containers if c.get("ModelDataUrl")), None)
        if url is None:
            return Champion("unreadable", arn, note="the package has no ModelDataUrl")
        bucket, key = _s3_location(str(url))
        body = registry.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except Exception as error:  # deleted, refused, malformed: the champion cannot be read
        return Champion("unreadable", arn, note=tracking.one_line(error))
    packed = scratch / "champion"
    packed.mkdir(parents=True, exist_ok=True)
    (packed / "model.tar.gz").write_bytes(body)
    try:
        # The group's own approved package, from this stack's artifacts bucket.
        model, labels, _ = load_model(unpack_model(packed, scratch / "champion-model"))
        scores = score(model, labels, test)
    except Exception as error:  # tar, pickle, scikit-learn or shape: it cannot be scored
        return Champion("corrupt", arn, note=f"{type(error).__name__}: {tracking.one_line(error)}")
    return Champion("scored", arn, scores=scores)


# -- lineage -------------------------------------------------------------------------------
LINEAGE_KEYS = (
    "commit",
    "training_image",
    "data_sha256",
    "mlflow_run_id",
    "mlflow_tracking_arn",
    "metric",
    "metric_value",
    "champion_metric_value",
)
"""ml/lineage.py METADATA_KEYS (tests/ml/test_tracking.py holds them equal)."""
ABSENT = tracking.ABSENT
"""SageMaker refuses an empty CustomerMetadataProperties value."""
_TRACKING_ARN = re.compile(
    r"^arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:\d{12}:mlflow-tracking-server/[A-Za-z0-9-]+$"
)


def lineage(
    environ: Mapping[str, str], report: Mapping[str, Any], data_hash: str, run_id: str | None
) -> dict[str, str]:
    """The facts the register step copies into CustomerMetadataProperties (all strings)."""
    uri = environ.get(tracking.ENV_TRACKING_URI, "")
    champion = report["champion"]["value"]
    facts = {
        "commit": environ.get(tracking.ENV_COMMIT, ""),
        "training_image": environ.get(tracking.ENV_TRAINING_IMAGE, ""),
        "data_sha256": data_hash,
        "mlflow_run_id": run_id or "",
        "mlflow_tracking_arn": uri if _TRACKING_ARN.match(uri) else "",
        "metric": report["approval"]["metric"],
        "metric_value": f"{report['approval']['value']:.6f}",
        "champion_metric_value": "" if champion is None else f"{champion:.6f}",
    }
    return {key: facts[key] or ABSENT for key in LINEAGE_KEYS}


# -- MLflow --------------------------------------------------------------------------------
def _metric_names(labels: list[str]) -> dict[str, str]:
    """`f1.<label>` per label, in MLflow's allowed characters, distinct."""
    names: dict[str, str] = {}
    for label in labels:
        # "Cardiovascular / Pulmonary" -> "f1.Cardiovascular_Pulmonary" (a slash would
        # group metrics in the UI and may make the name a path).
        name = "f1." + re.sub(r"\s*[^A-Za-z0-9_.\- ]+\s*", "_", label).strip()
        while name in names.values():
            name += "_"
        names[label] = name
    return names


def run_metrics(report: Mapping[str, Any]) -> dict[str, float]:
    """The scores, per-class F1, the baseline's and the champion's, as MLflow metrics."""
    scores = report["multiclass_classification_metrics"]
    metrics = {name: float(scores[name]["value"]) for name in METRICS}
    per_class = report["per_class_f1"]
    names = _metric_names(sorted(per_class))
    metrics |= {names[label]: float(value) for label, value in per_class.items()}
    metrics |= {f"baseline.{name}": float(report["baseline"][name]) for name in METRICS}
    champion = report["champion"]
    if champion["value"] is not None:
        metrics["champion.value"] = float(champion["value"])
    metrics["champion.shortfall"] = float(champion["shortfall"])
    return metrics


def classification_text(report: Mapping[str, Any]) -> str:
    """The summary and scikit-learn's classification report, from the confusion matrix
    (the counts are all the report needs: no second prediction pass)."""
    rows = report["multiclass_classification_metrics"]["confusion_matrix"]
    reference = [r for r, row in rows.items() for c, n in row.items() for _ in range(n)]
    guess = [c for row in rows.values() for c, n in row.items() for _ in range(n)]
    labels = sorted(rows)
    text: str = classification_report(reference, guess, labels=labels, zero_division=0, digits=3)
    return f"{report['summary']}\n\n{text}"


def log_evaluation(
    run: tracking.TrackedRun,
    report: Mapping[str, Any],
    *,
    parameters: Mapping[str, Any],
    tags: Mapping[str, str],
    artifacts: list[Path],
    scratch: Path,
) -> None:
    """Metrics, parameters, tags, the artifacts, the report and the confusion matrix PNG."""
    run.log_batch(
        "metrics, parameters and tags", metrics=run_metrics(report), params=parameters, tags=tags
    )
    text = scratch / "classification_report.txt"
    text.write_text(classification_text(report))
    for path in [*artifacts, text]:
        folder = "model" if path.name in {"model.tar.gz", MODEL_FILE} else None
        run.log_artifact(path, folder)
    run.log_confusion_matrix(
        report["multiclass_classification_metrics"]["confusion_matrix"],
        f"confusion matrix ({report['test_notes']} test notes)",
        scratch / "confusion_matrix.png",
    )


# -- the step ------------------------------------------------------------------------------


def read_metadata(model_dir: Path) -> dict[str, Any]:
    path = model_dir / METADATA_FILE
    document: dict[str, Any] = json.loads(path.read_text()) if path.is_file() else {}
    return document


def run(
    model_dir: Path,
    test_dir: Path,
    output_dir: Path,
    *,
    metric: str = DEFAULT_METRIC,
    threshold: float = DEFAULT_THRESHOLD,
    baseline_margin: float = DEFAULT_BASELINE_MARGIN,
    train_dir: Path | None = None,
    model_package_group: str | None = None,
    champion_tolerance: float = DEFAULT_CHAMPION_TOLERANCE,
    registry: Registry | None = None,
    environ: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Write evaluation.json and drift_baseline.json; return the evaluation report.

    With `model_package_group`, the group's champion is looked up with `registry`
    (default: boto3 clients for the environment's region and endpoint). With
    `MLFLOW_TRACKING_URI` in `environ` (default os.environ), the run is logged.
    """
    env = os.environ if environ is None else environ
    if not 0 <= champion_tolerance <= 1:
        raise EvaluationError(f"--champion-tolerance must be 0-1, got {champion_tolerance}")
    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        unpacked = unpack_model(model_dir, scratch / "model")
        model, labels, majority = load_model(unpacked)
        # The worker resumes the run while the job scores; an unopenable run fails the step
        # before anything is written.
        run = tracking.TrackedRun.start(
            env,
            run_id=read_metadata(unpacked).get("mlflow_run_id"),
            untracked_hint="evaluate untracked",
        )
        try:
            test = read_test(test_dir)
            champion = NO_CHAMPION
            if model_package_group:
                registry = registry or _boto3_registry(env)
                champion = find_champion(registry, model_package_group, test, scratch)
            report = evaluate(
                model,
                labels,
                test,
                majority,
                metric=metric,
                threshold=threshold,
                baseline_margin=baseline_margin,
                champion=champion,
                champion_tolerance=champion_tolerance,
            )
            train_texts = None if train_dir is None else read_train_texts(train_dir)
            baseline = drift_baseline(model, labels, test, train_texts)
            data_hash = tracking.data_sha256(train_dir)
            run_id = None if run is None else run.run_id()
            report["lineage"] = lineage(env, report, data_hash, run_id)
            output_dir.mkdir(parents=True, exist_ok=True)
            evaluation = output_dir / EVALUATION_FILE
            evaluation.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
            (output_dir / DRIFT_BASELINE_FILE).write_text(
                json.dumps(baseline, indent=2, sort_keys=True) + "\n"
            )
        except BaseException:
            if run is not None:
                run.finish("FAILED")
            raise
        if run is not None:
            parameters = {
                "approval_metric": metric,
                "metric_threshold": threshold,
                "baseline_margin": baseline_margin,
                "champion_tolerance": champion_tolerance,
                "model_package_group": model_package_group or ABSENT,
            }
            archive = model_dir / "model.tar.gz"
            # The drift baseline goes with the run too (issue 14): what the monitor compares with.
            artifacts = [
                evaluation,
                output_dir / DRIFT_BASELINE_FILE,
                archive if archive.is_file() else unpacked / MODEL_FILE,
            ]
            log_evaluation(
                run,
                report,
                parameters=parameters,
                tags=tracking.run_tags(env, data_hash),
                artifacts=artifacts,
                scratch=scratch,
            )
            run.finish()
    return report


def _boto3_registry(environ: Mapping[str, str]) -> Registry:
    import boto3  # noqa: PLC0415 - only with --model-package-group

    # Region and endpoint from the job's environment (AWS_DEFAULT_REGION; locally
    # AWS_ENDPOINT_URL points at moto), as every boto3 client reads them.
    session = boto3.session.Session(region_name=environ.get("AWS_DEFAULT_REGION"))
    return Registry(session.client("sagemaker"), session.client("s3"))


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
        help="the train split: its words are the drift baseline's vocabulary (no OOV without), "
        "its data_report.json the dataset hash",
    )
    parser.add_argument(
        "--model-package-group",
        default=None,
        help="score the group's newest Approved package (the champion) on the same test split",
    )
    parser.add_argument(
        "--champion-tolerance",
        type=float,
        default=DEFAULT_CHAMPION_TOLERANCE,
        help="how far below the champion the model may score and still be approved",
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
            model_package_group=args.model_package_group,
            champion_tolerance=args.champion_tolerance,
        )
    except (EvaluationError, tracking.TrackingError, OSError) as error:
        print(f"evaluate-model failed: {error}", file=sys.stderr)
        return 1
    accuracy = report["multiclass_classification_metrics"]["accuracy"]["value"]
    print(f"accuracy={accuracy:.6f} test_notes={report['test_notes']}")
    print(report["summary"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
