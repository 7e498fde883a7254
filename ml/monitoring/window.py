"""A scheduled run's window and the endpoint's capture in it, read from S3.

The window starts where the newest earlier report (`DRIFT_REPORT_S3_URI`) ended, never
more than the lookback before its end (`window_of`). Only the hour folders the window
touches are listed, plus the hour before it (a capture file is filed under the hour it was
started in), and the objects are downloaded and analysed a batch at a time, so scratch
space holds at most `DOWNLOAD_BATCH_BYTES` of capture (`analyse_s3`).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ml.monitoring import baseline as baselines
from ml.monitoring import capture, report
from ml.monitoring.analysis import analyse
from ml.monitoring.capture import CaptureStats
from ml.monitoring.config import MonitorConfig, MonitorError
from ml.monitoring.drift import DriftAccumulator

HOUR = timedelta(hours=1)
DOWNLOAD_BATCH_BYTES = 256 * 2**20
"""Capture bytes held in scratch space at once: a week of busy traffic never fills the disk."""


def split_s3_uri(uri: str) -> tuple[str, str]:
    """(bucket, key prefix ending in '/' or empty) of `s3://bucket/prefix`."""
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    if not bucket:
        raise MonitorError(f"{uri!r} names no bucket (expected s3://<bucket>/<prefix>/)")
    return bucket, key if not key or key.endswith("/") else f"{key}/"


def _folders(s3: Any, bucket: str, prefix: str) -> Iterator[str]:
    """The `<prefix><name>/` folders right under `prefix` (ListObjectsV2 with a delimiter)."""
    pages = s3.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=prefix, Delimiter="/"
    )
    for page in pages:
        for common in page.get("CommonPrefixes", []):
            yield str(common["Prefix"])


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime
    previous_report: str | None
    """The report the window continues from (None: the lookback decided the start)."""


def window_of(s3: Any, config: MonitorConfig) -> Window:
    """[start, end): from the newest earlier report's end, at most the lookback back."""
    assert config.end is not None and config.max_lookback is not None  # from_environment
    end, earliest = config.end, config.end - config.max_lookback
    if config.report_uri is None:
        return Window(earliest, end, None)
    bucket, prefix = split_s3_uri(config.report_uri)
    runs: list[tuple[datetime, str]] = []
    for folder in _folders(s3, bucket, prefix):
        try:
            stamp = capture.parse_time(folder[len(prefix) :].rstrip("/"))
        except ValueError:
            continue  # not a run's folder (each is named by its scheduled time)
        if stamp < end:  # a later folder is a backfill run's, not this run's past
            runs.append((stamp, folder))
    for stamp, folder in sorted(runs, reverse=True):
        key = f"{folder}{report.REPORT_FILE}"
        try:
            document = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        except s3.exceptions.NoSuchKey:
            continue  # a folder without a report: that run did not finish
        recorded = (document.get("window") or {}).get("end") if isinstance(document, dict) else None
        try:
            previous = capture.parse_time(recorded) if isinstance(recorded, str) else stamp
        except ValueError:
            previous = stamp
        start = min(max(previous, earliest), end)
        return Window(start, end, f"s3://{bucket}/{key}")
    return Window(earliest, end, None)


@dataclass(frozen=True)
class CaptureObject:
    key: str
    size: int


def window_objects(s3: Any, source_uri: str, window: Window) -> tuple[list[CaptureObject], int]:
    """The capture objects of the window's hour folders (and the hour before), and how many
    hour folders were listed: `<prefix><variant>/yyyy/mm/dd/hh/*.jsonl`, in key order."""
    bucket, prefix = split_s3_uri(source_uri)
    first = window.start.astimezone(UTC).replace(minute=0, second=0, microsecond=0) - HOUR
    hours = []
    hour = first
    while hour < window.end:
        hours.append(hour)
        hour += HOUR
    found: list[CaptureObject] = []
    listed = 0
    paginator = s3.get_paginator("list_objects_v2")
    for variant in _folders(s3, bucket, prefix):
        for hour in hours:
            listed += 1
            for page in paginator.paginate(Bucket=bucket, Prefix=f"{variant}{hour:%Y/%m/%d/%H}/"):
                found.extend(
                    CaptureObject(item["Key"], int(item["Size"]))
                    for item in page.get("Contents", [])
                    if item["Key"].endswith(capture.CAPTURE_SUFFIX)
                )
    return sorted(found, key=lambda item: item.key), listed


def analyse_s3(
    s3: Any,
    bucket: str,
    objects: list[CaptureObject],
    baseline: baselines.Baseline,
    *,
    window: Window,
    scratch: Path,
) -> tuple[DriftAccumulator, CaptureStats]:
    """Download `objects` a batch at a time, analyse each batch, merge the counts."""
    accumulator, stats = DriftAccumulator(baseline), CaptureStats()
    batch: list[CaptureObject] = []

    def flush() -> None:
        folder = scratch / "capture"
        files = []
        for item in batch:
            target = folder / item.key
            target.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(bucket, item.key, str(target))
            files.append(target)
        try:
            part, part_stats = analyse(files, baseline, window.start, window.end)
        except capture.CaptureError as error:  # name the object, not the scratch copy
            raise capture.CaptureError(
                str(error).replace(f"{folder}/", f"s3://{bucket}/")
            ) from None
        accumulator.merge(part)
        stats.merge(part_stats)
        shutil.rmtree(folder, ignore_errors=True)
        batch.clear()

    size = 0
    for item in objects:
        batch.append(item)
        size += item.size
        if size >= DOWNLOAD_BATCH_BYTES:
            flush()
            size = 0
    if batch:
        flush()
    return accumulator, stats
