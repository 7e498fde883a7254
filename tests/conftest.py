"""Shared fixtures: offline plans of the real stacks, made by the harness of `promote plan`."""

from __future__ import annotations

import pytest

from offline.plan.capture import StackPlan
from offline.plan.harness import plan_stacks
from tests.plan_helpers import TEST_TAG


@pytest.fixture(scope="session")
def stack_plans() -> dict[str, StackPlan]:
    return plan_stacks(
        ("identity", "ops", "dev", "staging", "prod"),
        image_tag=TEST_TAG,
    )
