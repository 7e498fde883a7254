"""prod-images-from-ops covers the drift monitor: its job is a CreateProcessingJob request
that an EventBridge Scheduler schedule sends on every run, so the rule reads the image in
the schedule's `target.input`."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from policy_helpers import DIGEST, PROD_IMAGE_CONFIG, REGISTRY, TRAINING
from rules._props import UNKNOWN
from rules.images import image_violations
from rules.images.references import SCHEDULER_SCHEDULE, images_of

from infra.components.drift_monitor import CREATE_PROCESSING_JOB_TARGET
from infra.components.retraining_schedule import START_PIPELINE_TARGET
from offline.plan.capture import UNKNOWN as ENGINE_UNKNOWN
from offline.plan.capture import StackPlan
from offline.policy.config import EnforcementLevel, load_policy_config
from offline.policy.report import Violation, mandatory
from offline.policy.runner import PolicyPackProcess
from tests.infra.test_drift_monitor_component import monitor_args, monitor_plan

WHERE = "target.input.AppSpecification.ImageUri"


def schedule_props(image: str = TRAINING) -> dict[str, Any]:
    """The inputs of the monitor's schedule, as the component registers them."""
    plan = monitor_plan(monitor_args(image_uri=image))
    (schedule,) = plan.of_type(SCHEDULER_SCHEDULE)
    return schedule.inputs


def test_the_rule_sees_the_monitor_jobs_image() -> None:
    refs = list(images_of(SCHEDULER_SCHEDULE, schedule_props()))
    assert [(ref.where, ref.value) for ref in refs] == [(WHERE, TRAINING)]


def test_the_ops_digest_image_passes() -> None:
    assert image_violations(SCHEDULER_SCHEDULE, schedule_props(), PROD_IMAGE_CONFIG) == []


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        (f"{REGISTRY}/promote-code/training:latest", "uses the tag 'latest'"),
        (
            f"999999999999.dkr.ecr.eu-west-1.amazonaws.com/promote-code/training@sha256:{DIGEST}",
            "account 999999999999",
        ),
        (f"public.ecr.aws/promote-code/training@sha256:{DIGEST}", "other than ECR"),
        (f"{REGISTRY}/promote-code/other@sha256:{DIGEST}", "repository 'promote-code/other'"),
    ],
)
def test_a_non_ops_image_fails(image: str, expected: str) -> None:
    (problem,) = image_violations(SCHEDULER_SCHEDULE, schedule_props(image), PROD_IMAGE_CONFIG)
    assert problem.startswith(f"{WHERE} ")
    assert expected in problem


def _schedule(arn: object, request: object) -> dict[str, Any]:
    return {"target": {"arn": arn, "roleArn": "r", "input": request}}


def test_an_unknown_or_unreadable_request_fails_in_prod() -> None:
    unknown = _schedule(CREATE_PROCESSING_JOB_TARGET, ENGINE_UNKNOWN)
    (problem,) = image_violations(SCHEDULER_SCHEDULE, unknown, PROD_IMAGE_CONFIG)
    assert "unknown during preview" in problem
    broken = _schedule(CREATE_PROCESSING_JOB_TARGET, "{not json")
    (problem,) = image_violations(SCHEDULER_SCHEDULE, broken, PROD_IMAGE_CONFIG)
    assert "target.input is not a readable API request" in problem


def test_an_image_in_any_universal_target_request_is_checked() -> None:
    request = json.dumps({"TrainingJobName": "t", "AlgorithmSpecification": {"TrainingImage": "x"}})
    target = "arn:aws:scheduler:::aws-sdk:sagemaker:createTrainingJob"
    (problem,) = image_violations(SCHEDULER_SCHEDULE, _schedule(target, request), PROD_IMAGE_CONFIG)
    assert problem.startswith("target.input.AlgorithmSpecification.TrainingImage ")


@pytest.mark.parametrize(
    "props",
    [
        # The retraining schedule: a universal target whose request names no image.
        _schedule(START_PIPELINE_TARGET, json.dumps({"PipelineName": "p"})),
        # A templated target names a resource (checked where it is declared).
        _schedule("arn:aws:lambda:eu-west-1:444444444444:function:f", json.dumps({"a": 1})),
        _schedule(UNKNOWN, ENGINE_UNKNOWN),
    ],
)
def test_schedules_without_an_image_have_nothing_to_check(props: dict[str, Any]) -> None:
    assert list(images_of(SCHEDULER_SCHEDULE, props)) == []
    assert image_violations(SCHEDULER_SCHEDULE, props, PROD_IMAGE_CONFIG) == []


# The pack end to end, with prod's committed config -------------------------------------


@pytest.fixture(scope="module")
def component() -> StackPlan:
    return monitor_plan(monitor_args(image_uri=TRAINING))


@pytest.fixture(scope="module")
def results(pack: PolicyPackProcess, component: StackPlan) -> Iterator[list[Violation]]:
    yield pack.analyze(component, load_policy_config("prod"))


def _ours(plan: StackPlan, violations: list[Violation]) -> list[Violation]:
    """Violations on the component's resources (not stack-level ones such as the gate)."""
    urns = {r.urn for r in plan.resources}
    return [v for v in violations if v.resource_urn in urns]


def test_the_component_has_no_mandatory_violation_in_prod(
    component: StackPlan, results: list[Violation]
) -> None:
    blocking = mandatory(_ours(component, results))
    assert blocking == [], "\n".join(map(str, blocking))


def test_the_pack_rejects_the_monitor_running_a_public_image(
    pack: PolicyPackProcess, component: StackPlan
) -> None:
    public = f"public.ecr.aws/promote-code/training@sha256:{DIGEST}"
    resources = tuple(
        replace(r, inputs=json.loads(re.sub(re.escape(TRAINING), public, json.dumps(r.inputs))))
        for r in component.resources
    )
    violations = pack.analyze(replace(component, resources=resources), load_policy_config("prod"))
    blocking = mandatory(_ours(component, violations))
    assert {(v.policy, v.resource_name) for v in blocking} == {
        ("prod-images-from-ops", "promote-code-prod-drift-schedule")
    }
    assert all(v.enforcement_level is EnforcementLevel.MANDATORY for v in blocking)
    assert any("other than ECR" in v.message for v in blocking)
