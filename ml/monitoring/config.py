"""The drift monitoring job's configuration, read from the environment its job request sets.

`MonitorConfig.from_environment` checks every variable the job contract names
(`ml.monitoring.job`): a missing or malformed one raises `MonitorError` with one line
naming the variable and what to do. `DRIFT_THRESHOLD` and `DRIFT_MIN_NOTES` take their
defaults and ranges from ml/limits.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from ml import limits
from ml.monitoring import capture


class MonitorError(ValueError):
    """A configuration or input the job cannot use; the message says which and what to do."""


@dataclass(frozen=True)
class MonitorConfig:
    dataset_source: str
    """`s3://bucket/prefix/` (the endpoint's capture) or a local file or folder."""
    output_path: Path
    endpoint: str
    start: datetime | None
    """Local mode only (`start_time`); from S3 the previous report decides it."""
    end: datetime | None
    threshold: float
    min_notes: int
    namespace: str | None
    baseline_uri: str | None
    report_uri: str | None = None
    max_lookback: timedelta | None = None

    @property
    def from_s3(self) -> bool:
        return self.dataset_source.startswith("s3://")

    @classmethod
    def from_environment(cls, env: Mapping[str, str]) -> MonitorConfig:
        def required(name: str, why: str = "the schedule's job request sets it") -> str:
            value = env.get(name, "").strip()
            if not value:
                raise MonitorError(f"environment variable {name} is not set ({why})")
            return value

        def number(name: str, bounds: limits.Bounds[Any], kind: type[float] | type[int]) -> Any:
            raw = env.get(name, "").strip()
            try:
                value = kind(raw) if raw else bounds.default
            except ValueError:
                raise MonitorError(f"{name}={raw!r} is not a {kind.__name__}") from None
            problem = bounds.problem(name, value)
            if problem is not None:
                raise MonitorError(problem)
            return value

        def when(name: str) -> datetime | None:
            raw = env.get(name, "").strip()
            try:
                return capture.parse_time(raw) if raw else None
            except ValueError:
                raise MonitorError(f"{name}={raw!r} is not an ISO 8601 time") from None

        source = required("dataset_source")
        threshold = number("DRIFT_THRESHOLD", limits.DRIFT_THRESHOLD, float)
        min_notes = number("DRIFT_MIN_NOTES", limits.DRIFT_MIN_RECORDS, int)
        report_uri = env.get("DRIFT_REPORT_S3_URI", "").strip() or None
        lookback = None
        if source.startswith("s3://"):
            if env.get("start_time", "").strip():
                raise MonitorError(
                    "start_time is set with an s3:// dataset_source: the window starts at the "
                    "previous report's end (DRIFT_REPORT_S3_URI); unset start_time"
                )
            required("end_time", "the schedule's scheduled time: the window's end")
            raw = required("DRIFT_MAX_LOOKBACK_SECONDS", "how far back a first run reads")
            try:
                seconds = int(raw)
            except ValueError:
                raise MonitorError(f"DRIFT_MAX_LOOKBACK_SECONDS={raw!r} is not an int") from None
            if seconds < 60:
                raise MonitorError(f"DRIFT_MAX_LOOKBACK_SECONDS must be >= 60, got {seconds}")
            lookback = timedelta(seconds=seconds)
            if report_uri is not None and not report_uri.startswith("s3://"):
                raise MonitorError(f"DRIFT_REPORT_S3_URI={report_uri!r} is not an s3:// URI")
        return cls(
            dataset_source=source,
            output_path=Path(required("output_path")),
            endpoint=required("sagemaker_endpoint_name"),
            start=when("start_time"),
            end=when("end_time"),
            threshold=threshold,
            min_notes=min_notes,
            namespace=env.get("DRIFT_METRICS_NAMESPACE", "").strip() or None,
            baseline_uri=env.get("DRIFT_BASELINE_URI", "").strip() or None,
            report_uri=report_uri,
            max_lookback=lookback,
        )
