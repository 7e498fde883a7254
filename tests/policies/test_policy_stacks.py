"""The real program's four stacks through the pack: nothing blocks them, and a prod
plan that runs a tagged, foreign-account or public image is rejected."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import replace

import pytest

from infra.settings import STACKS
from offline.plan.capture import StackPlan
from offline.plan.harness import plan_stacks
from offline.policy.config import EnforcementLevel, load_policy_config
from offline.policy.report import Violation, mandatory
from offline.policy.runner import PolicyPackProcess

OPS_IMAGE = "111111111111.dkr.ecr.eu-west-1.amazonaws.com/promote-code/"


@pytest.fixture(scope="module")
def plans() -> dict[str, StackPlan]:
    return plan_stacks(STACKS)


@pytest.fixture(scope="module")
def results(
    pack: PolicyPackProcess, plans: dict[str, StackPlan]
) -> Iterator[dict[str, list[Violation]]]:
    yield {stack: pack.analyze(plan, load_policy_config(stack)) for stack, plan in plans.items()}


@pytest.mark.parametrize("stack", STACKS)
def test_no_stack_has_a_mandatory_violation(
    results: dict[str, list[Violation]], stack: str
) -> None:
    assert mandatory(results[stack]) == [], "\n".join(map(str, results[stack]))


def test_prod_runs_ops_images_the_rule_can_see(plans: dict[str, StackPlan]) -> None:
    # Guard against a vacuous pass: prod really references ops images by digest.
    text = json.dumps([r.inputs for r in plans["prod"].resources])
    assert f"{OPS_IMAGE}training@sha256:" in text
    deployers = plans["prod"].of_type("aws:lambda/function:Function")
    assert any(
        str(r.inputs.get("imageUri", "")).startswith(f"{OPS_IMAGE}deployer@sha256:")
        for r in deployers
    )


def _rewrite_images(plan: StackPlan, old: str, new: str) -> StackPlan:
    """The plan with every ops image reference rewritten (inside JSON strings too)."""
    resources = tuple(
        replace(r, inputs=json.loads(re.sub(old, new, json.dumps(r.inputs))))
        for r in plan.resources
    )
    return replace(plan, resources=resources)


@pytest.mark.parametrize(
    ("case", "old", "new", "expected"),
    [
        ("tag", r"@sha256:[0-9a-f]{64}", ":3f2c1ab", "uses the tag '3f2c1ab'"),
        ("latest", r"@sha256:[0-9a-f]{64}", ":latest", "uses the tag 'latest'"),
        ("other account", r"111111111111\.dkr", "999999999999.dkr", "account 999999999999"),
        ("public image", re.escape(OPS_IMAGE), "public.ecr.aws/promote-code/", "other than ECR"),
        (
            "look-alike host",
            r"amazonaws\.com/promote-code",
            "amazonaws.com.evil.io/promote-code",
            "look-alike",
        ),
    ],
)
def test_prod_altered_to_run_another_image_is_rejected(
    pack: PolicyPackProcess,
    plans: dict[str, StackPlan],
    case: str,
    old: str,
    new: str,
    expected: str,
) -> None:
    altered = _rewrite_images(plans["prod"], old, new)
    violations = pack.analyze(altered, load_policy_config("prod"))
    blocking = mandatory(violations)
    assert blocking, f"{case}: not rejected"
    assert {v.policy for v in blocking} == {"prod-images-from-ops"}
    assert all(v.enforcement_level is EnforcementLevel.MANDATORY for v in blocking)
    assert any(expected in v.message for v in blocking), blocking
