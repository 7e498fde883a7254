"""Shared fixtures: offline plans of the real stacks, made by `promote plan --json`."""

from __future__ import annotations

import contextlib
import fcntl
import functools
from collections.abc import Iterator
from pathlib import Path

import botocore.loaders
import botocore.session
import pytest

from offline.plan.capture import StackPlan
from tests.plan_helpers import PLANNED_STACKS, hostile_plan

# One botocore data loader per test process. moto's mock_aws() sets boto3.DEFAULT_SESSION
# aside, so each boto3.client() inside it makes a new session whose new loader parses the
# service's JSON model again (0.1-0.3 s a client; tests/ml/test_lineage.py took 15.1 s
# without this, 8.2 s with it). The loader only reads botocore's own data files, which no
# test changes: sharing it changes nothing but the time.
botocore.session.create_loader = functools.cache(botocore.loaders.create_loader)  # type: ignore[assignment]


@contextlib.contextmanager
def _exclusive(path: Path) -> Iterator[None]:
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@pytest.fixture(scope="session")
def planned_dir(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Path:
    """Every stack's plan, made once per test run by `hostile_plan` (about 8 s of CPU).

    Under pytest-xdist the first worker to ask plans beside the workers' temporary
    directories; the others wait for it and read the same files. Reading a plan back is
    lossless (tests/offline/test_mocks.py holds `StackPlan.from_json(plan.to_json()) ==
    plan`), and tests/infra/test_environment_stacks.py plans again in the test process.
    """
    root = tmp_path_factory.getbasetemp()
    shared = (root if worker_id == "master" else root.parent) / "stack-plans"
    with _exclusive(shared.with_suffix(".lock")):
        if not (shared / "complete").is_file():
            shared.mkdir(exist_ok=True)
            hostile_plan(shared)
            (shared / "complete").touch()
    return shared


@pytest.fixture(scope="session")
def stack_plans(planned_dir: Path) -> dict[str, StackPlan]:
    """The plans of `planned_dir`, by stack."""
    return {s: StackPlan.from_json((planned_dir / f"{s}.json").read_text()) for s in PLANNED_STACKS}


# The modules with the longest end-to-end runs go out first, so that under pytest-xdist
# (`--dist loadfile`: a module's fixtures run once, on one worker) the run ends on the
# small modules instead of one worker finishing a 20 s module while the other idles. The
# second needs no plan: its worker does not wait for the first's `planned_dir`.
SLOWEST_FIRST = (
    "tests/offline/test_local_run.py",
    "tests/ml/test_tracking.py",
    "tests/offline/test_monitor_local.py",
    "tests/infra/test_environment_stacks.py",
    "tests/security/test_parliament.py",
    "tests/offline/test_local_processes.py",
    "tests/offline/test_policy_cli.py",
    "tests/ml/test_champion.py",
    "tests/ml/test_drift.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {path: number for number, path in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.partition("::")[0], len(rank)))
