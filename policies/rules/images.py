"""prod-images-from-ops: every container image is an ops-account ECR image pinned by digest.

This is the promotion rule of the design: an environment runs exactly the
images the ops stack built from a reviewed commit. What is checked, exactly:

- `aws:lambda/function:Function`: `imageUri` (an `Image` package without one fails);
- `aws:sagemaker/model:Model`: `primaryContainer`/`containers[]` `image` and
  `modelPackageName` (see below);
- `aws:sagemaker/pipeline:Pipeline`: every `ImageUri`, `TrainingImage`, `Image` and
  `RuleEvaluatorImage` anywhere in a step of the inline `pipelineDefinition`, plus its
  `ModelPackageName`s. A definition that is not an object with a `Steps` list, or a
  definition kept in S3 (`pipelineDefinitionS3Location`), cannot be verified and fails;
- every other `aws:sagemaker/*` resource: `image`, `imageUri`, `baseImage` (image
  versions), `trainingImage`, `ruleEvaluatorImage` and `modelPackageName` at any depth;
- `aws:ecs/taskDefinition:TaskDefinition`: `containerDefinitions[].image`;
- `aws:batch/jobDefinition:JobDefinition`: `image` anywhere in `containerProperties`,
  `nodeProperties`, `ecsProperties` (JSON) and `eksProperties`;
- `aws:apprunner/service:Service`: `imageIdentifier`;
- `aws:codebuild/project:Project`: `environment.image`;
- `aws:scheduler/schedule:Schedule` with a universal target (`arn:aws:scheduler:::aws-sdk:
  <service>:<action>`, e.g. the drift monitor's `sagemaker:createProcessingJob`): every
  `ImageUri`, `TrainingImage`, `Image` and `RuleEvaluatorImage` and `ModelPackageName` in
  the API request (`target.input`), which the schedule sends on every run. An input that
  is not JSON fails; one unknown during preview is an unknown image. A templated target
  (a resource ARN) only names a resource, whose own images are checked where it is declared.

A training step or job that names an algorithm resource (`AlgorithmName`, no
`TrainingImage`) or a `SourceAlgorithmSpecification` fails: the image lives in a
resource the pack cannot see. A model package (`ModelPackageName`) must be the ARN
of a package in the stack's own account and region (`stackAccountId`); in prod a
model package cannot pass without that setting.

Not covered: Kubernetes/EKS workloads, EMR Serverless, CodeBuild fleets, EC2 AMIs,
and any other resource type not listed above.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Literal

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
    stack_account_id: str | None = None

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
            stack_account_id=config_str(config, "stackAccountId"),
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

    @property
    def partition(self) -> str:
        if self.region.startswith("cn-"):
            return "aws-cn"
        if self.region.startswith("us-gov-"):
            return "aws-us-gov"
        return "aws"

    def model_package_pattern(self, account: str) -> re.Pattern[str]:
        # model-package/<name> (unversioned) or model-package/<group>/<version>.
        return re.compile(
            rf"arn:{re.escape(self.partition)}:sagemaker:{re.escape(self.region)}:"
            rf"{re.escape(account)}:model-package/[A-Za-z0-9](?:-*[A-Za-z0-9]){{0,62}}(?:/[0-9]+)?"
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


_ARN = re.compile(
    r"arn:(?P<partition>[^:]*):(?P<service>[^:]*):(?P<region>[^:]*):(?P<account>[^:]*):"
)


def model_package_problem(package: object, config: ImageRuleConfig) -> str | None:
    """Why `package` is not a model package of this stack, or None when it is.

    A model package carries its own image; one of this stack's account and region was
    registered by this stack's (checked) pipeline, one of another account was not.
    """
    if is_unknown(package):
        unverifiable: str | None = (
            "is a model package unknown during preview, so it cannot be shown to belong "
            "to this stack's account"
        )
    elif not isinstance(package, str):
        return (
            f"is not a literal model package ARN but {package!r} (a parameter or expression "
            "can be overridden at run time)"
        )
    elif config.stack_account_id is None:
        unverifiable = (
            f"names the model package {package!r}, which cannot be checked: the policy "
            "config has no stackAccountId (regenerate policies/config/<stack>.json)"
        )
    else:
        unverifiable = None
    if unverifiable is not None or not isinstance(package, str):
        return unverifiable if config.unknown_is_violation else None
    account = config.stack_account_id
    assert account is not None
    if config.model_package_pattern(account).fullmatch(package):
        return None
    return f"{package!r} {_diagnose_package(package, account, config)}"


def _diagnose_package(package: str, account: str, config: ImageRuleConfig) -> str:
    expected = (
        f"expected arn:{config.partition}:sagemaker:{config.region}:{account}:model-package/..."
    )
    arn = _ARN.match(package)
    if arn is None:
        reason = "is not a model package ARN (a bare name does not say whose package it is)"
    elif arn.group("account") != account:
        reason = f"is a model package of account {arn.group('account')!r}, not this stack's"
    elif arn.group("region") != config.region:
        reason = f"is a model package in region {arn.group('region')!r}, not {config.region}"
    else:
        reason = "is not a model package ARN of this stack"
    return f"{reason}; {expected}"


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


def reference_problem(ref: ImageRef, config: ImageRuleConfig) -> str | None:
    if ref.kind == "model-package":
        return model_package_problem(ref.value, config)
    return image_problem(ref.value, config)


def image_violations(
    resource_type: str, props: Mapping[str, object], config: Mapping[str, object]
) -> list[str]:
    rule = ImageRuleConfig.from_config(config)
    refs = list(images_of(resource_type, props))
    if isinstance(rule, str):
        return [rule] if refs else []
    messages = []
    for ref in refs:
        problem = ref.problem or reference_problem(ref, rule)
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
        "Every container image (Lambda, SageMaker models, pipeline steps and jobs, ECS, Batch, "
        "App Runner, CodeBuild, API calls of scheduled universal targets) is an image of the "
        "ops account's ECR in this region, from an "
        "allowed repository, pinned by digest; model packages belong to the stack's account."
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
            "stackAccountId": {
                "type": "string",
                "pattern": "^[0-9]{12}$",
                "description": (
                    "Account ID of the stack; a model package (ModelPackageName) must be one "
                    "of this account and region. Without it a model package fails where "
                    "unknownIsViolation is set."
                ),
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
