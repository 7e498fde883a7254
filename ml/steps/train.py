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
`ngram-max`, `hash-bits`, `class-weight` (`none` or `balanced`), `seed`; the
old mini-batch knobs (`epochs`, `batch-size`, `learning-rate`) are refused with
what to set instead, as any unknown name is. A transformer
fine-tune would be one more function with the same signature that writes its own
artifact format.

Container contract (bring-your-own image, the image's `train` entrypoint runs
this file): channels in `SM_CHANNEL_<NAME>` (default `/opt/ml/input/data/<name>`),
hyperparameters in `SM_HPS` (JSON) or `/opt/ml/input/config/hyperparameters.json`,
the model goes to `SM_MODEL_DIR` (default `/opt/ml/model`), and a failure
reason to `/opt/ml/output/failure`.

MLflow: with `MLFLOW_TRACKING_URI` set (the environment's tracking server ARN; a local
store in the local run), a run named after the pipeline execution is created in
`MLFLOW_EXPERIMENT_NAME` by tracking.py's worker process while the job trains, with the
lineage tags (commit, training image and its digest, dataset hash, pipeline execution
ARN, stack); it gets every hyperparameter, the train and validation accuracy and
macro-F1 and the fit time. Its id goes into model.json, where evaluate-model picks the
run up. A run that cannot be created fails the step before the model is written (before
the fit when the worker already knows); a logging call that fails after that is a
warning line, never a lost model. Without the variable, mlflow is not imported.

Code bundle: this file, tracking.py and ml/limits.py (its defaults and ranges, the
stack settings'), stdlib + numpy/pandas/scikit-learn/joblib, uploaded side by side and
run as is.
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

if __package__:  # imported as ml.steps.train (tests, the local tools)
    from ml import limits
    from ml.steps import sparse_selection, tracking
else:  # the job's script: its modules are beside it (its code bundle, ml/pipeline/code.py)
    import limits  # type: ignore[no-redef]
    import sparse_selection  # type: ignore[no-redef]
    import tracking  # type: ignore[no-redef]

    tracking.start_worker_early()  # mlflow loads in the worker while this job loads below

import joblib
import numpy as np
import pandas as pd
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer
from sklearn.metrics import f1_score
from sklearn.pipeline import Pipeline
from sklearn.svm import LinearSVC

MODEL_FILE = "model.joblib"
LABELS_FILE = "labels.json"
METADATA_FILE = "model.json"


class TrainingError(ValueError):
    """The training inputs cannot be used; the message says what to fix."""


MINI_BATCH_HYPERPARAMETERS = frozenset({"epochs", "batch_size", "learning_rate"})
"""Knobs of the old mini-batch trainer, which mean nothing to a one-pass fit."""


@dataclass(frozen=True)
class Hyperparameters:
    c: float = limits.REGULARIZATION_C.default
    hash_bits: int = limits.HASH_BITS.default
    max_features: int = limits.MAX_FEATURES.default
    ngram_max: int = limits.NGRAM_MAX.default
    class_weight: str = limits.DEFAULT_CLASS_WEIGHT
    trainer: str = limits.DEFAULT_TRAINER
    seed: int = limits.SEED.default

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> Hyperparameters:
        """Parse SageMaker's string-valued hyperparameters (`hash-bits` or `hash_bits`)."""
        values = {str(key).replace("-", "_"): value for key, value in raw.items()}
        mini_batch = sorted(set(values) & MINI_BATCH_HYPERPARAMETERS)
        if mini_batch:
            raise TrainingError(
                f"hyperparameter(s) {mini_batch} mean nothing to the {cls.trainer} trainer, "
                "which fits in one pass: set c, max-features, ngram-max or hash-bits instead"
            )
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
        problems = [
            problem
            for name, bounds, value in (
                ("c", limits.REGULARIZATION_C, parsed.c),
                ("hash-bits", limits.HASH_BITS, parsed.hash_bits),
                ("max-features", limits.MAX_FEATURES, parsed.max_features),
                ("ngram-max", limits.NGRAM_MAX, parsed.ngram_max),
                ("seed", limits.SEED, parsed.seed),
            )
            if (problem := bounds.problem(name, value)) is not None
        ]
        if problems:
            raise TrainingError("; ".join(problems))
        if parsed.class_weight not in limits.CLASS_WEIGHTS:
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
    columns = sparse_selection.best_columns(counts, labels, hp.max_features)
    selected = counts[:, columns]
    del counts
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
    return sparse_selection.compact(hashing, tfidf, classifier, columns)


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
    train_dir: Path,
    validation_dir: Path | None,
    model_dir: Path,
    hp: Hyperparameters,
    run: tracking.TrackedRun | None = None,
) -> dict[str, float]:
    """Fit, validate and save the model; returns the training metrics.

    `run`, the MLflow run of this training: a run the worker could not open stops the job
    before the fit when already known, else before the model is written; its id is
    recorded in model.json.
    """
    labels_path = train_dir / LABELS_FILE
    if not labels_path.is_file():
        raise TrainingError(f"{labels_path}: missing (preprocess-data writes it with train.csv)")
    labels: list[str] = json.loads(labels_path.read_text())
    data = read_split(train_dir, "train")
    y = data["label_id"].to_numpy(dtype=int)
    if y.min() < 0 or y.max() >= len(labels):
        raise TrainingError("train label_id values do not match labels.json")
    if run is not None:
        run.check()
    started = time.perf_counter()
    model = TRAINERS[hp.trainer](data["text"].tolist(), y, len(labels), hp)
    seconds = time.perf_counter() - started
    fitted = model.predict(data["text"].tolist())
    metrics = {
        "train_accuracy": float(np.mean(fitted == y)),
        "train_macro_f1": float(f1_score(y, fitted, average="macro", zero_division=0)),
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
    run_id = None if run is None else run.run_id()
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
    if run_id is not None:
        metadata["mlflow_run_id"] = run_id
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


# -- MLflow ---------------------------------------------------------------------------------
def log_training(
    run: tracking.TrackedRun, hp: Hyperparameters, metrics: Mapping[str, float]
) -> None:
    """Every hyperparameter (the trainer's name included) and the final metrics.

    One value per metric: LinearSVC fits in one liblinear call with no per-iteration
    callback, so there is no training curve to log.
    """
    logged = {k: v for k, v in metrics.items() if k != "notes_per_second" or np.isfinite(v)}
    run.log_batch(
        "the hyperparameters and metrics",
        metrics=logged,
        params={k.replace("_", "-"): v for k, v in asdict(hp).items()},
    )


def main(argv: list[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    env = os.environ if environ is None else environ
    del argv  # SageMaker passes only "train"; everything comes from the environment.
    output_dir = Path(env.get("SM_OUTPUT_DIR", "/opt/ml/output"))
    run = None
    try:
        hp = Hyperparameters.from_mapping(read_hyperparameters(env))
        train_dir = Path(env.get("SM_CHANNEL_TRAIN", "/opt/ml/input/data/train"))
        validation_dir = Path(env.get("SM_CHANNEL_VALIDATION", "/opt/ml/input/data/validation"))
        model_dir = Path(env.get("SM_MODEL_DIR", "/opt/ml/model"))
        # The worker opens the run while the job trains; the model is written only once the
        # run exists (its id goes into model.json), so an untrackable run fails the job.
        tags = tracking.run_tags(env, tracking.data_sha256(train_dir))
        run = tracking.TrackedRun.start(env, tags=tags, untracked_hint="train untracked")
        metrics = train(train_dir, validation_dir, model_dir, hp, run)
    except (TrainingError, tracking.TrackingError, OSError) as error:
        print(f"train-model failed: {error}", file=sys.stderr)
        if output_dir.is_dir():
            (output_dir / "failure").write_text(str(error))
        if run is not None:
            run.finish("FAILED")
        return 1
    if run is not None:
        log_training(run, hp, metrics)
        run.finish()
    for key, value in sorted(metrics.items()):
        # One metric per line, name=value: easy to scrape with MetricDefinitions.
        print(f"{key}={value:.6f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
