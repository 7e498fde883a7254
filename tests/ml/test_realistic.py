"""The default model on the realistic corpus: grouped split, duplicates, baseline, approval."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from ml.data import realistic
from ml.steps import evaluate, preprocess, train

NOTES = 1500
MAX_ARTIFACT_BYTES = 20 * 1024 * 1024


@pytest.fixture(scope="module")
def corpus() -> pd.DataFrame:
    return realistic.generate(NOTES)


@pytest.fixture(scope="module")
def pipeline_run(corpus: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("realistic")
    (root / "in").mkdir()
    corpus.to_csv(root / "in" / "notes.csv", index=False)
    result = preprocess.preprocess(root / "in", root / "out")
    train.train(
        root / "out" / "train", root / "out" / "validation", root / "model", train.Hyperparameters()
    )
    report = evaluate.run(root / "model", root / "out" / "test", root / "evaluation")
    return {"root": root, "data": result["report"], "evaluation": report}


def test_corpus_is_deterministic_labelled_and_shaped_like_mtsamples(corpus: pd.DataFrame) -> None:
    assert corpus.equals(realistic.generate(NOTES))
    assert not corpus.equals(realistic.generate(NOTES, seed=1))
    assert corpus["description"].str.startswith("[SYNTHETIC-REALISTIC]").all()
    assert corpus["keywords"].str.contains("synthetic").all()
    labels = corpus["medical_specialty"].str.strip()
    assert labels.nunique() == 40
    assert 0.18 < (labels == "Surgery").mean() < 0.26
    assert corpus["transcription"].str.split().str.len().median() > 250
    assert corpus["transcription"].str.contains("HISTORY OF PRESENT ILLNESS:").any()
    # About half the rows copy another row's note under a second label.
    assert 0.4 < corpus["transcription"].nunique() / len(corpus) < 0.7


def test_grouped_split_never_shares_a_text_between_splits(pipeline_run: dict[str, Any]) -> None:
    root: Path = pipeline_run["root"]
    keys = {
        split: set(preprocess.text_key(pd.read_csv(root / "out" / split / f"{split}.csv")["text"]))
        for split in preprocess.SPLITS
    }
    assert not keys["train"] & keys["test"]
    assert not keys["train"] & keys["validation"]
    assert not keys["validation"] & keys["test"]


def test_duplicates_and_conflicts_are_reported_with_counts(
    corpus: pd.DataFrame, pipeline_run: dict[str, Any]
) -> None:
    data = pipeline_run["data"]
    texts = corpus["transcription"].str.replace(r"\s+", " ", regex=True).str.strip()
    labels = corpus["medical_specialty"].str.strip()
    exact = int(pd.DataFrame({"t": texts, "l": labels}).duplicated().sum())
    assert data["exact_duplicate_rows"] == exact
    assert data["near_duplicate_rows"] > 0
    assert data["conflicting_texts"] > 100
    assert data["conflict_policy"] == "most-frequent"
    assert data["rows_read"] == len(corpus)
    written = json.loads((pipeline_run["root"] / "out" / "report" / "data_report.json").read_text())
    assert written == data


def test_default_model_beats_the_majority_baseline_and_is_approved(
    pipeline_run: dict[str, Any],
) -> None:
    report = pipeline_run["evaluation"]
    comparison = report["baseline_comparison"]["macro_f1"]
    assert comparison["model"] > comparison["baseline"] + evaluate.DEFAULT_BASELINE_MARGIN
    assert report["better_than_baseline"] is True
    assert report["approval"]["passed"] is True
    assert report["baseline"]["label"] == "Surgery"
    assert set(report["per_class_f1"]) <= set(
        json.loads((pipeline_run["root"] / "model" / "labels.json").read_text())
    )
    # The keys the current definition reads stay where they were.
    assert 0 < report["multiclass_classification_metrics"]["accuracy"]["value"] <= 1


def test_a_model_trained_on_shuffled_labels_is_rejected(
    pipeline_run: dict[str, Any], tmp_path: Path
) -> None:
    root: Path = pipeline_run["root"]
    shuffled = tmp_path / "train"
    shuffled.mkdir()
    frame = pd.read_csv(root / "out" / "train" / "train.csv", keep_default_na=False)
    frame["label_id"] = np.random.default_rng(0).permutation(frame["label_id"].to_numpy())
    frame.to_csv(shuffled / "train.csv", index=False)
    (shuffled / "labels.json").write_text((root / "out" / "train" / "labels.json").read_text())
    train.train(shuffled, None, tmp_path / "model", train.Hyperparameters())
    report = evaluate.run(tmp_path / "model", root / "out" / "test", tmp_path / "evaluation")
    assert report["approval"]["passed"] is False
    assert "fails" in report["summary"]


def test_artifact_size_bound_holds(pipeline_run: dict[str, Any]) -> None:
    assert (pipeline_run["root"] / "model" / "model.joblib").stat().st_size < MAX_ARTIFACT_BYTES
