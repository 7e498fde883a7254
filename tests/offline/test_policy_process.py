"""The pack's process: launched as the engine launches it, in its own group, ended group and all."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest

from offline.policy.errors import Deadline, PolicyConfigError, PolicyPackError
from offline.policy.process import DEFAULT_PACK_DIR, PackProcess
from tests.policies.policy_helpers import alive, write_pack


def test_the_pack_is_launched_like_the_engine_launches_it() -> None:
    process = PackProcess(DEFAULT_PACK_DIR, project="promote-code", stack="prod")
    command = process.command("127.0.0.1:4242")
    assert command == [sys.executable, "-u", "-m", "pulumi.policy", "127.0.0.1:4242", "."]
    environment = process.environment()
    assert environment["PULUMI_PROJECT"] == "promote-code"
    assert environment["PULUMI_STACK"] == "prod"
    assert environment["PULUMI_DRY_RUN"] == "true"
    assert environment["PULUMI_ORGANIZATION"] == "organization"


def test_the_pack_virtualenv_option_picks_the_interpreter_like_the_shim(tmp_path: Path) -> None:
    (tmp_path / "PulumiPolicy.yaml").write_text(
        "runtime:\n  name: python\n  options:\n    virtualenv: venv\n"
    )
    process = PackProcess(tmp_path, project=None, stack=None)
    with pytest.raises(PolicyConfigError, match="doesn't appear to be a virtual environment"):
        process.command("127.0.0.1:1")
    (tmp_path / "venv" / "bin").mkdir(parents=True)
    (tmp_path / "venv" / "bin" / "python").symlink_to(sys.executable)
    assert process.command("127.0.0.1:1")[0] == str(tmp_path / "venv" / "bin" / "python")


@pytest.mark.parametrize(
    ("main", "expected"),
    [
        (
            "raise SystemExit('the pack is broken')",
            r"exited before printing its port \(exit code 1\): the pack is broken$",
        ),
        ("print('hello')\nimport time\ntime.sleep(30)", "printed 'hello' where the engine"),
    ],
)
def test_a_pack_that_does_not_start_is_one_line_and_stopped(
    tmp_path: Path, main: str, expected: str
) -> None:
    process = PackProcess(write_pack(tmp_path, main=main), project=None, stack=None)
    with pytest.raises(PolicyPackError, match=expected) as raised:
        process.start(Deadline(20))
    assert "\n" not in str(raised.value)
    assert raised.value.exit_code == 3
    assert not process.running


def test_a_directory_without_pulumipolicy_yaml_is_not_a_pack(tmp_path: Path) -> None:
    with pytest.raises(PolicyConfigError, match="is not a policy pack") as raised:
        PackProcess(tmp_path, project=None, stack=None).start(Deadline(5))
    assert raised.value.exit_code == 2


def test_a_pack_that_never_prints_its_port_meets_the_deadline(tmp_path: Path) -> None:
    process = PackProcess(
        write_pack(tmp_path, main="import time\ntime.sleep(60)"), project=None, stack=None
    )
    started = time.monotonic()
    with pytest.raises(
        PolicyPackError, match="exceeded its 1 s deadline during the wait for the policy pack"
    ):
        process.start(Deadline(1))
    assert time.monotonic() - started < 10
    assert not process.running


# Prints a port as a pack does, leaves a child that ignores SIGINT in its group,
# and exits 42 only on KeyboardInterrupt (what pulumi_policy's serve loop waits for).
DEAF_CHILD = "import signal, time; signal.signal(signal.SIGINT, signal.SIG_IGN); time.sleep(60)"
GROUP_PACK = f"""
import os, subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", {DEAF_CHILD!r}])
with open(os.environ["CHILD_PID_FILE"], "w") as f:
    f.write(str(child.pid))
try:
    print(4242, flush=True)
    time.sleep(60)
except KeyboardInterrupt:
    sys.exit(42)
"""


# "ignored": the runner was started as `cmd &` by a non-interactive shell (a CI script),
# which ignores SIGINT; before the pack was started with SIGINT at its default, it ignored
# SIGINT too, and every stop ran out its grace and ended in SIGKILL (-9).
@pytest.mark.parametrize("runner_ignores_sigint", [False, True], ids=["default", "ignored"])
def test_stop_interrupts_the_pack_and_ends_its_whole_group(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
    runner_ignores_sigint: bool,
) -> None:
    pid_file = tmp_path / "child.pid"
    monkeypatch.setenv("CHILD_PID_FILE", str(pid_file))
    if runner_ignores_sigint:
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        request.addfinalizer(lambda: signal.signal(signal.SIGINT, previous))
    process = PackProcess(write_pack(tmp_path / "pack", main=GROUP_PACK), project=None, stack=None)
    try:
        port, _engine = process.start(Deadline(20))
        assert port == 4242
        if runner_ignores_sigint:
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN  # as it was
        pack = process.pid
        assert pack is not None
        # Its own group (and session): a Ctrl-C at the terminal reaches only the runner.
        assert os.getpgid(pack) == pack != os.getpgrp()
        for _ in range(500):
            if pid_file.is_file() and pid_file.read_text():
                break
            time.sleep(0.01)
        child = int(pid_file.read_text())
        assert alive(child) and os.getpgid(child) == pack
        process.stop()
        # 42 only if the pack saw SIGINT first (SIGKILL would give -9).
        assert process.returncode == 42
        for _ in range(200):
            if not alive(child):
                break
            time.sleep(0.01)
        assert not alive(child), "the pack's child outlived stop()"
        assert not process.running
    finally:
        process.stop()
        if pid_file.is_file() and pid_file.read_text():
            leftover = int(pid_file.read_text())
            if alive(leftover):
                os.kill(leftover, 9)
