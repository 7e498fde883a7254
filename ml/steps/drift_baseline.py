"""The drift baseline evaluate-model writes beside evaluation.json (`drift_baseline.json`).

What the drift monitor (ml/monitoring) compares an endpoint's captured traffic with: on
the test split, the predicted-class shares, the histogram of the endpoint's `score`
(computed as ml/serving/inference.py's predict_fn does), the note-length histogram
(tokens) and, with the train split's texts, the histogram of each note's share of words
outside the training vocabulary, with that vocabulary as a bitmap of hashed words (see
ml/monitoring/baseline.py for the format and why a bitmap).

The monitor (ml/monitoring/baseline.py) reads this document; it cannot import this file
nor this file it, so tests/ml/test_drift_baseline.py holds both sides' features equal.

Part of evaluate.py's code bundle (stdlib + numpy/pandas/scikit-learn).
"""

from __future__ import annotations

import base64
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.feature_extraction.text import HashingVectorizer

if __package__:  # imported as ml.steps.drift_baseline (tests, the local tools)
    from ml.steps import scoring
else:  # in the job: its modules are beside it (evaluate.py's code bundle, ml/pipeline/code.py)
    import scoring  # type: ignore[no-redef]

DRIFT_BASELINE_FILE = "drift_baseline.json"
DRIFT_FORMAT = "promote-code/drift-baseline"
DRIFT_VERSION = 1
VOCABULARY_BUCKETS = 2**20
DECILES = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
OOV_CUTS = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5)
"""Fixed OOV bins: most evaluation notes have almost no unknown words, so quantile cuts
would collapse into one bin; these resolve small rates and still catch a foreign domain."""
DEFAULT_WORD_PATTERN = r"(?u)\b\w\w+\b"


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
        raise scoring.EvaluationError(f"{train_dir}: no train CSV found (--train-dir)")
    frames = [
        pd.read_csv(path, dtype={"text": str}, keep_default_na=False, usecols=["text"])
        for path in files
    ]
    return [str(text) for frame in frames for text in frame["text"]]
