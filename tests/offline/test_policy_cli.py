"""`promote plan --policies`: 1 only for mandatory violations, 2/3 in one line, 130/143 on signals.

The plans are small hand-made ones (planning the program is tested elsewhere);
the CLI, the runner and the pack processes are the real ones.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from offline import cli
from offline.plan.capture import StackPlan
from offline.policy import runner
from tests.policies.policy_helpers import (
    alive,
    children,
    good_resources,
    one_resource_plan,
    plan_of,
    set_inputs,
    write_config,
    write_pack,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
Promote = Callable[..., tuple[int, str, str]]


@pytest.fixture
def promote(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Promote:
    """Run `promote plan` in-process over `plans` with the given pack and config directory."""

    def run(
        plans: dict[str, StackPlan],
        *args: str,
        pack_dir: Path = runner.DEFAULT_PACK_DIR,
        config_dir: Path | None = None,
    ) -> tuple[int, str, str]:
        monkeypatch.setattr(
            cli, "plan_stacks", lambda _stacks, image_tag, verifications=None: plans
        )
        where = {"config_dir": config_dir} if config_dir is not None else {}
        analyze = functools.partial(runner.analyze_plans, pack_dir=pack_dir, **where)
        monkeypatch.setattr(cli, "analyze_plans", analyze)
        capsys.readouterr()
        code = cli.main(["plan", *args])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def test_exit_1_only_for_mandatory_violations(promote: Promote) -> None:
    foreign = set_inputs("deployer", imageUri="docker.io/library/python:3.11")
    dev = {"dev": plan_of("dev", foreign(good_resources("dev")))}
    code, out, err = promote(dev)
    assert (code, err) == (0, "")
    assert "dev: 1 policy violation(s), 0 mandatory" in out
    prod = {"prod": plan_of("prod", foreign(good_resources("prod")))}
    code, out, err = promote(prod)
    assert code == 1
    assert one_line(err) == "mandatory policy violations in: prod"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "prod.json is missing; run `uv run python -m infra.policy_config --write`"),
        ('{"required-tags": "mandatory",', "prod.json: not valid JSON (line 1"),
        ({"all": "disabled"}, "prod.json: policy config for prod lowers rules"),
        ({"required-tags": "blocking"}, "'blocking' is not a valid enforcement level"),
    ],
)
def test_a_broken_policy_config_exits_2_in_one_line(
    promote: Promote, tmp_path: Path, content: object, expected: str
) -> None:
    if content is not None:
        write_config(tmp_path, "prod", content)
    code, _out, err = promote(
        {"prod": plan_of("prod", good_resources("prod"))}, config_dir=tmp_path
    )
    assert code == 2, err
    line = one_line(err)
    assert line.startswith("error: ") and expected in line, line


@pytest.mark.parametrize(
    ("validator", "main", "timeout", "expected"),
    [
        (
            "pass",
            "raise SystemExit('cannot import rules')",
            "60",
            "exited before printing its port",
        ),
        ("crash", None, "60", "failed Analyze of urn:pulumi:prod::promote-code::aws:s3/bucket"),
        ("slow", None, "2", "exceeded its 2 s deadline during Analyze of urn:pulumi:prod"),
    ],
)
def test_a_pack_that_fails_exits_3_in_one_line(
    promote: Promote,
    tmp_path: Path,
    validator: str,
    main: str | None,
    timeout: str,
    expected: str,
) -> None:
    pack_dir = write_pack(tmp_path / "pack", validator, main=main)
    config_dir = tmp_path / "config"
    write_config(config_dir, "prod", {"test-rule": "mandatory"})
    started = time.monotonic()
    code, _out, err = promote(
        {"prod": one_resource_plan()},
        "--policy-timeout",
        timeout,
        pack_dir=pack_dir,
        config_dir=config_dir,
    )
    assert code == 3, err
    line = one_line(err)
    assert line.startswith("error: ") and "policy" in line and expected in line, line
    assert time.monotonic() - started < 30


def test_the_policy_timeout_must_be_positive(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as raised:
        cli.main(["plan", "--policy-timeout", "0"])
    assert raised.value.code == 2
    assert "'0' is not a positive number of seconds" in capsys.readouterr().err


# `promote plan` over a one-resource plan, with a pack whose rule hangs in Analyze.
DRIVER = """
import functools, sys
from pathlib import Path
import offline.cli as cli
from offline.policy import runner
from tests.policies.policy_helpers import one_resource_plan
plans = {"prod": one_resource_plan()}
cli.plan_stacks = lambda stacks, image_tag, verifications=None: plans
cli.analyze_plans = functools.partial(
    runner.analyze_plans, pack_dir=Path(sys.argv[1]), config_dir=Path(sys.argv[2])
)
sys.exit(cli.main(["plan", "--stack", "prod"]))
"""


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_stops_the_pack_group_and_exits_128_plus_it(
    tmp_path: Path, signum: signal.Signals, code: int
) -> None:
    pack_dir = write_pack(tmp_path / "pack", "slow")
    config_dir = tmp_path / "config"
    write_config(config_dir, "prod", {"test-rule": "mandatory"})
    marker = tmp_path / "analyzing"
    env = {**os.environ, "TEST_PACK_MARKER": str(marker), "PYTHONPATH": str(REPO_ROOT)}
    promote = subprocess.Popen(
        [sys.executable, "-c", DRIVER, str(pack_dir), str(config_dir)],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    packs: list[int] = []
    try:
        ends = time.monotonic() + 60
        while not marker.exists():  # the pack is inside Analyze, the runner blocked on it
            assert promote.poll() is None, promote.communicate()
            assert time.monotonic() < ends, "the pack never reached Analyze"
            time.sleep(0.02)
        packs = children(promote.pid, containing="pulumi.policy")
        assert len(packs) == 1
        os.kill(promote.pid, signum)
        _out, err = promote.communicate(timeout=30)
        assert promote.returncode == code, err
        assert f"promote: interrupted by {signum.name}" in err
        assert "Traceback" not in err
        assert not alive(packs[0])
        with pytest.raises(ProcessLookupError):
            os.killpg(packs[0], 0)  # nothing of the pack's group is left
    finally:
        for group in (promote.pid, *packs):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(group, signal.SIGKILL)
        if promote.poll() is None:
            promote.kill()
            promote.wait()
