"""The drift loop end to end on local AWS, as `make demo` runs it (bounded in time)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from ml.monitoring.drift import DEFAULT_THRESHOLD
from offline.aws import local_aws
from offline.monitoring import BUCKET, CAPTURE_PREFIX, ENDPOINT, NAMESPACE, run_drift_demo

TIME_LIMIT_SECONDS = 150


def test_the_drift_demo_sees_no_drift_then_drift(tmp_path: Path) -> None:
    printed: list[str] = []
    started = time.monotonic()
    with local_aws("eu-west-1", "222222222222") as aws:
        runs = run_drift_demo(
            tmp_path, notes_per_scenario=250, training_notes=900, aws=aws, out=printed.append
        )
        s3 = aws.client("s3")
        keys = [
            item["Key"]
            for page in s3.get_paginator("list_objects_v2").paginate(
                Bucket=BUCKET, Prefix=f"{CAPTURE_PREFIX}/{ENDPOINT}/"
            )
            for item in page.get("Contents", [])
        ]
        listed = aws.client("cloudwatch").list_metrics(Namespace=NAMESPACE)["Metrics"]
    elapsed = time.monotonic() - started

    assert [(r.scenario, r.verdict) for r in runs] == [
        ("unchanged", "no drift"),
        ("one specialty", "drift"),
        ("another domain", "drift"),
    ]
    assert runs[0].score is not None and runs[0].score < DEFAULT_THRESHOLD
    assert all(r.score is not None and r.score >= DEFAULT_THRESHOLD for r in runs[1:])
    # Capture files per hour, and each report and plot next to them in S3.
    captured = [k for k in keys if "/AllTraffic/" in k]
    assert len(captured) >= 3 and all(k.endswith(".jsonl") for k in captured)
    for run in runs:
        assert run.report_uri.removeprefix(f"s3://{BUCKET}/") in keys
        assert run.plot_uri.removeprefix(f"s3://{BUCKET}/") in keys
        assert json.loads(run.local_report.read_text())["verdict"] == run.verdict
        assert run.local_plot.read_bytes()[:4] == b"\x89PNG"
        assert any(run.report_uri in line for line in printed)
    assert {m["MetricName"] for m in listed} >= {"DriftScore", "RequestsAnalysed"}
    assert elapsed < TIME_LIMIT_SECONDS, f"the drift demo took {elapsed:.0f} s"
