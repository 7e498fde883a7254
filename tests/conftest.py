"""Shared fixtures: offline plans of the real stacks, made by the harness of `promote plan`."""

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
from offline.plan.harness import plan_stacks
from tests.plan_helpers import TEST_TAG

PLANNED_STACKS = ("identity", "ops", "dev", "staging", "prod")

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
def stack_plans(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> dict[str, StackPlan]:
    """Every stack planned once per test run (about 6 s of CPU).

    Under pytest-xdist the first worker plans and writes each plan's JSON beside the
    workers' temporary directories; the others read it back, which is lossless
    (tests/offline/test_mocks.py holds `StackPlan.from_json(plan.to_json()) == plan`).
    """
    if worker_id == "master":
        return plan_stacks(PLANNED_STACKS, image_tag=TEST_TAG)
    shared = tmp_path_factory.getbasetemp().parent / "stack-plans"
    with _exclusive(shared.with_suffix(".lock")):
        if not (shared / "complete").is_file():
            plans = plan_stacks(PLANNED_STACKS, image_tag=TEST_TAG)
            shared.mkdir(exist_ok=True)
            for plan in plans.values():
                plan.write(shared)
            (shared / "complete").touch()
            return plans
    return {s: StackPlan.from_json((shared / f"{s}.json").read_text()) for s in PLANNED_STACKS}
