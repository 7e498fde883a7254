"""The drift loop end to end on local AWS, as `make demo` runs it (bounded in time)."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from pathlib import Path

import pytest

from ml import limits
from offline import monitoring
from offline.aws import local_aws
from offline.monitoring import BUCKET, CAPTURE_PREFIX, ENDPOINT, NAMESPACE, run_drift_demo
from offline.plan.capture import StackPlan

TIME_LIMIT_SECONDS = 150


def test_the_drift_demo_sees_no_drift_then_drift(tmp_path: Path) -> None:
    printed: list[str] = []
    started = time.monotonic()
    with local_aws("eu-west-1", "222222222222") as aws:
        # "one specialty" (the other drift) runs in the next test, through the planned alarm.
        runs = run_drift_demo(
            tmp_path,
            notes_per_scenario=250,
            training_notes=900,
            scenarios=("unchanged", "another domain"),
            aws=aws,
            out=printed.append,
        )
        s3 = aws.client("s3")
        keys = [
            item["Key"]
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
            for item in page.get("Contents", [])
        ]
        listed = aws.client("cloudwatch").list_metrics(Namespace=NAMESPACE)["Metrics"]
    elapsed = time.monotonic() - started

    assert [(r.scenario, r.verdict) for r in runs] == [
        ("unchanged", "no drift"),
        ("another domain", "drift"),
    ]
    threshold = limits.DRIFT_THRESHOLD.default
    assert runs[0].score is not None and runs[0].score < threshold
    assert all(r.score is not None and r.score > threshold for r in runs[1:])
    # Each scheduled run reads its own hour: it starts where the previous report ended.
    assert [r.window["end"] for r in runs[:-1]] == [r.window["start"] for r in runs[1:]]
    assert [r.end for r in runs] == [monitoring.START + timedelta(hours=h) for h in (1, 2)]
    # Capture files per hour, and each run's report and plot in its own folder in S3.
    captured = [k for k in keys if k.startswith(f"{CAPTURE_PREFIX}/{ENDPOINT}/AllTraffic/")]
    assert len(captured) >= 2 and all(k.endswith(".jsonl") for k in captured)
    for run in runs:
        assert run.report_uri.removeprefix(f"s3://{BUCKET}/") in keys
        assert run.plot_uri.removeprefix(f"s3://{BUCKET}/") in keys
        assert json.loads(run.local_report.read_text())["verdict"] == run.verdict
        assert run.local_plot.read_bytes()[:4] == b"\x89PNG"
        assert any(run.report_uri in line for line in printed)
    assert {m["MetricName"] for m in listed} >= {"DriftScore", "RequestsAnalysed"}
    assert elapsed < TIME_LIMIT_SECONDS, f"the drift demo took {elapsed:.0f} s"


def test_promote_monitor_runs_the_planned_alarm_and_trigger(
    stack_plans: dict[str, StackPlan], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stack_plans["prod"].write(tmp_path / "plan")
    started = time.monotonic()
    status = monitoring.main(
        ["--local", "--plan-dir", str(tmp_path / "plan"), "--workdir", str(tmp_path / "work")]
    )
    elapsed = time.monotonic() - started
    printed = capsys.readouterr().out
    assert status == 0, printed
    lines = printed.splitlines()
    assert any("alarm promote-code-prod-endpoint-drift: OK -> OK" in line for line in lines)
    assert any("OK -> ALARM" in line for line in lines)
    assert any("matches the planned rule's pattern" in line for line in lines)
    assert any("ListExecutions -> Decide -> StartRetraining (SUCCEEDED)" in line for line in lines)
    started_line = next(line for line in lines if "local SageMaker records" in line)
    assert "pipeline/promote-code-prod-training/execution/" in started_line
    assert "(drift-" in started_line
    assert "drift-reports/promote-code-prod-endpoint/2026-01-05T11:00:00Z/" in printed
    assert elapsed < 60, f"promote monitor took {elapsed:.0f} s"


def test_promote_monitor_without_a_plan_or_a_monitor_is_usage(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert monitoring.main(["--local", "--plan-dir", str(tmp_path)]) == 2
    assert "run `promote plan --json` first" in capsys.readouterr().err
    assert monitoring.main(["--plan-dir", str(tmp_path)]) == 2
    (tmp_path / "dev.json").write_text(
        StackPlan("promote-code", "dev", (), {"account": "1", "region": "r"}).to_json()
    )
    assert monitoring.main(["--local", "--stack", "dev", "--plan-dir", str(tmp_path)]) == 2
    assert "no drift monitor schedule" in capsys.readouterr().err
