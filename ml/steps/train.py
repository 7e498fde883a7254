"""train-model: fit a medical-specialty classifier on the preprocessed notes.

Trainers are registered in `TRAINERS` by name (hyperparameter `trainer`). The
default, `tfidf-linear`, is TF-IDF features with a linear classifier trained by
mini-batch SGD (log loss), so `epochs`, `batch-size` and `learning-rate` mean
what they say; it runs on CPU in seconds. A transformer fine-tune would be one
more function with the same signature that writes its own artifact format.

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
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import SGDClassifier
from sklearn.pipeline import Pipeline

MODEL_FILE = "model.joblib"
LABELS_FILE = "labels.json"
METADATA_FILE = "model.json"


class TrainingError(ValueError):
    """The training inputs cannot be used; the message says what to fix."""


@dataclass(frozen=True)
class Hyperparameters:
    epochs: int = 20
    batch_size: int = 256
    learning_rate: float = 0.001
    trainer: str = "tfidf-linear"
    seed: int = 42

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> Hyperparameters:
        """Parse SageMaker's string-valued hyperparameters (`batch-size` or `batch_size`)."""
        values = {str(key).replace("-", "_"): value for key, value in raw.items()}
        unknown = sorted(set(values) - set(cls.__dataclass_fields__))
        if unknown:
            raise TrainingError(f"unknown hyperparameter(s) {unknown}")
        try:
            parsed = cls(
                epochs=int(values.get("epochs", cls.epochs)),
                batch_size=int(values.get("batch_size", cls.batch_size)),
                learning_rate=float(values.get("learning_rate", cls.learning_rate)),
                trainer=str(values.get("trainer", cls.trainer)),
                seed=int(values.get("seed", cls.seed)),
            )
        except ValueError as error:
            raise TrainingError(f"bad hyperparameter value: {error}") from None
        if parsed.epochs < 1 or parsed.batch_size < 1 or parsed.learning_rate <= 0:
            raise TrainingError("epochs and batch-size must be >= 1, learning-rate > 0")
        if parsed.trainer not in TRAINERS:
            raise TrainingError(f"unknown trainer {parsed.trainer!r}; known: {sorted(TRAINERS)}")
        return parsed


Trainer = Callable[[list[str], np.ndarray, int, Hyperparameters], Any]
"""(texts, label ids, number of labels, hyperparameters) -> fitted model with predict()."""


def train_tfidf_linear(
    texts: list[str], labels: np.ndarray, n_labels: int, hp: Hyperparameters
) -> Pipeline:
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=1, sublinear_tf=True)
    features = vectorizer.fit_transform(texts)
    classifier = SGDClassifier(
        loss="log_loss",
        alpha=1e-5,
        learning_rate="constant",
        eta0=hp.learning_rate,
        random_state=hp.seed,
    )
    classes = np.arange(n_labels)
    rng = np.random.default_rng(hp.seed)
    for _ in range(hp.epochs):
        order = rng.permutation(features.shape[0])
        for start in range(0, len(order), hp.batch_size):
            batch = order[start : start + hp.batch_size]
            classifier.partial_fit(features[batch], labels[batch], classes=classes)
    return Pipeline([("tfidf", vectorizer), ("classifier", classifier)])


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
        "notes_per_second": len(data) * hp.epochs / seconds if seconds > 0 else float("inf"),
    }
    if validation_dir is not None and any(validation_dir.glob("*.csv")):
        validation = read_split(validation_dir, "validation")
        predicted = model.predict(validation["text"].tolist())
        metrics["validation_accuracy"] = float(
            np.mean(predicted == validation["label_id"].to_numpy(dtype=int))
        )
    model_dir.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, model_dir / MODEL_FILE)
    (model_dir / LABELS_FILE).write_text(json.dumps(labels, indent=2) + "\n")
    metadata = {"format": "sklearn-joblib", "hyperparameters": asdict(hp), "metrics": metrics}
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
