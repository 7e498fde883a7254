"""The first `pulumi preview --stack prod` (nothing created yet) passes the policy pack.

On a first preview every computed output (ARNs, IDs) is unknown, and the prod image rule
counts an unknown image as a violation. So the pipeline definition, which carries every
job's image, must be built only from values known before anything exists.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from offline.plan.capture import StackPlan
from offline.plan.harness import plan_stack
from offline.policy.report import mandatory
from offline.policy.runner import analyze_plans
from tests.plan_helpers import TEST_TAG

PROD = "444444444444"


@pytest.fixture(scope="module")
def first_preview(stack_plans: dict[str, StackPlan]) -> StackPlan:
    staging = {"staging": stack_plans["staging"].outputs}
    return plan_stack("prod", image_tag=TEST_TAG, stack_outputs=staging, first_preview=True)


def _definition(plan: StackPlan) -> dict[str, Any]:
    (pipeline,) = plan.of_type("aws:sagemaker/pipeline:Pipeline")
    text = pipeline.inputs["pipelineDefinition"]
    assert isinstance(text, str) and text.startswith("{"), f"unknown at preview: {text!r}"
    document: dict[str, Any] = json.loads(text)
    return document


def test_the_definition_is_known_and_the_same_as_after_the_deploy(
    first_preview: StackPlan, stack_plans: dict[str, StackPlan]
) -> None:
    assert _definition(first_preview) == _definition(stack_plans["prod"])


def test_the_definition_names_the_role_and_key_the_stack_creates(first_preview: StackPlan) -> None:
    text = json.dumps(_definition(first_preview))
    (role,) = [
        r
        for r in first_preview.of_type("aws:iam/role:Role")
        if r.inputs.get("name") == "promote-code-prod-sagemaker-execution"
    ]
    assert f"arn:aws:iam::{PROD}:role/{role.inputs['name']}" in text
    assert f"arn:aws:kms:eu-west-1:{PROD}:key/" in text


def test_the_policy_pack_passes_the_first_prod_preview(first_preview: StackPlan) -> None:
    violations = analyze_plans({"prod": first_preview})["prod"]
    assert mandatory(violations) == [], [str(v) for v in mandatory(violations)]
