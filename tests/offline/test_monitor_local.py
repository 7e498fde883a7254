"""The drift loop end to end on local AWS, as `make demo` runs it (bounded in time).

One `promote monitor --local` run on the prod plan is shared by the tests that read what
it printed and left in local AWS: the no-drift stream, then the shifted one ("one
specialty"), each through the real serving code, capture, the monitoring job, the planned
alarm and the planned retraining trigger. "another domain", the third drift scenario, is
scored in tests/ml/test_drift.py.
"""

from __future__ import annotations

import contextlib
import io
import json
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from ml import limits
from ml.monitoring.metrics import DRIFT_SCORE, REQUESTS
from ml.monitoring.report import PLOT_FILE, REPORT_FILE
from offline import monitoring
from offline.aws import local_aws
from offline.monitoring import CAPTURE_PREFIX, LOOP_SCENARIOS, plan_target
from offline.plan.capture import StackPlan

TIME_LIMIT_SECONDS = 60


@dataclass(frozen=True)
class Loop:
    """What `promote monitor --local` returned, printed, and left in local AWS."""

    status: int
    printed: str
    elapsed: float
    workdir: Path
    keys: list[str]
    """Every S3 key in the capture bucket after the run."""
    metrics: set[str]
    """The metric names in the monitor's CloudWatch namespace after the run."""
    target: monitoring.MonitorTarget

    def reports(self) -> list[dict[str, Any]]:
        """Each run's report, in scenario order."""
        return [json.loads(path.read_text()) for path in self.local(REPORT_FILE)]

    def local(self, name: str) -> list[Path]:
        return sorted((self.workdir / "monitor").glob(f"*/output/{name}"))


@pytest.fixture(scope="module")
def loop(stack_plans: dict[str, StackPlan], tmp_path_factory: pytest.TempPathFactory) -> Loop:
    plan = stack_plans["prod"]
    root = tmp_path_factory.mktemp("monitor")
    plan.write(root / "plan")
    target = plan_target(plan)
    argv = ["--local", "--plan-dir", str(root / "plan"), "--workdir", str(root / "work")]
    printed = io.StringIO()
    with local_aws(target.region, target.account) as aws:
        started = time.monotonic()
        with contextlib.redirect_stdout(printed):
            status = monitoring.main(argv, aws=aws)
        elapsed = time.monotonic() - started
        keys = [
            item["Key"]
            for page in aws.client("s3")
            .get_paginator("list_objects_v2")
            .paginate(Bucket=target.bucket)
            for item in page.get("Contents", [])
        ]
        listed = aws.client("cloudwatch").list_metrics(Namespace=target.namespace)["Metrics"]
    return Loop(
        status,
        printed.getvalue(),
        elapsed,
        root / "work",
        keys,
        {m["MetricName"] for m in listed},
        target,
    )


def test_promote_monitor_runs_the_planned_alarm_and_trigger(loop: Loop) -> None:
    assert loop.status == 0, loop.printed
    lines = loop.printed.splitlines()
    assert "drift loop: behaved as planned" in lines[-1]
    assert any("alarm promote-code-prod-endpoint-drift: OK -> OK" in line for line in lines)
    assert any("OK -> ALARM" in line for line in lines)
    assert any("matches the planned rule's pattern" in line for line in lines)
    assert any("ListExecutions -> Decide -> StartRetraining (SUCCEEDED)" in line for line in lines)
    started_line = next(line for line in lines if "local SageMaker records" in line)
    assert "pipeline/promote-code-prod-training/execution/" in started_line
    assert "(drift-" in started_line
    assert "drift-reports/promote-code-prod-endpoint/2026-01-05T11:00:00Z/" in loop.printed
    assert loop.elapsed < TIME_LIMIT_SECONDS, f"promote monitor took {loop.elapsed:.0f} s"


def test_the_monitor_sees_no_drift_then_drift_and_publishes_each_hour(loop: Loop) -> None:
    reports = loop.reports()
    assert [r["verdict"] for r in reports] == ["no drift", "drift"]
    assert len(reports) == len(LOOP_SCENARIOS)
    threshold = limits.DRIFT_THRESHOLD.default
    assert reports[0]["score"] < threshold < reports[1]["score"]
    # Each scheduled run reads its own hour: it starts where the previous report ended.
    windows = [r["window"] for r in reports]
    assert windows[0]["end"] == windows[1]["start"]
    ends = [monitoring.START + timedelta(hours=h) for h in (1, 2)]
    assert [w["end"] for w in windows] == [monitoring.scheduled_time(end) for end in ends]
    # Capture files per hour, and each run's report and plot in its own folder in S3.
    capture = f"{CAPTURE_PREFIX}/{loop.target.endpoint}/AllTraffic/"
    captured = [k for k in loop.keys if k.startswith(capture)]
    assert len(captured) >= 2 and all(k.endswith(".jsonl") for k in captured)
    for end in ends:
        folder = loop.target.output_uri(monitoring.scheduled_time(end))
        prefix = folder.removeprefix(f"s3://{loop.target.bucket}/")
        assert {f"{prefix}{REPORT_FILE}", f"{prefix}{PLOT_FILE}"} <= set(loop.keys), prefix
        assert folder in loop.printed
    assert all(path.read_bytes()[:4] == b"\x89PNG" for path in loop.local(PLOT_FILE))
    assert loop.metrics >= {DRIFT_SCORE, REQUESTS}


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
