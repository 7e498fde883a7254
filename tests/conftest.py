"""Shared fixtures: offline plans of the real stacks, made by the harness of `promote plan`."""

from __future__ import annotations

import pytest

from infra.offline.capture import StackPlan
from infra.offline.harness import plan_stack
from tests.plan_helpers import TEST_TAG


@pytest.fixture(scope="session")
def stack_plans() -> dict[str, StackPlan]:
    return {s: plan_stack(s, image_tag=TEST_TAG) for s in ("ops", "dev", "staging", "prod")}
