"""The TrainingPipeline component and the retraining schedule, under mocks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ml.pipeline.code import BUNDLES, bundle_objects
from offline.plan.capture import CapturedResource, StackPlan
from tests.plan_helpers import policy_document, statements

ENVIRONMENTS = ("dev", "staging", "prod")


def _images(node: Any) -> list[str]:
    found: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("ImageUri", "TrainingImage", "Image") and isinstance(value, str):
                found.append(value)
            found += _images(value)
    elif isinstance(node, list):
        for item in node:
            found += _images(item)
    return found


@pytest.mark.parametrize("stack", ENVIRONMENTS)
def test_pipeline_uses_the_stack_role_and_only_the_ops_training_image(
    stack_plans: dict[str, StackPlan], stack: str
) -> None:
    plan = stack_plans[stack]
    (pipeline,) = plan.of_type("aws:sagemaker/pipeline:Pipeline")
    assert pipeline.inputs["pipelineName"] == f"promote-code-{stack}-training"
    assert pipeline.inputs["roleArn"] == plan.outputs["execution_role_arn"]
    definition = json.loads(pipeline.inputs["pipelineDefinition"])
    names = {step["Name"] for step in definition["Steps"]}
    assert {"preprocess-data", "train-model", "evaluate-model", "register-model"} <= names
    images = _images(definition)
    assert images, "the definition names no image"
    assert set(images) == {plan.outputs["training_image_uri"]}


@pytest.mark.parametrize("stack", ENVIRONMENTS)
def test_step_code_is_uploaded_content_addressed_and_encrypted(
    stack_plans: dict[str, StackPlan], stack: str
) -> None:
    plan = stack_plans[stack]
    objects = {o.inputs["key"]: o for o in plan.of_type("aws:s3/bucketObjectv2:BucketObjectv2")}
    expected = {key: path for script in BUNDLES for key, path in bundle_objects(script).items()}
    assert set(objects) == set(expected)
    definition_text = plan.of_type("aws:sagemaker/pipeline:Pipeline")[0].inputs[
        "pipelineDefinition"
    ]
    for key, uploaded in objects.items():
        assert uploaded.inputs["bucket"] == plan.outputs["artifacts_bucket_name"]
        assert uploaded.inputs["serverSideEncryption"] == "aws:kms"
        source = uploaded.inputs["source"]["path"]
        assert not Path(source).is_absolute()
        assert Path(source).resolve() == expected[key].resolve()
        # The definition names each bundle's prefix; the job downloads every file under it.
        prefix = key.rsplit("/", 1)[0] + "/"
        assert f'"s3://{plan.outputs["artifacts_bucket_name"]}/{prefix}"' in definition_text


def test_retraining_is_scheduled_only_where_settings_enable_it(
    stack_plans: dict[str, StackPlan],
) -> None:
    def retraining(plan: StackPlan) -> list[CapturedResource]:
        # The drift monitor's schedule (staging, prod) starts a processing job, not the pipeline.
        return [
            s
            for s in plan.of_type("aws:scheduler/schedule:Schedule")
            if s.inputs["target"]["arn"].endswith(":startPipelineExecution")
        ]

    assert not retraining(stack_plans["dev"])
    assert not retraining(stack_plans["staging"])
    prod = stack_plans["prod"]
    (schedule,) = retraining(prod)
    assert schedule.inputs["scheduleExpression"] == "cron(0 3 ? * SUN *)"
    target = schedule.inputs["target"]
    assert target["arn"] == "arn:aws:scheduler:::aws-sdk:sagemaker:startPipelineExecution"
    assert json.loads(target["input"])["PipelineName"] == "promote-code-prod-training"
    policy = prod.one("aws:iam/rolePolicy:RolePolicy", "promote-code-prod-retraining-policy")
    (statement,) = statements(policy_document(policy))
    assert statement["Action"] == ["sagemaker:StartPipelineExecution"]
    assert statement["Resource"] == [
        "arn:aws:sagemaker:eu-west-1:444444444444:pipeline/promote-code-prod-training"
    ]
