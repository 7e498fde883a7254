"""Capture files -> drift counts, on every core the job has.

Capture files are independent, so they are dealt round-robin (in path order) to one
process per core; each bins its files' notes against the baseline and the counts are
merged in worker order. The counts are integers, so the result does not depend on the
number of workers (the means in the report are rounded for the same reason).
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime
from pathlib import Path

from ml.monitoring.baseline import Baseline
from ml.monitoring.capture import CaptureStats, observations
from ml.monitoring.drift import DriftAccumulator

MIN_FILES_PER_WORKER = 2
"""Fewer files than this per extra process: not worth starting one."""


def available_cores() -> int:
    """The cores this process may run on (a container's CPU set, not the host's count)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def analyse_files(
    files: list[Path],
    baseline: Baseline,
    start: datetime | None = None,
    end: datetime | None = None,
) -> tuple[DriftAccumulator, CaptureStats]:
    """Bin the notes of `files` in [start, end) against `baseline`, in this process."""
    stats = CaptureStats()
    accumulator = DriftAccumulator(baseline)
    accumulator.add_all(observations(files, stats, start, end))
    return accumulator, stats


def analyse(
    files: list[Path],
    baseline: Baseline,
    start: datetime | None = None,
    end: datetime | None = None,
    workers: int | None = None,
) -> tuple[DriftAccumulator, CaptureStats]:
    """`analyse_files` spread over `workers` processes (default: the available cores)."""
    wanted = available_cores() if workers is None else workers
    count = max(1, min(wanted, len(files) // MIN_FILES_PER_WORKER))
    if count == 1:
        return analyse_files(files, baseline, start, end)
    shares = [files[i::count] for i in range(count)]
    with ProcessPoolExecutor(max_workers=count) as pool:
        parts = list(
            pool.map(
                analyse_files,
                shares,
                [baseline] * count,
                [start] * count,
                [end] * count,
            )
        )
    accumulator, stats = DriftAccumulator(baseline), CaptureStats()
    for part, part_stats in parts:
        accumulator.merge(part)
        stats.merge(part_stats)
    return accumulator, stats
