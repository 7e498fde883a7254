"""The synthetic dataset and the dataset upload (70/15/15, fixed seed)."""

from __future__ import annotations

from pathlib import Path

import boto3
import pandas as pd
import pytest
from moto import mock_aws

from ml.data import synthetic
from ml.data.upload import split_dataset, upload_dataset
from ml.steps.notes_csv import MTSAMPLES_COLUMNS, DataError


def test_generator_is_deterministic_and_matches_the_shipped_csv() -> None:
    generated = synthetic.generate()
    assert generated.equals(synthetic.generate())
    shipped = pd.read_csv(synthetic.DEFAULT_CSV, dtype=str, keep_default_na=False)
    pd.testing.assert_frame_equal(shipped, generated.astype(str))


def test_synthetic_data_is_labelled_and_big_enough() -> None:
    frame = synthetic.generate()
    assert tuple(frame.columns) == MTSAMPLES_COLUMNS
    assert frame["medical_specialty"].nunique() >= 6
    assert 200 <= len(frame) <= 1000
    assert frame["description"].str.startswith("[SYNTHETIC]").all()
    assert frame["keywords"].str.contains("synthetic").all()
    assert frame["transcription"].is_unique


def test_split_is_70_15_15_and_reproducible() -> None:
    frame = synthetic.generate()
    splits = split_dataset(frame)
    sizes = {name: len(part) for name, part in splits.items()}
    assert sum(sizes.values()) == len(frame) == 480
    assert sizes == {"train": 336, "validation": 72, "test": 72}
    assert {name: round(size / 480, 2) for name, size in sizes.items()} == {
        "train": 0.70,
        "validation": 0.15,
        "test": 0.15,
    }
    again = split_dataset(frame)
    for name in splits:
        assert splits[name].equals(again[name])
    other_seed = split_dataset(frame, seed=1)
    assert not splits["test"].equals(other_seed["test"])
    assert tuple(splits["train"].columns) == MTSAMPLES_COLUMNS
    all_rows = pd.concat(splits.values())
    assert all_rows["transcription"].is_unique


def test_split_drops_rows_without_text_or_label() -> None:
    frame = synthetic.generate(notes_per_specialty=10)
    frame.loc[0, "transcription"] = "  "
    frame.loc[1, "medical_specialty"] = ""
    assert sum(len(p) for p in split_dataset(frame).values()) == len(frame) - 2


def test_split_of_an_empty_dataset_fails_clearly() -> None:
    empty = synthetic.generate().iloc[0:0]
    with pytest.raises(DataError, match="no row with both"):
        split_dataset(empty)


@mock_aws
def test_upload_puts_three_csvs_in_the_data_bucket(tmp_path: Path) -> None:
    client = boto3.client("s3", region_name="eu-west-1")
    client.create_bucket(
        Bucket="data-bucket", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    uris = upload_dataset(synthetic.DEFAULT_CSV, "data-bucket", client)
    assert uris == {s: f"s3://data-bucket/data/{s}.csv" for s in ("train", "validation", "test")}
    counts = {}
    for split in uris:
        body = client.get_object(Bucket="data-bucket", Key=f"data/{split}.csv")["Body"].read()
        (tmp_path / f"{split}.csv").write_bytes(body)
        counts[split] = len(pd.read_csv(tmp_path / f"{split}.csv"))
    assert counts == {"train": 336, "validation": 72, "test": 72}


def test_upload_rejects_missing_columns(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    synthetic.generate(notes_per_specialty=5).drop(columns=["medical_specialty"]).to_csv(bad)
    with pytest.raises(DataError, match="missing column"):
        upload_dataset(bad, "unused", s3_client=None)
