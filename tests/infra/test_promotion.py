"""Prod deploys only the commit staging runs (StackReference to staging's deployed_commit)."""

from __future__ import annotations

import pytest

from infra.promotion import PromotionRefusedError
from offline.plan.capture import StackPlan
from offline.plan.harness import plan_stack
from tests.plan_helpers import TEST_TAG

OTHER = "fedcba9876543210fedcba9876543210fedcba98"


def test_prod_plans_when_staging_runs_the_same_commit(stack_plans: dict[str, StackPlan]) -> None:
    assert stack_plans["staging"].outputs["deployed_commit"] == TEST_TAG
    assert stack_plans["prod"].outputs["deployed_commit"] == TEST_TAG


def test_prod_refuses_a_commit_staging_does_not_run() -> None:
    with pytest.raises(PromotionRefusedError) as caught:
        plan_stack(
            "prod", image_tag=TEST_TAG, stack_outputs={"staging": {"deployed_commit": OTHER}}
        )
    message = str(caught.value)
    assert f"prod refuses commit {TEST_TAG}" in message
    assert f"runs {OTHER}" in message
    assert f"git tag -f staging {TEST_TAG}" in message


def test_prod_refuses_when_staging_never_deployed() -> None:
    with pytest.raises(PromotionRefusedError, match="exports no deployed_commit"):
        plan_stack("prod", image_tag=TEST_TAG, stack_outputs={})


def test_staging_has_no_gate() -> None:
    plan = plan_stack("staging", image_tag=OTHER, stack_outputs={})
    assert plan.outputs["deployed_commit"] == OTHER
