"""Where prod-images-from-ops finds image references in a resource's inputs.

One reader per resource type (the list in the rule's docstring, `rules.images`), each
yielding an `ImageRef` per image URI, model package or algorithm it finds; a reference it
cannot even locate (an unreadable pipeline definition, a definition kept in S3) carries its
problem. Whether a found reference is allowed is `checks`' question.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Literal

from .._props import UNKNOWN, DocumentError, as_list, get_path, is_unknown, json_document

LAMBDA_FUNCTION = "aws:lambda/function:Function"
SAGEMAKER_MODEL = "aws:sagemaker/model:Model"
SAGEMAKER_PIPELINE = "aws:sagemaker/pipeline:Pipeline"
ECS_TASK_DEFINITION = "aws:ecs/taskDefinition:TaskDefinition"
BATCH_JOB_DEFINITION = "aws:batch/jobDefinition:JobDefinition"
APPRUNNER_SERVICE = "aws:apprunner/service:Service"
CODEBUILD_PROJECT = "aws:codebuild/project:Project"
SCHEDULER_SCHEDULE = "aws:scheduler/schedule:Schedule"
SAGEMAKER_PREFIX = "aws:sagemaker/"

RefKind = Literal["image", "model-package", "algorithm"]
"""What a reference points at: an image URI, a model package, or an algorithm resource."""

# Keys under which a SageMaker pipeline definition carries an image: processing
# AppSpecification.ImageUri, training AlgorithmSpecification.TrainingImage (and debugger
# RuleEvaluatorImage), model PrimaryContainer/Containers[].Image, register
# InferenceSpecification.Containers[].Image.
PIPELINE_IMAGE_KEYS = frozenset({"ImageUri", "TrainingImage", "Image", "RuleEvaluatorImage"})
PIPELINE_REFERENCE_KEYS: Mapping[str, RefKind] = {
    **dict.fromkeys(PIPELINE_IMAGE_KEYS, "image"),
    "ModelPackageName": "model-package",
    "AlgorithmName": "algorithm",
    "SourceAlgorithmSpecification": "algorithm",
}
# The same inputs on SageMaker resources (camelCase); `algorithmName` only counts inside an
# `algorithmSpecification`, since it is also the own name of an aws:sagemaker/algorithm.
NESTED_IMAGE_KEYS = frozenset(
    {"image", "imageUri", "baseImage", "trainingImage", "ruleEvaluatorImage"}
)
SAGEMAKER_REFERENCE_KEYS: Mapping[str, RefKind] = {
    **dict.fromkeys(NESTED_IMAGE_KEYS, "image"),
    "modelPackageName": "model-package",
    "sourceAlgorithmSpecification": "algorithm",
}
SCOPED_REFERENCE_KEYS: Mapping[tuple[str, str], RefKind] = {
    ("algorithmSpecification", "algorithmName"): "algorithm",
}

ALGORITHM_PROBLEM = (
    "names an algorithm resource instead of an image; the pack cannot see the algorithm's "
    "image, so it cannot be shown to be an ops image (set the image itself)"
)

_UNIVERSAL_TARGET = re.compile(r"arn:aws[a-z-]*:scheduler:::aws-sdk:[a-z0-9-]+:[A-Za-z0-9]+")
"""An EventBridge Scheduler universal target: any API call, whose request is `target.input`."""


@dataclass(frozen=True)
class ImageRef:
    where: str
    value: object
    problem: str | None = None
    """Set when the image cannot even be located (an unreadable pipeline definition)."""
    kind: RefKind = "image"


def walk_references(
    node: object,
    path: str,
    keys: Mapping[str, RefKind],
    scoped: Mapping[tuple[str, str], RefKind] | None = None,
    parent: str = "",
) -> Iterator[ImageRef]:
    """Every value under one of `keys` (or a `(parent, key)` of `scoped`) at any depth."""
    if isinstance(node, Mapping):
        for key, child in node.items():
            child_path = f"{path}.{key}" if path else str(key)
            kind = keys.get(key) or (scoped or {}).get((parent, key))
            if kind is None:
                yield from walk_references(child, child_path, keys, scoped, str(key))
            elif kind == "algorithm":
                yield ImageRef(child_path, child, ALGORITHM_PROBLEM, kind)
            else:
                # {"Get": "Parameters.X"} or {"Std:Join": ...} is reported as not literal.
                yield ImageRef(child_path, child, kind=kind)
    elif isinstance(node, list):
        for index, child in enumerate(node):
            yield from walk_references(child, f"{path}[{index}]", keys, scoped, parent)


UNREADABLE_PIPELINE = "is not a readable pipeline definition"


def images_in_pipeline_definition(definition: object) -> Iterator[ImageRef]:
    """Every image (and model package, algorithm) reference in a pipeline definition."""
    steps = get_path(definition, "Steps")
    if steps is UNKNOWN:
        yield ImageRef("Steps", UNKNOWN)
        return
    if not isinstance(definition, Mapping) or not isinstance(steps, list):
        yield ImageRef(
            "", None, f"{UNREADABLE_PIPELINE}: expected a JSON object with a `Steps` list"
        )
        return
    for index, step in enumerate(steps):
        if step is UNKNOWN:
            yield ImageRef(f"step #{index}", UNKNOWN)
            continue
        if not isinstance(step, Mapping):
            yield ImageRef(f"step #{index}", None, f"{UNREADABLE_PIPELINE}: not an object")
            continue
        name = step.get("Name")
        label = f"step {name!r}" if isinstance(name, str) else f"step #{index}"
        for ref in walk_references(step, "", PIPELINE_REFERENCE_KEYS):
            yield ImageRef(f"{label}.{ref.where}", ref.value, ref.problem, ref.kind)


def _lambda_images(props: Mapping[str, object]) -> Iterator[ImageRef]:
    if "imageUri" in props:
        yield ImageRef("imageUri", props["imageUri"])
    elif props.get("packageType") == "Image":
        yield ImageRef("imageUri", None)


def _container_refs(container: object, where: str) -> Iterator[ImageRef]:
    if not isinstance(container, Mapping):
        return
    if "image" in container:
        yield ImageRef(f"{where}.image", container["image"])
    if "modelPackageName" in container:
        yield ImageRef(
            f"{where}.modelPackageName", container["modelPackageName"], kind="model-package"
        )


def _model_images(props: Mapping[str, object]) -> Iterator[ImageRef]:
    primary = props.get("primaryContainer")
    if is_unknown(primary):
        yield ImageRef("primaryContainer", UNKNOWN)
    else:
        yield from _container_refs(primary, "primaryContainer")
    containers = props.get("containers")
    if is_unknown(containers):
        yield ImageRef("containers", UNKNOWN)
        return
    for index, container in enumerate(as_list(containers)):
        yield from _container_refs(container, f"containers[{index}]")


def _pipeline_images(props: Mapping[str, object]) -> Iterator[ImageRef]:
    if props.get("pipelineDefinitionS3Location") is not None:
        yield ImageRef(
            "pipelineDefinitionS3Location",
            None,
            "keeps the pipeline definition in S3, so its images cannot be verified at "
            "preview time; pass the definition inline (pipelineDefinition)",
        )
    if "pipelineDefinition" not in props:
        return
    try:
        definition = json_document(props["pipelineDefinition"])
    except DocumentError as error:
        yield ImageRef("pipelineDefinition", None, f"is not a readable definition: {error}")
        return
    if definition is UNKNOWN:
        yield ImageRef("pipelineDefinition", UNKNOWN)
        return
    for ref in images_in_pipeline_definition(definition):
        where = f"pipelineDefinition {ref.where}" if ref.where else "pipelineDefinition"
        yield ImageRef(where, ref.value, ref.problem, ref.kind)


def _ecs_images(props: Mapping[str, object]) -> Iterator[ImageRef]:
    try:
        definitions = json_document(props.get("containerDefinitions", "[]"))
    except DocumentError as error:
        yield ImageRef("containerDefinitions", None, f"is not readable: {error}")
        return
    if definitions is UNKNOWN:
        yield ImageRef("containerDefinitions", UNKNOWN)
        return
    for index, container in enumerate(as_list(definitions)):
        yield ImageRef(f"containerDefinitions[{index}].image", get_path(container, "image"))


def _nested_images(props: Mapping[str, object]) -> Iterator[ImageRef]:
    """Image and model package inputs anywhere in a SageMaker resource (see the keys above)."""
    yield from walk_references(props, "", SAGEMAKER_REFERENCE_KEYS, SCOPED_REFERENCE_KEYS)


BATCH_JSON_PROPERTIES = ("containerProperties", "nodeProperties", "ecsProperties")


def _batch_images(props: Mapping[str, object]) -> Iterator[ImageRef]:
    for key in BATCH_JSON_PROPERTIES:
        if props.get(key) is None:
            continue
        try:
            document = json_document(props[key])
        except DocumentError as error:
            yield ImageRef(key, None, f"is not readable: {error}")
            continue
        if document is UNKNOWN:
            yield ImageRef(key, UNKNOWN)
            continue
        yield from walk_references(document, key, {"image": "image"})
    eks = props.get("eksProperties")
    if is_unknown(eks):
        yield ImageRef("eksProperties", UNKNOWN)
    else:
        yield from walk_references(eks, "eksProperties", {"image": "image"})


def _apprunner_images(props: Mapping[str, object]) -> Iterator[ImageRef]:
    yield from walk_references(props, "", {"imageIdentifier": "image"})


def _codebuild_images(props: Mapping[str, object]) -> Iterator[ImageRef]:
    environment = props.get("environment")
    if is_unknown(environment):
        yield ImageRef("environment", UNKNOWN)
    elif isinstance(environment, Mapping) and "image" in environment:
        yield ImageRef("environment.image", environment["image"])


def _schedule_images(props: Mapping[str, object]) -> Iterator[ImageRef]:
    target = props.get("target")
    if is_unknown(target):
        yield ImageRef("target", UNKNOWN)
        return
    arn = get_path(target, "arn")
    # Universal target ARNs are constants; an ARN unknown at preview is a resource's
    # (a templated target), which carries no image of its own.
    if not isinstance(arn, str) or not _UNIVERSAL_TARGET.fullmatch(arn):
        return
    raw = get_path(target, "input")
    if raw is None:
        return
    try:
        request = json_document(raw)
    except DocumentError as error:
        yield ImageRef("target.input", None, f"is not a readable API request: {error}")
        return
    if request is UNKNOWN:
        yield ImageRef("target.input", UNKNOWN)
        return
    yield from walk_references(request, "target.input", PIPELINE_REFERENCE_KEYS)


IMAGE_SOURCES: Mapping[str, Callable[[Mapping[str, object]], Iterator[ImageRef]]] = {
    LAMBDA_FUNCTION: _lambda_images,
    SAGEMAKER_MODEL: _model_images,
    SAGEMAKER_PIPELINE: _pipeline_images,
    ECS_TASK_DEFINITION: _ecs_images,
    BATCH_JOB_DEFINITION: _batch_images,
    APPRUNNER_SERVICE: _apprunner_images,
    CODEBUILD_PROJECT: _codebuild_images,
    SCHEDULER_SCHEDULE: _schedule_images,
}


def images_of(resource_type: str, props: Mapping[str, object]) -> Iterator[ImageRef]:
    """Every container image a resource of `resource_type` references."""
    source = IMAGE_SOURCES.get(resource_type)
    if source is None and resource_type.startswith(SAGEMAKER_PREFIX):
        source = _nested_images
    if source is not None:
        yield from source(props)
