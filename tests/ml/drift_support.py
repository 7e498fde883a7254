"""A model trained on the realistic corpus, with its drift baseline, for the drift tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ml.data.realistic import generate
from ml.monitoring.capture import Observation
from ml.serving.inference import LoadedModel, model_fn, predict_fn
from ml.steps import drift_baseline, evaluate, preprocess, scoring, train

NOTES = 900


@dataclass(frozen=True)
class Trained:
    model_dir: Path
    splits: Path
    evaluation: Path
    model: LoadedModel

    @property
    def baseline_path(self) -> Path:
        return self.evaluation / drift_baseline.DRIFT_BASELINE_FILE

    def test_split(self) -> pd.DataFrame:
        return scoring.read_test(self.splits / "test")


def train_with_baseline(root: Path, notes: int = NOTES, seed: int = 5) -> Trained:
    """preprocess -> train -> evaluate (with the train split) on `notes` realistic notes."""
    (root / "in").mkdir(parents=True)
    generate(notes=notes, seed=seed).to_csv(root / "in" / "notes.csv", index=False)
    preprocess.preprocess(root / "in", root / "splits")
    train.train(
        root / "splits" / "train",
        root / "splits" / "validation",
        root / "model",
        train.Hyperparameters(),
    )
    evaluate.run(
        root / "model", root / "splits" / "test", root / "eval", train_dir=root / "splits" / "train"
    )
    return Trained(root / "model", root / "splits", root / "eval", model_fn(root / "model"))


def served(model: LoadedModel, texts: list[str]) -> list[Observation]:
    """What the endpoint answers for `texts`, as the monitor reads it from capture."""
    answers = predict_fn(texts, model)
    return [Observation(t, a["label"], a["score"]) for t, a in zip(texts, answers, strict=True)]
