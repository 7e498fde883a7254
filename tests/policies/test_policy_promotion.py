"""promotion-gate: prod carries staging's gate, its commit and only staging's images."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from typing import Any

import pytest

from offline.plan.capture import CapturedResource, StackPlan
from policies.rules.promotion import GATE_TYPE, promotion_violations

CONFIG = {"sourceStack": "staging"}
OTHER_DIGEST = "f" * 64


def as_resources(plan: Iterable[CapturedResource]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(r.type, r.urn, dict(r.inputs)) for r in plan]


def messages(
    resources: Iterable[CapturedResource], config: dict[str, object] = CONFIG
) -> list[str]:
    return [message for _, message in promotion_violations(as_resources(resources), config)]


def without_gate(plan: StackPlan) -> list[CapturedResource]:
    return [r for r in plan.resources if r.type != GATE_TYPE]


def with_gate(plan: StackPlan, **changes: object) -> list[CapturedResource]:
    return [
        dataclasses.replace(r, inputs={**r.inputs, **changes}) if r.type == GATE_TYPE else r
        for r in plan.resources
    ]


def test_the_prod_plan_passes(stack_plans: dict[str, StackPlan]) -> None:
    assert messages(stack_plans["prod"].resources) == []


def test_a_stack_without_a_source_is_not_checked(stack_plans: dict[str, StackPlan]) -> None:
    assert messages(stack_plans["staging"].resources, {}) == []


def test_prod_without_the_gate_is_a_violation(stack_plans: dict[str, StackPlan]) -> None:
    """What deleting `promotion:` from Pulumi.prod.yaml produces."""
    (message,) = messages(without_gate(stack_plans["prod"]))
    assert "must promote from staging, but it has 0 promotion gates" in message


def test_a_gate_redirected_to_dev_is_a_violation(stack_plans: dict[str, StackPlan]) -> None:
    found = messages(with_gate(stack_plans["prod"], sourceStack="organization/promote-code/dev"))
    assert any("reads 'organization/promote-code/dev', not the staging stack" in m for m in found)


def test_a_commit_staging_did_not_verify_is_a_violation(stack_plans: dict[str, StackPlan]) -> None:
    found = messages(with_gate(stack_plans["prod"], verifiedCommit="1" * 40))
    assert any("staging verified '1111" in m for m in found)


def _repin(resource: CapturedResource) -> CapturedResource:
    text = json.dumps(resource.inputs)
    for name in ("training", "deployer"):
        prefix = f"promote-code/{name}@sha256:"
        start = text.find(prefix)
        while start != -1:
            digest_at = start + len(prefix)
            text = text[:digest_at] + OTHER_DIGEST + text[digest_at + 64 :]
            start = text.find(prefix, digest_at)
    return dataclasses.replace(resource, inputs=json.loads(text))


@pytest.mark.parametrize(
    "image_type",
    ["aws:lambda/function:Function", "aws:sagemaker/pipeline:Pipeline"],
)
def test_an_ops_image_other_than_staging_digest_is_a_violation(
    stack_plans: dict[str, StackPlan], image_type: str
) -> None:
    """Still an ops image pinned by digest, so only this rule can tell it is not staging's."""
    resources = [_repin(r) if r.type == image_type else r for r in stack_plans["prod"].resources]
    found = messages(resources)
    assert found, "a digest staging never ran must be reported"
    assert all("not one of the images staging runs" in m for m in found)
    assert all(OTHER_DIGEST in m for m in found)


def _pack_violations(resources: list[CapturedResource]) -> list[str]:
    from offline.policy.report import mandatory  # noqa: PLC0415
    from offline.policy.runner import analyze_plans  # noqa: PLC0415

    plan = StackPlan("promote-code", "prod", tuple(resources), {})
    return [
        f"{v.policy}: {v.message}"
        for v in mandatory(analyze_plans({"prod": plan})["prod"])
        if v.policy == "promotion-gate"
    ]


def test_the_pack_rejects_each_way_round_the_gate(stack_plans: dict[str, StackPlan]) -> None:
    """End to end over the Analyzer protocol with the committed prod config."""
    prod = stack_plans["prod"]
    repinned = [
        _repin(r) if r.type == "aws:lambda/function:Function" else r for r in prod.resources
    ]
    cases = {
        "removed": without_gate(prod),
        "redirected to dev": with_gate(prod, sourceStack="organization/promote-code/dev"),
        "another digest": repinned,
    }
    assert _pack_violations(list(prod.resources)) == []
    for case, resources in cases.items():
        assert _pack_violations(resources), case
