"""Local S3 to and from a job's mounted directories, as SageMaker syncs them.

Inputs are downloaded under the directory mounted for them before the job starts
(`download`); outputs are uploaded, file by file, at the end of the job (`upload_dir`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from offline.pipeline.errors import LocalRunError


def split_s3_uri(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://"):
        raise LocalRunError(f"not an S3 URI: {uri!r}")
    bucket, _, key = uri[len("s3://") :].partition("/")
    return bucket, key


def download(s3: Any, uri: str, target: Path) -> None:
    """Every object under `uri` into `target`, keyed by its path below the prefix (a key
    that is the URI itself by its name)."""
    bucket, prefix = split_s3_uri(uri)
    keys = list(_keys(s3, bucket, prefix))
    if not keys:
        raise LocalRunError(f"nothing in local S3 under {uri}")
    for key in keys:
        relative = key.rsplit("/", 1)[-1] if key == prefix else key[len(prefix) :].lstrip("/")
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def _keys(s3: Any, bucket: str, prefix: str) -> Iterator[str]:
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            yield item["Key"]


def upload_dir(s3: Any, directory: Path, uri: str) -> None:
    """Every file under `directory` to `uri`, keyed by its path below `directory`."""
    bucket, prefix = split_s3_uri(uri)
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        key = f"{prefix.rstrip('/')}/{path.relative_to(directory).as_posix()}"
        s3.put_object(Bucket=bucket, Key=key, Body=path.read_bytes())
