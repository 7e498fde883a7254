"""Split a mtsamples-format CSV 70/15/15 (fixed seed) and upload it to the data bucket.

The successor of the original `upload_dataset.py`: the file is validated as
preprocess-data validates it (encoding, delimiter, columns, at least two labels
with 3 distinct notes) before anything is uploaded, so a bad file never replaces
the previous split in the bucket. Rows without a transcription or a specialty are
dropped; the rest is split 70/15/15 of the distinct texts per specialty (a
note and its near-exact copies, under any label, land in one split) and written
as `train.csv`, `validation.csv`, `test.csv` under `data/` in the stack's data
bucket, where the pipeline's `InputDataUri` parameter points by default. Columns
are kept as they are: cleaning is the pipeline's job.

    uv run python -m ml.data.upload --bucket <data bucket> [--csv path] [--region eu-west-1]
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path
from typing import Any

import boto3
import botocore.exceptions
import pandas as pd

from ml.data.synthetic import DEFAULT_CSV
from ml.pipeline.contract import DATASET_PREFIX
from ml.steps.notes_csv import TEXT_COLUMN, DataError, clean, read_notes
from ml.steps.preprocess import (
    DEFAULT_CONFLICT_POLICY,
    SEED,
    SPLITS,
    drop_rare_labels,
    grouped_split,
    resolve_duplicates,
    text_key,
)


def split_dataset(frame: pd.DataFrame, seed: int = SEED) -> dict[str, pd.DataFrame]:
    """Validate, drop unusable rows and split by text; original columns and rows kept.

    Raises DataError (nothing to upload) for no usable row or fewer than two labels.
    """
    try:
        cleaned = clean(frame, "the dataset")
    except DataError:
        raise DataError(
            "the dataset has no row with both a transcription and a specialty"
        ) from None
    report: dict[str, object] = {}
    kept = drop_rare_labels(resolve_duplicates(cleaned, DEFAULT_CONFLICT_POLICY, report), report)
    split_of_key = dict(zip(kept["key"], grouped_split(kept, seed), strict=True))
    text = frame[TEXT_COLUMN].astype(str).str.replace(r"\s+", " ", regex=True).str.strip()
    split = text_key(text).map(split_of_key)
    return {name: frame[split == name].reset_index(drop=True) for name in SPLITS}


def upload_dataset(
    csv_path: Path,
    bucket: str,
    s3_client: Any,
    prefix: str = DATASET_PREFIX,
    seed: int = SEED,
    *,
    encoding: str = "utf-8",
    delimiter: str = ",",
) -> dict[str, str]:
    """Split `csv_path` and put each split to `s3://bucket/prefix<split>.csv`; returns the URIs."""
    splits = split_dataset(read_notes(csv_path, encoding, delimiter), seed)
    uris: dict[str, str] = {}
    for split in SPLITS:
        buffer = io.StringIO()
        splits[split].to_csv(buffer, index=False)
        key = f"{prefix}{split}.csv"
        s3_client.put_object(Bucket=bucket, Key=key, Body=buffer.getvalue().encode("utf-8"))
        uris[split] = f"s3://{bucket}/{key}"
    return uris


EXIT_RETRY = 75


def main(argv: list[str] | None = None) -> int:
    """Exit 0 uploaded; 1 bad data or a refused upload; 2 usage or no credentials; 75 retry."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bucket", required=True, help="the stack's data bucket")
    parser.add_argument("--csv", type=Path, default=DEFAULT_CSV)
    parser.add_argument("--prefix", default=DATASET_PREFIX)
    parser.add_argument("--region", default=None)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--encoding", default="utf-8", help="text encoding of the CSV")
    parser.add_argument("--delimiter", default=",", help="CSV field delimiter")
    args = parser.parse_args(argv)
    client = boto3.client("s3", region_name=args.region)
    try:
        uris = upload_dataset(
            args.csv,
            args.bucket,
            client,
            args.prefix,
            args.seed,
            encoding=args.encoding,
            delimiter=args.delimiter,
        )
    except DataError as error:
        print(f"upload failed: {error}", file=sys.stderr)
        return 1
    except (
        botocore.exceptions.EndpointConnectionError,
        botocore.exceptions.ConnectTimeoutError,
    ) as error:
        print(f"upload failed: S3 is unreachable ({error}); retry later", file=sys.stderr)
        return EXIT_RETRY
    except botocore.exceptions.NoCredentialsError:
        print("upload failed: no AWS credentials; assume the stack's deploy role", file=sys.stderr)
        return 2
    except botocore.exceptions.ClientError as error:
        code = error.response.get("Error", {}).get("Code", "?")
        print(
            f"upload failed: s3://{args.bucket}: {code} ({error}); check --bucket "
            "(pulumi stack output data_bucket_name) and the role's access",
            file=sys.stderr,
        )
        return EXIT_RETRY if code in ("SlowDown", "ServiceUnavailable", "InternalError") else 1
    for split, uri in uris.items():
        print(f"{split}: {uri}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
