"""Process hygiene of `promote pipeline run --local`, with real processes and signals.

A run is started as its own process on the dev stack's plan; while a step job runs,
a second run on the same work directory is refused, then the first gets SIGTERM or
SIGINT: it must end its step job and its local AWS server, release the work
directory and exit 128 + the signal's number, all within bounded time.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from offline.pipeline import cli
from offline.pipeline.processes import WORKDIR_MARKER, WorkdirLock
from offline.plan.capture import StackPlan
from tests.offline.support import alive

pytestmark = pytest.mark.skipif(not Path("/proc/self/cmdline").is_file(), reason="needs /proc")

DEADLINE = 90.0
"""Seconds a run may take to reach its first job on a busy machine (moto and pandas start)."""


@pytest.fixture(scope="module")
def plan_dir(stack_plans: dict[str, StackPlan], tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("plan")
    stack_plans["dev"].write(directory)
    return directory


def jobs_in(workdir: Path, exclude: int) -> list[int]:
    """PIDs of the processes whose command line names `workdir` (step jobs), but `exclude`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == exclude:
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if str(workdir) in command and alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def lines_of(stream: object) -> queue.Queue[str]:
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for line in stream:  # type: ignore[attr-defined]
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    return lines


def wait_for(lines: queue.Queue[str], pattern: str) -> re.Match[str]:
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        try:
            match = re.search(pattern, lines.get(timeout=1))
        except queue.Empty:
            continue
        if match:
            return match
    raise AssertionError(f"no line matching {pattern!r} within {DEADLINE} s")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_ends_every_child_and_frees_the_workdir(
    signum: signal.Signals, plan_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    workdir = tmp_path / "work"
    argv = ["--plan-dir", str(plan_dir), "--workdir", str(workdir)]
    run = subprocess.Popen(
        [sys.executable, "-m", "offline.pipeline.cli", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        server = int(wait_for(lines_of(run.stdout), r"server pid (\d+)").group(1))
        deadline = time.monotonic() + DEADLINE
        while not (jobs := jobs_in(workdir, exclude=run.pid)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert jobs, "no step job started"

        # A second run on the same work directory is refused, naming the holder.
        assert cli.main(argv) == 75
        refused = capsys.readouterr().err
        assert f"another local run (PID {run.pid}) holds {workdir}" in refused

        run.send_signal(signum)
        status = run.wait(timeout=30)
        err = run.stderr.read() if run.stderr else ""
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    assert status == 128 + signum, err
    assert f"interrupted ({signal.Signals(signum).name})" in err
    assert "Traceback" not in err
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in (*jobs, server)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [pid for pid in (*jobs, server) if alive(pid)] == []
    assert jobs_in(workdir, exclude=run.pid) == []
    lock = WorkdirLock(workdir / WORKDIR_MARKER)
    lock.acquire(workdir)  # free again: the next run can start
    lock.release()
