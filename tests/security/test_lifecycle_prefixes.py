"""The artifacts lifecycle rules match where the pipeline and the endpoints really write.

If the pipeline moved its outputs or the deployer its capture URI, the rules would
silently stop applying (or, worse, expire something else): these tests read both
places from the offline plans of the real stacks.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.components.secure_bucket import (
    ARTIFACTS_LIFECYCLE_RULES,
    DATA_CAPTURE_PREFIX,
    PIPELINE_OUTPUT_PREFIX,
)
from ml.deployer.config import Env
from offline.plan.capture import StackPlan

ENVIRONMENTS = {"dev": "222222222222", "staging": "333333333333", "prod": "444444444444"}
CODE_PREFIX = "pipeline-code/"
"""Step scripts, content-addressed objects Pulumi manages: no lifecycle rule may touch them."""


def artifact_keys(definition: Any, bucket: str) -> list[str]:
    """Every key (or key prefix) of `bucket` the pipeline definition names, literal or joined."""
    found: list[str] = []
    if isinstance(definition, dict):
        join = definition.get("Std:Join")
        if isinstance(join, dict) and join.get("Values", [])[:2] == ["s3:/", bucket]:
            parts = join["Values"][2:]
            found.append("/".join(p if isinstance(p, str) else "*" for p in parts))
        for value in definition.values():
            found += artifact_keys(value, bucket)
    elif isinstance(definition, list):
        for value in definition:
            found += artifact_keys(value, bucket)
    elif isinstance(definition, str) and definition.startswith(f"s3://{bucket}/"):
        found.append(definition.removeprefix(f"s3://{bucket}/"))
    return found


@pytest.mark.parametrize("stack", ENVIRONMENTS)
def test_pipeline_writes_under_the_pipeline_output_prefix_and_reads_code_outside_it(
    stack_plans: dict[str, StackPlan], stack: str
) -> None:
    bucket = f"promote-code-{stack}-artifacts-{ENVIRONMENTS[stack]}"
    (pipeline,) = stack_plans[stack].of_type("aws:sagemaker/pipeline:Pipeline")
    keys = artifact_keys(json.loads(pipeline.inputs["pipelineDefinition"]), bucket)
    outputs = [k for k in keys if not k.startswith(CODE_PREFIX)]
    assert outputs, "the definition names no outputs in the artifacts bucket"
    assert all(k.startswith(PIPELINE_OUTPUT_PREFIX) for k in outputs), outputs
    assert any(k.startswith(CODE_PREFIX) for k in keys)
    expiring = [r.prefix for r in ARTIFACTS_LIFECYCLE_RULES if r.expire_days is not None]
    assert not [k for k in keys for prefix in expiring if k.startswith(prefix)]


@pytest.mark.parametrize("stack", ENVIRONMENTS)
def test_endpoints_capture_under_the_data_capture_prefix(
    stack_plans: dict[str, StackPlan], stack: str
) -> None:
    bucket = f"promote-code-{stack}-artifacts-{ENVIRONMENTS[stack]}"
    (function,) = stack_plans[stack].of_type("aws:lambda/function:Function")
    uri = function.inputs["environment"]["variables"][Env.DATA_CAPTURE_S3_URI]
    # SageMaker writes <uri>/<endpoint>/<variant>/<yyyy>/..., so the rule's prefix is <key>/.
    assert f"{uri.rstrip('/')}/" == f"s3://{bucket}/{DATA_CAPTURE_PREFIX}"
