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

This module is the rule itself (its config schema, its verdict per resource);
`references` finds the image references in a resource's inputs, `checks` decides
whether each one is allowed.
"""

from __future__ import annotations

from collections.abc import Mapping

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)

from .._props import props_of
from .checks import ImageRuleConfig, reference_problem
from .references import images_of

NAME = "prod-images-from-ops"


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
