"""preprocess-data: validate the notes, resolve duplicates, encode labels, split by text.

Input: mtsamples-format CSV files (notes_csv.py: the format, the encoding and delimiter
options, how they are read and cleaned). If the input holds `train.csv`,
`validation.csv` and `test.csv` (what the dataset upload writes) that split is kept,
except that a text found in two splits is kept in the first of train, validation, test;
otherwise every CSV is pooled and split 70/15/15 of the distinct texts per label, fixed
seed.

Validation (the data report, `data_report.json` in `train/` and `report/`, and one
JSON line in the log): rows read, rows dropped for an empty text or label, exact
duplicate rows (same text and label, kept once), near-exact duplicates (equal once
lower-cased with punctuation and spacing removed: one text for the split),
texts filed under several labels (policy `--conflicts`, default most-frequent; see
CONFLICT_POLICIES), labels dropped for having fewer than 3 distinct texts (a
warning, not a stop), and `input_sha256`, the content hash of the dataset read (the
lineage of every model trained on it; see notes_csv.py's `input_sha256`). Unusable input
(encoding, delimiter, columns, a missing path, fewer than two labels) stops the step
with one line naming the file and the fix.

Output (one directory per split, each a processing output):
`train/train.csv` + `train/labels.json`, `validation/validation.csv`,
`test/test.csv`; columns text, label, label_id, labels (JSON list of every label
the text is filed under: the accepted answers when scoring keep-all).

Code bundle: this file, notes_csv.py and ml/limits.py (the conflict policies), stdlib +
pandas/numpy, uploaded side by side and run as is.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

if __package__:  # imported as ml.steps.preprocess (tests, the local tools)
    from ml import limits
    from ml.steps.notes_csv import DataError, clean, input_sha256, read_notes
else:  # the job's script: its modules are beside it (its code bundle, ml/pipeline/code.py)
    import limits  # type: ignore[no-redef]
    from notes_csv import DataError, clean, input_sha256, read_notes  # type: ignore[no-redef]

SPLITS = ("train", "validation", "test")
SPLIT_RATIOS = {"train": 0.70, "validation": 0.15, "test": 0.15}
SEED = 42
MIN_NOTES_PER_LABEL = 3
"""A label needs a note in each split; rarer labels are dropped (and reported)."""

CONFLICT_POLICIES = limits.CONFLICT_POLICIES
DEFAULT_CONFLICT_POLICY = limits.DEFAULT_CONFLICT_POLICY
"""A text filed under several labels keeps its most frequent label (ties: the rarer label
overall, the more specific one). `drop` removes such texts; `keep-all` trains on every
label and scores a prediction right if it is any of the note's labels."""
REPORT_FILE = "data_report.json"
_NON_WORD = re.compile(r"[^0-9a-z]+")


def _identity(text: str) -> bytes:
    return hashlib.blake2b(
        _NON_WORD.sub(" ", text.lower()).strip().encode(), digest_size=16
    ).digest()


def text_key(text: pd.Series) -> pd.Series:
    """The near-exact identity of a note: a 128-bit digest of its lower-case words and numbers.

    A digest, not the normalised text: equal exactly when the normalised texts are equal
    (collisions aside, at 2**-64 for 2**32 notes), without a second copy of every note
    (~1.5 GB less at 140k notes; the splits are the same).
    """
    return text.map(_identity)


def resolve_duplicates(frame: pd.DataFrame, policy: str, report: dict[str, Any]) -> pd.DataFrame:
    """Count duplicates and conflicts; one row per (text, label) and labels per the policy.

    Adds `key` (near-exact identity), `canonical` (the text's label for splitting and
    scoring) and `labels` (JSON list of every label the text is filed under).
    """
    if policy not in CONFLICT_POLICIES:
        raise DataError(f"--conflicts must be one of {list(CONFLICT_POLICIES)}, got {policy!r}")
    frame = frame.assign(key=text_key(frame["text"]))
    exact = frame.duplicated(["text", "label"])
    near = frame.duplicated(["key"]) & ~frame.duplicated(["text"])
    labels_per_key = frame.groupby("key")["label"].nunique()
    rows_per_key = frame["key"].value_counts()
    conflicting = labels_per_key[labels_per_key > 1].index
    report.update(
        exact_duplicate_rows=int(exact.sum()),
        near_duplicate_rows=int(near.sum()),
        duplicated_texts=int((rows_per_key > 1).sum()),
        conflicting_texts=len(conflicting),
        conflicting_rows=int(frame["key"].isin(conflicting).sum()),
        conflict_policy=policy,
    )
    unique = frame.drop_duplicates(["key", "label"]).reset_index(drop=True)
    frequency = frame["label"].value_counts()
    votes = frame.groupby(["key", "label"]).size().rename("votes").reset_index()
    votes["overall"] = votes["label"].map(frequency)
    votes = votes.sort_values(
        ["key", "votes", "overall", "label"], ascending=[True, False, True, True]
    )
    canonical = votes.drop_duplicates("key").set_index("key")["label"]
    all_labels = votes.groupby("key")["label"].agg(lambda v: json.dumps(sorted(v)))
    unique["canonical"] = unique["key"].map(canonical)
    unique["labels"] = unique["key"].map(all_labels)
    if policy == "drop":
        unique = unique[~unique["key"].isin(conflicting)]
    elif policy == "most-frequent":
        unique = unique[unique["label"] == unique["canonical"]]
        unique = unique.assign(labels=unique["label"].map(lambda v: json.dumps([v])))
    return unique.reset_index(drop=True)


def drop_rare_labels(
    frame: pd.DataFrame, report: dict[str, Any], minimum: int = MIN_NOTES_PER_LABEL
) -> pd.DataFrame:
    """Drop labels on fewer than `minimum` distinct texts (with a warning); need 2 labels left."""
    counts = frame.groupby("label")["key"].nunique()
    rare = {str(label): int(n) for label, n in counts[counts < minimum].items()}
    if rare:
        warning = f"dropping labels on fewer than {minimum} distinct notes: {sorted(rare)}"
        print(f"warning: {warning}", file=sys.stderr)
        report.setdefault("warnings", []).append(warning)
    report["rare_labels_dropped"] = rare
    kept = frame[~frame["label"].isin(rare)]
    kept = kept[kept["canonical"].isin(set(kept["label"]))].reset_index(drop=True)
    labels = sorted(set(kept["label"]))
    if len(labels) < 2:
        only = f"only {labels[0]!r}" if labels else "none"
        raise DataError(
            f"the dataset has {only} as a label with at least {minimum} distinct notes; "
            "a classifier needs at least two labels: add notes of other specialties"
        )
    return kept


def grouped_split(frame: pd.DataFrame, seed: int = SEED) -> pd.Series:
    """The split of each row: 70/15/15 of the distinct texts per label, a text in one split.

    Rows are grouped by `key` (a note and its near-exact copies, under any label) and
    stratified by `canonical`; a label with fewer than 3 texts as canonical stays in train.
    """
    rng = np.random.default_rng(seed)
    groups = frame.drop_duplicates("key")[["key", "canonical"]]
    assignment: dict[bytes, str] = {}
    for label, keys in groups.groupby("canonical", sort=True)["key"]:
        del label
        order = keys.to_numpy()[rng.permutation(len(keys))]
        if len(order) < len(SPLITS):
            assignment.update(dict.fromkeys(order, "train"))
            continue
        n_test = max(1, round(len(order) * SPLIT_RATIOS["test"]))
        n_validation = max(1, round(len(order) * SPLIT_RATIOS["validation"]))
        n_train = len(order) - n_test - n_validation
        assignment.update(dict.fromkeys(order[:n_train], "train"))
        assignment.update(dict.fromkeys(order[n_train : n_train + n_validation], "validation"))
        assignment.update(dict.fromkeys(order[n_train + n_validation :], "test"))
    return frame["key"].map(assignment)


def _split_frames(frame: pd.DataFrame, seed: int, *, shuffle: bool) -> dict[str, pd.DataFrame]:
    """Train keeps a row per label (keep-all); validation/test one row per text (canonical).

    A fresh split is shuffled; an uploaded split keeps its row order.
    """
    parts: dict[str, pd.DataFrame] = {}
    for split in SPLITS:
        part = frame[frame["split"] == split]
        if split != "train":
            part = part[part["label"] == part["canonical"]].drop_duplicates("key")
        if shuffle:
            part = part.sample(frac=1.0, random_state=seed)
        parts[split] = part.reset_index(drop=True)
    return parts


def encode_labels(splits: dict[str, pd.DataFrame]) -> list[str]:
    """Sorted label names; a label's id is its index. Adds `label_id` to every split."""
    labels = sorted({label for frame in splits.values() for label in frame["label"]})
    index = {label: position for position, label in enumerate(labels)}
    for frame in splits.values():
        frame["label_id"] = frame["label"].map(index).astype(int)
    return labels


def check_labels_are_trained(splits: dict[str, pd.DataFrame]) -> None:
    """Every validation/test label must occur in train (an upload's own split may break this)."""
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


def load_input(
    input_dir: Path,
    seed: int = SEED,
    *,
    policy: str = DEFAULT_CONFLICT_POLICY,
    encoding: str = "utf-8",
    delimiter: str = ",",
    report: dict[str, Any] | None = None,
) -> dict[str, pd.DataFrame]:
    """Validated splits: the upload's own split if present (leaks removed), else a grouped split."""
    report = {} if report is None else report
    if not input_dir.is_dir():
        raise DataError(f"{input_dir}: input directory does not exist")
    presplit = {split: input_dir / f"{split}.csv" for split in SPLITS}
    if all(path.is_file() for path in presplit.values()):
        files = list(presplit.values())
        frames = [
            clean(read_notes(path, encoding, delimiter), str(path), report).assign(split=split)
            for split, path in presplit.items()
        ]
    else:
        files = sorted(input_dir.rglob("*.csv"))
        if not files:
            raise DataError(f"{input_dir}: no CSV files found")
        frames = [clean(read_notes(p, encoding, delimiter), str(p), report) for p in files]
    report["files"] = [str(path) for path in files]
    report["input_sha256"] = input_sha256(input_dir, files)
    report["encoding"] = encoding
    pooled = pd.concat(frames, ignore_index=True)
    if "split" in pooled.columns:
        # A text in two uploaded splits would be scored on what the model trained on.
        rank = pooled["split"].map({split: i for i, split in enumerate(SPLITS)})
        first = pooled.assign(rank=rank).groupby(text_key(pooled["text"]))["rank"].transform("min")
        report["cross_split_rows_moved"] = int((first != rank).sum())
        pooled["split"] = first.map(dict(enumerate(SPLITS)))
    kept = drop_rare_labels(resolve_duplicates(pooled, policy, report), report)
    uploaded = "split" in kept.columns
    if not uploaded:
        kept = kept.assign(split=grouped_split(kept, seed))
    splits = _split_frames(kept, seed, shuffle=not uploaded)
    check_labels_are_trained(splits)
    return splits


def preprocess(
    input_dir: Path,
    output_dir: Path,
    seed: int = SEED,
    *,
    policy: str = DEFAULT_CONFLICT_POLICY,
    encoding: str = "utf-8",
    delimiter: str = ",",
) -> dict[str, Any]:
    """Run the step: writes the splits and the data report; returns the report."""
    report: dict[str, Any] = {"min_notes_per_label": MIN_NOTES_PER_LABEL}
    splits = load_input(
        input_dir, seed, policy=policy, encoding=encoding, delimiter=delimiter, report=report
    )
    for split, frame in splits.items():
        if frame.empty:
            raise DataError(f"the {split} split is empty (too few distinct notes per label)")
    labels = encode_labels(splits)
    untestable = sorted(set(labels) - set(splits["test"]["label"]))
    if untestable:
        report.setdefault("warnings", []).append(
            f"labels with fewer than 3 distinct notes of their own stay in train only: {untestable}"
        )
    for split, frame in splits.items():
        directory = output_dir / split
        directory.mkdir(parents=True, exist_ok=True)
        frame[["text", "label", "label_id", "labels"]].to_csv(
            directory / f"{split}.csv", index=False
        )
    (output_dir / "train" / "labels.json").write_text(json.dumps(labels, indent=2) + "\n")
    report["splits"] = {split: len(frame) for split, frame in splits.items()}
    report["labels"] = len(labels)
    report["untestable_labels"] = untestable
    document = json.dumps(report, indent=2, sort_keys=True) + "\n"
    for directory in (output_dir / "train", output_dir / "report"):
        directory.mkdir(parents=True, exist_ok=True)
        (directory / REPORT_FILE).write_text(document)
    counts: dict[str, Any] = {split: len(frame) for split, frame in splits.items()}
    counts["labels"] = len(labels)
    return {**counts, "report": report}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input-dir", type=Path, default=Path("/opt/ml/processing/input/data"))
    parser.add_argument("--output-dir", type=Path, default=Path("/opt/ml/processing/output"))
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--conflicts", choices=CONFLICT_POLICIES, default=DEFAULT_CONFLICT_POLICY)
    parser.add_argument("--encoding", default="utf-8", help="text encoding of the CSV files")
    parser.add_argument("--delimiter", default=",", help="CSV field delimiter")
    args = parser.parse_args(argv)
    try:
        result = preprocess(
            args.input_dir,
            args.output_dir,
            args.seed,
            policy=args.conflicts,
            encoding=args.encoding,
            delimiter=args.delimiter,
        )
    except DataError as error:
        print(f"preprocess-data failed: {error}", file=sys.stderr)
        return 1
    # One JSON line: the data report is in the job's log as well as in data_report.json.
    print(json.dumps(result["report"], sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
