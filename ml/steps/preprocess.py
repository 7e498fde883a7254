"""preprocess-data: clean the notes, encode the labels, split train/validation/test.

Input: CSV files in the mtsamples format (description, medical_specialty,
sample_name, transcription, keywords; only the last two that matter are
required). If the input holds `train.csv`, `validation.csv` and `test.csv`
(what the dataset upload writes) that split is kept; otherwise every CSV is
pooled and split 70/15/15, stratified by label, with a fixed seed.

Output (one directory per split, each a processing output):
`train/train.csv` + `train/labels.json`, `validation/validation.csv`,
`test/test.csv`; the CSVs have the columns text, label, label_id.

Self-contained (stdlib + pandas/numpy): this file is uploaded and run as is.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd

TEXT_COLUMN = "transcription"
LABEL_COLUMN = "medical_specialty"
REQUIRED_COLUMNS = (LABEL_COLUMN, TEXT_COLUMN)
MTSAMPLES_COLUMNS = ("description", "medical_specialty", "sample_name", "transcription", "keywords")
SPLITS = ("train", "validation", "test")
SPLIT_RATIOS = {"train": 0.70, "validation": 0.15, "test": 0.15}
SEED = 42
MIN_NOTES_PER_LABEL = 3
"""A label needs a note in each split; rarer labels are dropped (and reported)."""

_WHITESPACE = re.compile(r"\s+")


class DataError(ValueError):
    """The input data cannot be used; the message says what is wrong and where."""


def read_notes(path: Path) -> pd.DataFrame:
    """Read one mtsamples-format CSV; fail clearly on missing columns."""
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the file is empty (expected a CSV with a header row)") from None
    missing = [column for column in REQUIRED_COLUMNS if column not in frame.columns]
    if missing:
        raise DataError(
            f"{path}: missing column(s) {missing}; found {list(frame.columns)} "
            f"(the mtsamples format has {list(MTSAMPLES_COLUMNS)})"
        )
    return frame


def clean(frame: pd.DataFrame, source: str = "input") -> pd.DataFrame:
    """Normalise whitespace, drop notes without text or label; columns text, label."""
    text = frame[TEXT_COLUMN].astype(str).map(lambda v: _WHITESPACE.sub(" ", v).strip())
    label = frame[LABEL_COLUMN].astype(str).map(lambda v: _WHITESPACE.sub(" ", v).strip())
    cleaned = pd.DataFrame({"text": text, "label": label})
    cleaned = cleaned[(cleaned["text"] != "") & (cleaned["label"] != "")].reset_index(drop=True)
    if cleaned.empty:
        raise DataError(
            f"{source}: no usable notes (every row lacks a {TEXT_COLUMN} or a {LABEL_COLUMN})"
        )
    return cleaned


def drop_rare_labels(frame: pd.DataFrame, minimum: int = MIN_NOTES_PER_LABEL) -> pd.DataFrame:
    counts = frame["label"].value_counts()
    rare = sorted(counts[counts < minimum].index)
    if rare:
        print(f"dropping labels with fewer than {minimum} notes: {rare}", file=sys.stderr)
    kept = frame[~frame["label"].isin(rare)].reset_index(drop=True)
    if kept.empty:
        raise DataError(f"no label has at least {minimum} notes; nothing to train on")
    return kept


def stratified_split(frame: pd.DataFrame, seed: int = SEED) -> dict[str, pd.DataFrame]:
    """70/15/15 per label (so every label is in every split), reproducible for a seed."""
    rng = np.random.default_rng(seed)
    parts: dict[str, list[pd.DataFrame]] = {split: [] for split in SPLITS}
    for label in sorted(frame["label"].unique()):
        group = frame[frame["label"] == label]
        order = rng.permutation(len(group))
        n_test = max(1, round(len(group) * SPLIT_RATIOS["test"]))
        n_validation = max(1, round(len(group) * SPLIT_RATIOS["validation"]))
        n_train = len(group) - n_test - n_validation
        if n_train < 1:
            raise DataError(f"label {label!r} has only {len(group)} notes; need at least 3")
        bounds = {
            "train": order[:n_train],
            "validation": order[n_train : n_train + n_validation],
            "test": order[n_train + n_validation :],
        }
        for split, rows in bounds.items():
            parts[split].append(group.iloc[rows])
    return {
        split: pd.concat(chunks).sample(frac=1.0, random_state=seed).reset_index(drop=True)
        for split, chunks in parts.items()
    }


def encode_labels(splits: dict[str, pd.DataFrame]) -> list[str]:
    """Sorted label names; a label's id is its index. Adds `label_id` to every split."""
    labels = sorted({label for frame in splits.values() for label in frame["label"]})
    index = {label: position for position, label in enumerate(labels)}
    for frame in splits.values():
        frame["label_id"] = frame["label"].map(index).astype(int)
    return labels


def check_labels_are_trained(splits: dict[str, pd.DataFrame]) -> None:
    """Every validation/test label must occur in train (an upload's own split may break this).

    labels.json is built from all splits, so without this check a label seen
    only in validation or test would look known to evaluate-model, and the
    model would be scored on a class it never had a chance to learn.
    """
    trained = set(splits["train"]["label"])
    missing = {
        split: sorted(set(frame["label"]) - trained)
        for split, frame in splits.items()
        if split != "train"
    }
    problems = [f"{split}: {labels}" for split, labels in missing.items() if labels]
    if problems:
        raise DataError(
            "the uploaded split has label(s) missing from train.csv ("
            + "; ".join(problems)
            + "); add notes with these labels to train.csv or drop them"
        )


def load_input(input_dir: Path, seed: int = SEED) -> dict[str, pd.DataFrame]:
    """The cleaned splits: the upload's own split if present, else a fresh stratified split."""
    if not input_dir.is_dir():
        raise DataError(f"{input_dir}: input directory does not exist")
    presplit = {split: input_dir / f"{split}.csv" for split in SPLITS}
    if all(path.is_file() for path in presplit.values()):
        splits = {split: clean(read_notes(path), str(path)) for split, path in presplit.items()}
        check_labels_are_trained(splits)
        return splits
    files = sorted(input_dir.rglob("*.csv"))
    if not files:
        raise DataError(f"{input_dir}: no CSV files found")
    pooled = pd.concat([clean(read_notes(path), str(path)) for path in files], ignore_index=True)
    return stratified_split(drop_rare_labels(pooled), seed)


def preprocess(input_dir: Path, output_dir: Path, seed: int = SEED) -> dict[str, int]:
    """Run the step: returns the number of notes per split."""
    splits = load_input(input_dir, seed)
    for split, frame in splits.items():
        if frame.empty:
            raise DataError(f"the {split} split is empty")
    labels = encode_labels(splits)
    for split, frame in splits.items():
        directory = output_dir / split
        directory.mkdir(parents=True, exist_ok=True)
        frame[["text", "label", "label_id"]].to_csv(directory / f"{split}.csv", index=False)
    (output_dir / "train" / "labels.json").write_text(json.dumps(labels, indent=2) + "\n")
    counts = {split: len(frame) for split, frame in splits.items()}
    counts["labels"] = len(labels)
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input-dir", type=Path, default=Path("/opt/ml/processing/input/data"))
    parser.add_argument("--output-dir", type=Path, default=Path("/opt/ml/processing/output"))
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args(argv)
    try:
        counts = preprocess(args.input_dir, args.output_dir, args.seed)
    except DataError as error:
        print(f"preprocess-data failed: {error}", file=sys.stderr)
        return 1
    print(json.dumps(counts, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
