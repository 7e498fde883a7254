"""prod-images-from-ops: every container image is an ops-account ECR image pinned by digest.

This is the promotion rule of the design: an environment runs exactly the
images the ops stack built from a reviewed commit. Images are looked for in
Lambda functions, SageMaker models, every image field of a SageMaker
pipeline definition (processing, training, model and register steps), any
`image`/`imageUri` input of other SageMaker resources (monitoring job
definitions, ...) and ECS container definitions.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)

from ._props import (
    UNKNOWN,
    DocumentError,
    as_list,
    config_bool,
    config_str,
    config_strings,
    get_path,
    is_unknown,
    json_document,
    props_of,
)

NAME = "prod-images-from-ops"

LAMBDA_FUNCTION = "aws:lambda/function:Function"
SAGEMAKER_MODEL = "aws:sagemaker/model:Model"
SAGEMAKER_PIPELINE = "aws:sagemaker/pipeline:Pipeline"
ECS_TASK_DEFINITION = "aws:ecs/taskDefinition:TaskDefinition"
SAGEMAKER_PREFIX = "aws:sagemaker/"

# Keys under which a SageMaker pipeline definition carries an image: processing
# AppSpecification.ImageUri, training AlgorithmSpecification.TrainingImage,
# model PrimaryContainer/Containers[].Image, register InferenceSpecification.Containers[].Image.
PIPELINE_IMAGE_KEYS = frozenset({"ImageUri", "TrainingImage", "Image"})

_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_ECR_HOST = re.compile(
    r"(?P<account>\d{12})\.dkr\.ecr(?:-fips)?\.(?P<region>[a-z]{2}(?:-gov)?-[a-z]+-\d)"
    r"\.amazonaws\.com(?:\.cn)?"
)


@dataclass(frozen=True)
class ImageRuleConfig:
    ops_account_id: str
    region: str
    allowed_repositories: tuple[str, ...]
    unknown_is_violation: bool

    @classmethod
    def from_config(cls, config: Mapping[str, object]) -> ImageRuleConfig | str:
        """The rule's settings, or a message naming what is missing (the rule then fails closed)."""
        account = config_str(config, "opsAccountId")
        region = config_str(config, "region")
        repositories = config_strings(config, "allowedRepositories")
        missing = [
            key
            for key, value in (
                ("opsAccountId", account),
                ("region", region),
                ("allowedRepositories", repositories),
            )
            if not value
        ]
        if missing or account is None or region is None:
            return (
                f"policy config is missing {', '.join(missing)}; run pulumi with "
                "--policy-pack-config policies/config/<stack>.json"
            )
        return cls(
            ops_account_id=account,
            region=region,
            allowed_repositories=repositories,
            unknown_is_violation=config_bool(config, "unknownIsViolation", default=True),
        )

    @property
    def expected(self) -> str:
        repos = "|".join(self.allowed_repositories)
        return (
            f"{self.ops_account_id}.dkr.ecr.{self.region}.amazonaws.com/({repos})@sha256:<64 hex>"
        )

    def pattern(self) -> re.Pattern[str]:
        repos = "|".join(re.escape(repo) for repo in self.allowed_repositories)
        return re.compile(
            rf"{re.escape(self.ops_account_id)}\.dkr\.ecr\.{re.escape(self.region)}"
            rf"\.amazonaws\.com/(?:{repos})@sha256:[0-9a-f]{{64}}"
        )


def image_problem(image: object, config: ImageRuleConfig) -> str | None:
    """Why `image` is not an allowed ops image, or None when it is."""
    if is_unknown(image):
        if config.unknown_is_violation:
            return (
                "is unknown during preview, so it cannot be shown to be an ops image; "
                "resolve the digest before deploying (aws.ecr.get_image on the commit's tag)"
            )
        return None
    if not isinstance(image, str):
        return (
            f"is not a literal image URI but {image!r} (a parameter or expression can be "
            "overridden at run time)"
        )
    if config.pattern().fullmatch(image):
        return None
    return f"{image!r} {_diagnose(image, config)}; expected {config.expected}"


def _foreign_registry(registry: str, has_path: bool) -> str:
    if not has_path:
        return "is not a registry path (Docker Hub shorthand)"
    if ".dkr.ecr." in registry and "amazonaws.com" in registry:
        return f"has a look-alike registry host {registry!r}"
    return f"comes from a registry other than ECR ({registry!r})"


def _diagnose(image: str, config: ImageRuleConfig) -> str:
    registry, slash, path = image.partition("/")
    host = _ECR_HOST.fullmatch(registry) if slash else None
    if host is None:
        return _foreign_registry(registry, has_path=bool(slash))
    standard_host = f"{config.ops_account_id}.dkr.ecr.{config.region}.amazonaws.com"
    repository, at, digest = path.partition("@")
    name, colon, tag = repository.partition(":")
    checks = (
        (
            host.group("account") != config.ops_account_id,
            f"comes from account {host.group('account')}, not the ops account",
        ),
        (
            host.group("region") != config.region,
            f"comes from region {host.group('region')}, not {config.region}",
        ),
        (registry != standard_host, f"uses the endpoint {registry!r}, not {standard_host!r}"),
        (
            bool(colon),
            f"uses the tag {tag!r}{' next to a digest' if at else ''} "
            "(a tag can move; pin by digest only)",
        ),
        (
            name not in config.allowed_repositories,
            f"uses the repository {name!r}, which is not one of the ops image repositories",
        ),
        (not at, "is not pinned by digest"),
        (not _DIGEST.fullmatch(digest), f"has a malformed digest {digest!r}"),
    )
    return next((message for failed, message in checks if failed), "is not an allowed image")


@dataclass(frozen=True)
class ImageRef:
    where: str
    value: object
    problem: str | None = None
    """Set when the image cannot even be located (an unreadable pipeline definition)."""


def images_in_pipeline_definition(definition: object) -> Iterator[ImageRef]:
    """Every image field inside a SageMaker pipeline definition (parsed JSON)."""

    def walk(node: object, path: str) -> Iterator[ImageRef]:
        if isinstance(node, Mapping):
            for key, child in node.items():
                child_path = f"{path}.{key}"
                if key in PIPELINE_IMAGE_KEYS:
                    # {"Get": "Parameters.X"} or {"Std:Join": ...} is reported as not literal.
                    yield ImageRef(child_path, child)
                else:
                    yield from walk(child, child_path)
        elif isinstance(node, list):
            for index, child in enumerate(node):
                yield from walk(child, f"{path}[{index}]")

    steps = get_path(definition, "Steps")
    for index, step in enumerate(as_list(steps)):
        name = get_path(step, "Name")
        label = f"step {name!r}" if isinstance(name, str) else f"step #{index}"
        yield from (ImageRef(f"{label}{ref.where}", ref.value) for ref in walk(step, ""))


def _lambda_images(props: Mapping[str, object]) -> Iterator[ImageRef]:
    if "imageUri" in props:
        yield ImageRef("imageUri", props["imageUri"])
    elif props.get("packageType") == "Image":
        yield ImageRef("imageUri", None)


def _model_images(props: Mapping[str, object]) -> Iterator[ImageRef]:
    primary = props.get("primaryContainer")
    if is_unknown(primary):
        yield ImageRef("primaryContainer", UNKNOWN)
    elif isinstance(primary, Mapping) and "image" in primary:
        yield ImageRef("primaryContainer.image", primary["image"])
    containers = props.get("containers")
    if is_unknown(containers):
        yield ImageRef("containers", UNKNOWN)
        return
    for index, container in enumerate(as_list(containers)):
        image = get_path(container, "image")
        if image is not None:
            yield ImageRef(f"containers[{index}].image", image)


def _pipeline_images(props: Mapping[str, object]) -> Iterator[ImageRef]:
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
        yield ImageRef(f"pipelineDefinition {ref.where}", ref.value)


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
    """`image`/`imageUri` anywhere in the inputs (SageMaker monitoring and other job types)."""

    def walk(node: object, path: str) -> Iterator[ImageRef]:
        if isinstance(node, Mapping):
            for key, child in node.items():
                child_path = f"{path}.{key}" if path else key
                if key in NESTED_IMAGE_KEYS:
                    yield ImageRef(child_path, child)
                else:
                    yield from walk(child, child_path)
        elif isinstance(node, list):
            for index, child in enumerate(node):
                yield from walk(child, f"{path}[{index}]")

    yield from walk(props, "")


NESTED_IMAGE_KEYS = frozenset({"image", "imageUri"})

IMAGE_SOURCES: Mapping[str, Callable[[Mapping[str, object]], Iterator[ImageRef]]] = {
    LAMBDA_FUNCTION: _lambda_images,
    SAGEMAKER_MODEL: _model_images,
    SAGEMAKER_PIPELINE: _pipeline_images,
    ECS_TASK_DEFINITION: _ecs_images,
}


def images_of(resource_type: str, props: Mapping[str, object]) -> Iterator[ImageRef]:
    """Every container image a resource of `resource_type` references."""
    source = IMAGE_SOURCES.get(resource_type)
    if source is None and resource_type.startswith(SAGEMAKER_PREFIX):
        source = _nested_images
    if source is not None:
        yield from source(props)


def image_violations(
    resource_type: str, props: Mapping[str, object], config: Mapping[str, object]
) -> list[str]:
    rule = ImageRuleConfig.from_config(config)
    refs = list(images_of(resource_type, props))
    if isinstance(rule, str):
        return [rule] if refs else []
    messages = []
    for ref in refs:
        problem = ref.problem or image_problem(ref.value, rule)
        if problem is not None:
            messages.append(f"{ref.where} {problem}")
    return messages


def prod_images_from_ops_validator(
    args: ResourceValidationArgs, report_violation: ReportViolation
) -> None:
    props = props_of(args.props)
    for message in image_violations(args.resource_type, props, args.get_config()):
        report_violation(message, None)


POLICY = ResourceValidationPolicy(
    name=NAME,
    description=(
        "Every container image (Lambda, SageMaker model, SageMaker pipeline steps) is an image "
        "of the ops account's ECR in this region, from an allowed repository, pinned by digest."
    ),
    validate=prod_images_from_ops_validator,
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=PolicyConfigSchema(
        properties={
            "opsAccountId": {
                "type": "string",
                "pattern": "^[0-9]{12}$",
                "description": "Account ID of the ops account that owns the ECR registry.",
            },
            "region": {
                "type": "string",
                "pattern": "^[a-z]{2}(-gov)?-[a-z]+-[0-9]$",
                "description": "Region of the ops registry (the stack's region).",
            },
            "allowedRepositories": {
                "type": "array",
                "items": {"type": "string", "minLength": 1},
                "minItems": 1,
                "description": "ECR repositories (names, not URLs) whose images may run.",
            },
            "unknownIsViolation": {
                "type": "boolean",
                "default": True,
                "description": "Treat an image unknown at preview time as a violation.",
            },
        },
        required=["opsAccountId", "region", "allowedRepositories"],
    ),
)
