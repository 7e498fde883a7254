"""train-model: fit a medical-specialty classifier on the preprocessed notes.

Trainers are registered in `TRAINERS` by name (hyperparameter `trainer`). The
default, `tfidf-linear`, is one pass over sparse features: 1-2 grams hashed into
2**`hash-bits` columns (no vocabulary, so memory does not grow with the number of
distinct n-grams), the `max-features` columns most associated with the labels
(chi2), sublinear TF-IDF, and a linear SVM (LinearSVC, `c`, balanced class
weights); chosen by measurement against a vocabulary TF-IDF and SGD
(ml/README.md, "Model"). It has no probabilities: the endpoint answers
`probability: null` and a margin-based `score`. Each distinct text is hashed once:
duplicated notes filed under several labels cost one transform. Hyperparameters
are the ones this estimator has: `c` (inverse regularisation), `max-features`,
`ngram-max`, `hash-bits`, `class-weight` (`none` or `balanced`), `seed`. The old
`epochs`, `batch-size` and `learning-rate` are accepted and ignored (with a
warning) until the pipeline definition stops passing them. A transformer
fine-tune would be one more function with the same signature that writes its own
artifact format.

Container contract (bring-your-own image, the image's `train` entrypoint runs
this file): channels in `SM_CHANNEL_<NAME>` (default `/opt/ml/input/data/<name>`),
hyperparameters in `SM_HPS` (JSON) or `/opt/ml/input/config/hyperparameters.json`,
the model goes to `SM_MODEL_DIR` (default `/opt/ml/model`), and a failure
reason to `/opt/ml/output/failure`.

Self-contained (stdlib + numpy/pandas/scikit-learn/joblib): uploaded and run as is.
"""

from __future__ import annotations

import json
import os
import sys
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer
from sklearn.feature_selection import SelectKBest, VarianceThreshold, chi2
from sklearn.metrics import f1_score
from sklearn.pipeline import Pipeline
from sklearn.svm import LinearSVC

MODEL_FILE = "model.joblib"
LABELS_FILE = "labels.json"
METADATA_FILE = "model.json"


class TrainingError(ValueError):
    """The training inputs cannot be used; the message says what to fix."""


IGNORED_HYPERPARAMETERS = frozenset({"epochs", "batch_size", "learning_rate"})
"""Mini-batch knobs of the old trainer: accepted (the current definition passes them), unused."""


@dataclass(frozen=True)
class Hyperparameters:
    c: float = 0.3
    hash_bits: int = 19
    max_features: int = 50_000
    ngram_max: int = 2
    class_weight: str = "balanced"
    trainer: str = "tfidf-linear"
    seed: int = 42

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> Hyperparameters:
        """Parse SageMaker's string-valued hyperparameters (`hash-bits` or `hash_bits`)."""
        values = {str(key).replace("-", "_"): value for key, value in raw.items()}
        ignored = sorted(set(values) & IGNORED_HYPERPARAMETERS)
        if ignored:
            print(
                f"warning: hyperparameter(s) {ignored} ignored: the {cls.trainer} trainer "
                "fits in one pass (set c, max-features, ngram-max, hash-bits instead)",
                file=sys.stderr,
            )
        values = {k: v for k, v in values.items() if k not in IGNORED_HYPERPARAMETERS}
        unknown = sorted(set(values) - set(cls.__dataclass_fields__))
        if unknown:
            raise TrainingError(
                f"unknown hyperparameter(s) {unknown}; known: {sorted(cls.__dataclass_fields__)}"
            )
        try:
            parsed = cls(
                c=float(values.get("c", cls.c)),
                hash_bits=int(values.get("hash_bits", cls.hash_bits)),
                max_features=int(values.get("max_features", cls.max_features)),
                ngram_max=int(values.get("ngram_max", cls.ngram_max)),
                class_weight=str(values.get("class_weight", cls.class_weight)),
                trainer=str(values.get("trainer", cls.trainer)),
                seed=int(values.get("seed", cls.seed)),
            )
        except ValueError as error:
            raise TrainingError(f"bad hyperparameter value: {error}") from None
        if parsed.c <= 0 or parsed.max_features < 1 or not 10 <= parsed.hash_bits <= 24:
            raise TrainingError("c must be > 0, max-features >= 1, hash-bits 10-24")
        if parsed.ngram_max not in (1, 2, 3):
            raise TrainingError(f"ngram-max must be 1, 2 or 3, got {parsed.ngram_max}")
        if parsed.class_weight not in ("none", "balanced"):
            raise TrainingError(
                f"class-weight must be none or balanced, got {parsed.class_weight!r}"
            )
        if parsed.trainer not in TRAINERS:
            raise TrainingError(f"unknown trainer {parsed.trainer!r}; known: {sorted(TRAINERS)}")
        return parsed


Trainer = Callable[[list[str], np.ndarray, int, Hyperparameters], Any]
"""(texts, label ids, number of labels, hyperparameters) -> fitted model with predict()."""


def train_tfidf_linear(
    texts: list[str], labels: np.ndarray, n_labels: int, hp: Hyperparameters
) -> Pipeline:
    """Hashed 1-n grams -> the `max-features` best by chi2 -> sublinear TF-IDF -> LinearSVC."""
    del n_labels
    if len(np.unique(labels)) < 2:
        raise TrainingError("train data has a single label; preprocess-data needs two or more")
    # Hashing keeps no vocabulary: memory does not grow with the number of distinct n-grams.
    hashing = HashingVectorizer(
        ngram_range=(1, hp.ngram_max),
        n_features=2**hp.hash_bits,
        alternate_sign=False,
        norm=None,
        dtype=np.float32,
    )
    codes, distinct = pd.factorize(pd.Series(texts, dtype=object))
    counts = hashing.transform(list(distinct))[codes]
    best = SelectKBest(chi2, k=min(hp.max_features, counts.shape[1])).fit(counts, labels)
    # SelectKBest re-sorts all 2**hash_bits scores on every transform (~40 ms a request);
    # a VarianceThreshold whose variances mark the chosen columns keeps them with one compare.
    select = VarianceThreshold(threshold=0.5)
    select.variances_ = best.get_support().astype(np.float32)
    select.n_features_in_ = counts.shape[1]
    selected = select.transform(counts)
    tfidf = TfidfTransformer(sublinear_tf=True).fit(selected)
    classifier = LinearSVC(
        C=hp.c,
        class_weight=None if hp.class_weight == "none" else "balanced",
        random_state=hp.seed,
    )
    with warnings.catch_warnings():
        # liblinear not converging on noisy labels is expected and harmless here.
        warnings.simplefilter("ignore", ConvergenceWarning)
        classifier.fit(tfidf.transform(selected), labels)
    classifier.coef_ = classifier.coef_.astype(np.float32)
    return Pipeline(
        [("hashing", hashing), ("select", select), ("tfidf", tfidf), ("classifier", classifier)]
    )


TRAINERS: dict[str, Trainer] = {"tfidf-linear": train_tfidf_linear}


def read_split(directory: Path, name: str) -> pd.DataFrame:
    files = sorted(directory.glob("*.csv"))
    if not files:
        raise TrainingError(f"{directory}: no CSV in the {name} channel")
    # keep_default_na=False: a note reading "NA", "N/A" or "null" is text, not a missing value.
    frame = pd.concat(
        [pd.read_csv(path, dtype={"text": str}, keep_default_na=False) for path in files],
        ignore_index=True,
    )
    missing = {"text", "label_id"} - set(frame.columns)
    if missing:
        raise TrainingError(f"{name} data lacks column(s) {sorted(missing)} (run preprocess-data)")
    if frame.empty:
        raise TrainingError(f"{name} data is empty")
    return frame


def train(
    train_dir: Path, validation_dir: Path | None, model_dir: Path, hp: Hyperparameters
) -> dict[str, float]:
    """Fit, validate and save the model; returns the training metrics."""
    labels_path = train_dir / LABELS_FILE
    if not labels_path.is_file():
        raise TrainingError(f"{labels_path}: missing (preprocess-data writes it with train.csv)")
    labels: list[str] = json.loads(labels_path.read_text())
    data = read_split(train_dir, "train")
    y = data["label_id"].to_numpy(dtype=int)
    if y.min() < 0 or y.max() >= len(labels):
        raise TrainingError("train label_id values do not match labels.json")
    started = time.perf_counter()
    model = TRAINERS[hp.trainer](data["text"].tolist(), y, len(labels), hp)
    seconds = time.perf_counter() - started
    metrics = {
        "train_accuracy": float(np.mean(model.predict(data["text"].tolist()) == y)),
        "train_seconds": seconds,
        "notes_per_second": len(data) / seconds if seconds > 0 else float("inf"),
    }
    if validation_dir is not None and any(validation_dir.glob("*.csv")):
        validation = read_split(validation_dir, "validation")
        predicted = model.predict(validation["text"].tolist())
        truth = validation["label_id"].to_numpy(dtype=int)
        metrics["validation_accuracy"] = float(np.mean(predicted == truth))
        metrics["validation_macro_f1"] = float(
            f1_score(truth, predicted, average="macro", zero_division=0)
        )
    model_dir.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, model_dir / MODEL_FILE, compress=3)
    (model_dir / LABELS_FILE).write_text(json.dumps(labels, indent=2) + "\n")
    counts = np.bincount(y, minlength=len(labels))
    metadata = {
        "format": "sklearn-joblib",
        "hyperparameters": asdict(hp),
        "metrics": metrics,
        # evaluate-model scores the majority-class baseline with the train split's majority.
        "train_label_counts": {label: int(n) for label, n in zip(labels, counts, strict=True)},
        "majority_label": labels[int(counts.argmax())],
    }
    (model_dir / METADATA_FILE).write_text(json.dumps(metadata, indent=2, sort_keys=True) + "\n")
    return metrics


def read_hyperparameters(environ: Mapping[str, str]) -> dict[str, Any]:
    if "SM_HPS" in environ:
        loaded: dict[str, Any] = json.loads(environ["SM_HPS"])
        return loaded
    config_dir = Path(environ.get("SM_INPUT_CONFIG_DIR", "/opt/ml/input/config"))
    path = config_dir / "hyperparameters.json"
    if path.is_file():
        from_file: dict[str, Any] = json.loads(path.read_text())
        return from_file
    return {}


def main(argv: list[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    env = os.environ if environ is None else environ
    del argv  # SageMaker passes only "train"; everything comes from the environment.
    output_dir = Path(env.get("SM_OUTPUT_DIR", "/opt/ml/output"))
    try:
        hp = Hyperparameters.from_mapping(read_hyperparameters(env))
        train_dir = Path(env.get("SM_CHANNEL_TRAIN", "/opt/ml/input/data/train"))
        validation_dir = Path(env.get("SM_CHANNEL_VALIDATION", "/opt/ml/input/data/validation"))
        model_dir = Path(env.get("SM_MODEL_DIR", "/opt/ml/model"))
        metrics = train(train_dir, validation_dir, model_dir, hp)
    except (TrainingError, OSError) as error:
        print(f"train-model failed: {error}", file=sys.stderr)
        if output_dir.is_dir():
            (output_dir / "failure").write_text(str(error))
        return 1
    for key, value in sorted(metrics.items()):
        # One metric per line, name=value: easy to scrape with MetricDefinitions.
        print(f"{key}={value:.6f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
