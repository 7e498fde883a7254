"""SageMaker guardrails: encrypted endpoints with data capture, enough prod capacity,
and scheduled retraining only in environments whose settings allow it."""

from __future__ import annotations

from collections.abc import Mapping

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)

from ._props import UNKNOWN, as_list, config_bool, config_int, get_path, is_unknown, props_of

ENDPOINT_CONFIGURATION = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"
SCHEDULE = "aws:scheduler/schedule:Schedule"

ENCRYPTION_AND_CAPTURE = "sagemaker-endpoint-encryption-and-capture"
MIN_INSTANCES = "sagemaker-endpoint-min-instances"
RETRAINING = "retraining-schedule-allowed"


def encryption_and_capture_violations(resource_type: str, props: Mapping[str, object]) -> list[str]:
    if resource_type != ENDPOINT_CONFIGURATION:
        return []
    messages = []
    key = props.get("kmsKeyArn")
    if not key:
        messages.append("kmsKeyArn is not set; endpoint storage must use the stack's KMS key")
    capture = props.get("dataCaptureConfig")
    enabled = get_path(capture, "enableCapture")
    if capture is None or (enabled is not True and enabled is not UNKNOWN):
        messages.append(
            "dataCaptureConfig.enableCapture is not true; capture requests and responses so "
            "model quality can be monitored"
        )
    elif capture is not UNKNOWN and not get_path(capture, "destinationS3Uri"):
        messages.append("dataCaptureConfig.destinationS3Uri is not set")
    return messages


def min_instance_violations(
    resource_type: str, props: Mapping[str, object], minimum: int
) -> list[str]:
    if resource_type != ENDPOINT_CONFIGURATION:
        return []
    messages = []
    variants = props.get("productionVariants")
    if is_unknown(variants):
        return []
    for index, variant in enumerate(as_list(variants)):
        name = get_path(variant, "variantName")
        label = f"production variant {name!r}" if isinstance(name, str) else f"variant #{index}"
        if get_path(variant, "serverlessConfig") is not None:
            messages.append(
                f"{label} is serverless; at least {minimum} provisioned instances are required"
            )
            continue
        count = get_path(variant, "initialInstanceCount")
        if count is UNKNOWN:
            continue
        if isinstance(count, bool) or not isinstance(count, int | float) or count < minimum:
            messages.append(
                f"{label} has initialInstanceCount {count!r}; at least {minimum} are required "
                "(one instance is a single point of failure)"
            )
    return messages


def _starts_pipeline(props: Mapping[str, object]) -> bool:
    target = props.get("target")
    if get_path(target, "sagemakerPipelineParameters") is not None:
        return True
    arn = get_path(target, "arn")
    if isinstance(arn, str) and ":sagemaker:" in arn and "pipeline" in arn.lower():
        return True
    name = props.get("name")
    return isinstance(name, str) and "retrain" in name


def retraining_violations(
    resource_type: str, props: Mapping[str, object], name: str, allowed: bool
) -> list[str]:
    if resource_type != SCHEDULE or allowed:
        return []
    if not (_starts_pipeline(props) or "retrain" in name):
        return []
    if props.get("state") == "DISABLED":
        return []
    return [
        "this stack does not allow scheduled retraining (retraining.allowed is false in its "
        "settings), but this schedule starts the training pipeline"
    ]


def sagemaker_endpoint_encryption_and_capture_validator(
    args: ResourceValidationArgs, report_violation: ReportViolation
) -> None:
    for message in encryption_and_capture_violations(args.resource_type, props_of(args.props)):
        report_violation(message, None)


def sagemaker_endpoint_min_instances_validator(
    args: ResourceValidationArgs, report_violation: ReportViolation
) -> None:
    minimum = config_int(args.get_config(), "minInstanceCount", default=1)
    for message in min_instance_violations(args.resource_type, props_of(args.props), minimum):
        report_violation(message, None)


def retraining_schedule_allowed_validator(
    args: ResourceValidationArgs, report_violation: ReportViolation
) -> None:
    # Fail closed: without config, retraining is not allowed.
    allowed = config_bool(args.get_config(), "retrainingAllowed", default=False)
    props = props_of(args.props)
    for message in retraining_violations(args.resource_type, props, args.name, allowed):
        report_violation(message, None)


ENCRYPTION_AND_CAPTURE_POLICY = ResourceValidationPolicy(
    name=ENCRYPTION_AND_CAPTURE,
    description="SageMaker endpoint configurations use a KMS key and capture data.",
    validate=sagemaker_endpoint_encryption_and_capture_validator,
    enforcement_level=EnforcementLevel.MANDATORY,
)

MIN_INSTANCES_POLICY = ResourceValidationPolicy(
    name=MIN_INSTANCES,
    description="Every SageMaker endpoint production variant has the configured minimum instances.",
    validate=sagemaker_endpoint_min_instances_validator,
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=PolicyConfigSchema(
        properties={
            "minInstanceCount": {
                "type": "integer",
                "minimum": 1,
                "description": "Minimum initialInstanceCount of every production variant.",
            },
        },
        required=["minInstanceCount"],
    ),
)

RETRAINING_POLICY = ResourceValidationPolicy(
    name=RETRAINING,
    description="A retraining schedule exists only in stacks whose settings allow retraining.",
    validate=retraining_schedule_allowed_validator,
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=PolicyConfigSchema(
        properties={
            "retrainingAllowed": {
                "type": "boolean",
                "description": "The stack's retraining.allowed setting.",
            },
        },
        required=["retrainingAllowed"],
    ),
)
