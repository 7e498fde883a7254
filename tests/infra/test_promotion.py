"""Prod deploys exactly what staging runs and has proven (StackReference to staging's exports)."""

from __future__ import annotations

from typing import Any

import pytest

from infra.promotion import GATE_TYPE, VERIFICATION_CHECKS, PromotionRefusedError
from offline.plan.capture import StackPlan
from offline.plan.harness import plan_stack
from tests.plan_helpers import TEST_TAG, verification_record

OTHER = "fedcba9876543210fedcba9876543210fedcba98"


def plan_prod(staging: dict[str, Any]) -> StackPlan:
    return plan_stack("prod", image_tag=TEST_TAG, stack_outputs={"staging": staging})


def test_prod_runs_staging_images_and_records_the_gate(stack_plans: dict[str, StackPlan]) -> None:
    staging, prod = stack_plans["staging"].outputs, stack_plans["prod"].outputs
    assert prod["deployed_commit"] == staging["deployed_commit"] == TEST_TAG
    assert prod["images"] == staging["images"]
    assert prod["training_image_uri"] == staging["images"]["training"]
    (gate,) = stack_plans["prod"].of_type(GATE_TYPE)
    assert gate.inputs["sourceStack"] == "organization/promote-code/staging"
    assert gate.inputs["commit"] == gate.inputs["verifiedCommit"] == TEST_TAG
    assert gate.inputs["images"] == staging["images"]


def test_prod_never_looks_images_up_by_tag(stack_plans: dict[str, StackPlan]) -> None:
    """Staging exports digests from a built image; prod takes them, even a re-pushed tag's."""
    staging = dict(stack_plans["staging"].outputs)
    pinned = "111111111111.dkr.ecr.eu-west-1.amazonaws.com/promote-code/{}@sha256:" + "a" * 64
    staging["images"] = {name: pinned.format(name) for name in ("training", "deployer")}
    prod = plan_prod(staging)
    assert prod.outputs["images"] == staging["images"]


def test_prod_refuses_a_commit_staging_does_not_run(stack_plans: dict[str, StackPlan]) -> None:
    staging = {**stack_plans["staging"].outputs, "deployed_commit": OTHER}
    with pytest.raises(PromotionRefusedError) as caught:
        plan_prod(staging)
    message = str(caught.value)
    assert f"prod refuses commit {TEST_TAG}" in message
    assert f"runs {OTHER}" in message
    assert f"git tag -f staging {TEST_TAG}" in message


@pytest.mark.parametrize("check", VERIFICATION_CHECKS)
def test_prod_refuses_a_commit_staging_deployed_but_did_not_prove(
    stack_plans: dict[str, StackPlan], check: str
) -> None:
    record = verification_record()
    record["checks"][check] = {"passed": False}
    staging = {**stack_plans["staging"].outputs, "verification": record}
    with pytest.raises(PromotionRefusedError, match=f"lacks a passed '{check}' check"):
        plan_prod(staging)


def test_prod_refuses_without_a_verification_record(stack_plans: dict[str, StackPlan]) -> None:
    staging = {k: v for k, v in stack_plans["staging"].outputs.items() if k != "verification"}
    with pytest.raises(PromotionRefusedError, match="has no verification record"):
        plan_prod(staging)


def test_prod_refuses_a_verification_of_another_commit(stack_plans: dict[str, StackPlan]) -> None:
    staging = {**stack_plans["staging"].outputs, "verification": verification_record(OTHER)}
    with pytest.raises(PromotionRefusedError, match=f"record is for commit '{OTHER}'"):
        plan_prod(staging)


@pytest.mark.parametrize(
    "image",
    [
        "999999999999.dkr.ecr.eu-west-1.amazonaws.com/promote-code/training@sha256:" + "a" * 64,
        "111111111111.dkr.ecr.eu-west-1.amazonaws.com/promote-code/training:latest",
        "111111111111.dkr.ecr.eu-west-1.amazonaws.com/other/training@sha256:" + "a" * 64,
        None,
    ],
)
def test_prod_refuses_staging_images_that_are_not_pinned_ops_images(
    stack_plans: dict[str, StackPlan], image: str | None
) -> None:
    images = {**stack_plans["staging"].outputs["images"], "training": image}
    staging = {**stack_plans["staging"].outputs, "images": images}
    with pytest.raises(PromotionRefusedError, match="not an image of 111111111111"):
        plan_prod(staging)


def test_prod_refuses_when_staging_never_deployed() -> None:
    with pytest.raises(PromotionRefusedError, match="exports no deployed_commit"):
        plan_prod({})


def test_a_missing_staging_stack_is_the_same_clear_refusal(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The engine fails the program with its own "unknown stack" after the program returns;
    # the refusal is logged as an error diagnostic before that.
    with pytest.raises(LookupError, match="unknown stack"):
        plan_stack("prod", image_tag=TEST_TAG, stack_outputs={})
    # The mock engine turns the program's error log into a Python log record.
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert any("prod deploys only what organization/promote-code/staging runs" in e for e in errors)
    assert any("pulumi stack init organization/promote-code/staging" in e for e in errors)


def test_staging_has_no_gate() -> None:
    plan = plan_stack("staging", image_tag=OTHER, stack_outputs={})
    assert plan.outputs["deployed_commit"] == OTHER
    assert not plan.of_type(GATE_TYPE)
