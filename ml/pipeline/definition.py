"""The pipeline definition: the SDK's pipeline rendered as canonical, deterministic JSON.

`definition_json(cfg)` is what the Pulumi component deploys and the local
runner interprets. Importing this module does not import the SDK (it is slow
and has import-time side effects); `build_pipeline` and `definition_json` do,
under `ml.pipeline.sdk_isolation.isolated_sdk`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ml.pipeline.contract import PipelineConfig
from ml.pipeline.sdk_isolation import isolated_sdk

if TYPE_CHECKING:
    import boto3
    from sagemaker.mlops.workflow.pipeline import Pipeline


def build_pipeline(cfg: PipelineConfig, boto_session: boto3.Session | None = None) -> Pipeline:
    """The SageMaker `Pipeline` for `cfg`.

    Steps compile lazily: call `definition()` on the result inside
    `isolated_sdk(cfg.region)` (as `definition_json` does), or it may reach for
    AWS. Pass the session that context yields; without one, the caller must
    already be inside it.
    """
    if boto_session is None:
        with isolated_sdk(cfg.region) as session:
            return _build(cfg, session)
    return _build(cfg, boto_session)


def definition_json(cfg: PipelineConfig) -> str:
    """The canonical pipeline definition: deterministic JSON, sorted keys, no AWS calls."""
    with isolated_sdk(cfg.region) as session:
        raw = _build(cfg, session).definition()
    document = canonical_definition(json.loads(raw))
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def _build(cfg: PipelineConfig, boto_session: boto3.Session) -> Pipeline:
    # ml.pipeline.steps imports the SDK at its top, so it may only be imported under isolation.
    from ml.pipeline import steps  # noqa: PLC0415

    return steps.build(cfg, boto_session)


API_DEFAULTS_DROPPED: dict[str, dict[str, str]] = {
    "RegisterModel": {
        "ModelApprovalStatus": "PendingManualApproval",
        "SkipModelValidation": "None",
    },
}
"""Per step type: arguments the SDK spells out with the service's own default value.

The published definition schema predates these fields, and leaving them out
changes nothing at execution time (CreateModelPackage defaults a versioned
package to PendingManualApproval and SkipModelValidation to None)."""


def canonical_definition(definition: dict[str, Any]) -> dict[str, Any]:
    """Drop what the SDK emits but the definition needs not (and the schema does not) carry.

    - top-level keys whose value is null (`MlflowConfig`, `PipelineExperimentConfig`
      when disabled);
    - the empty `Environment` the model builder adds to every registered container
      (`InferenceSpecification.Containers[]` has no `Environment` member in the
      published schema, and ours needs none);
    - arguments equal to the service default that the schema lacks
      (`API_DEFAULTS_DROPPED`, and a training job's `CompressionType: GZIP`).

    Anything else that differs from the service default is kept, so a real
    setting is never lost.
    """
    result = {key: value for key, value in definition.items() if value is not None}
    for step in _all_steps(result.get("Steps", [])):
        arguments = step.get("Arguments", {})
        for key, default in API_DEFAULTS_DROPPED.get(step.get("Type", ""), {}).items():
            if arguments.get(key) == default:
                del arguments[key]
        if step.get("Type") == "Training":
            output = arguments.get("OutputDataConfig", {})
            if output.get("CompressionType") == "GZIP":
                del output["CompressionType"]
        if step.get("Type") == "RegisterModel":
            spec = arguments.get("InferenceSpecification", {})
            for container in spec.get("Containers", []):
                if container.get("Environment") == {}:
                    del container["Environment"]
    return result


def _all_steps(steps: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for step in steps:
        yield step
        arguments = step.get("Arguments", {})
        if step.get("Type") == "Condition":
            yield from _all_steps(arguments.get("IfSteps", []))
            yield from _all_steps(arguments.get("ElseSteps", []))
