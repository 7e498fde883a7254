"""Split a mtsamples-format CSV 70/15/15 (fixed seed) and upload it to the data bucket.

The successor of the original `upload_dataset.py`: rows without a transcription
or a specialty are dropped, the rest is split per specialty (so every specialty
is in every split) and written as `train.csv`, `validation.csv`, `test.csv`
under `data/` in the stack's data bucket, where the pipeline's `InputDataUri`
parameter points by default. Columns are kept as they are: cleaning is the
pipeline's job.

    uv run python -m ml.data.upload --bucket <data bucket> [--csv path] [--region eu-west-1]
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path
from typing import Any

import boto3
import pandas as pd

from ml.data.synthetic import DEFAULT_CSV
from ml.pipeline.contract import DATASET_PREFIX
from ml.steps.preprocess import (
    LABEL_COLUMN,
    SEED,
    SPLITS,
    TEXT_COLUMN,
    DataError,
    read_notes,
    stratified_split,
)


def split_dataset(frame: pd.DataFrame, seed: int = SEED) -> dict[str, pd.DataFrame]:
    """Drop unusable rows and split 70/15/15 per specialty; original columns kept."""
    usable = frame[
        (frame[TEXT_COLUMN].astype(str).str.strip() != "")
        & (frame[LABEL_COLUMN].astype(str).str.strip() != "")
    ].reset_index(drop=True)
    if usable.empty:
        raise DataError("the dataset has no row with both a transcription and a specialty")
    keyed = usable.assign(label=usable[LABEL_COLUMN].astype(str).str.strip())
    return {
        split: part.drop(columns=["label"]).reset_index(drop=True)
        for split, part in stratified_split(keyed, seed).items()
    }


def upload_dataset(
    csv_path: Path,
    bucket: str,
    s3_client: Any,
    prefix: str = DATASET_PREFIX,
    seed: int = SEED,
) -> dict[str, str]:
    """Split `csv_path` and put each split to `s3://bucket/prefix<split>.csv`; returns the URIs."""
    splits = split_dataset(read_notes(csv_path), seed)
    uris: dict[str, str] = {}
    for split in SPLITS:
        buffer = io.StringIO()
        splits[split].to_csv(buffer, index=False)
        key = f"{prefix}{split}.csv"
        s3_client.put_object(Bucket=bucket, Key=key, Body=buffer.getvalue().encode("utf-8"))
        uris[split] = f"s3://{bucket}/{key}"
    return uris


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bucket", required=True, help="the stack's data bucket")
    parser.add_argument("--csv", type=Path, default=DEFAULT_CSV)
    parser.add_argument("--prefix", default=DATASET_PREFIX)
    parser.add_argument("--region", default=None)
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args(argv)
    client = boto3.client("s3", region_name=args.region)
    try:
        uris = upload_dataset(args.csv, args.bucket, client, args.prefix, args.seed)
    except DataError as error:
        parser.error(str(error))
    for split, uri in uris.items():
        print(f"{split}: {uri}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
