"""required-tags: every taggable resource carries the project, environment and managed-by tags.

Tags are what cost reports, access conditions and incident responders use to
tell four nearly identical environments apart. A resource's effective tags
are its own `tags` over its provider's `defaultTags`, as AWS applies them.
Whether a type is taggable comes from `aws_taggable_types.txt`, generated
from the installed pulumi-aws (`python -m rules.taggable_gen --write` in policies/).
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

from ._props import UNKNOWN, DocumentError, get_path, is_unknown, json_document, plain, props_of
from .taggable import TAGGABLE_TYPES

NAME = "required-tags"


def is_taggable(resource_type: str, props: Mapping[str, object]) -> bool:
    return resource_type in TAGGABLE_TYPES or (resource_type.startswith("aws:") and "tags" in props)


def _provider_default_tags(provider_props: Mapping[str, object] | None) -> object:
    """The provider's `defaultTags`; provider inputs carry nested values as JSON text."""
    default_tags = (provider_props or {}).get("defaultTags")
    if isinstance(default_tags, str) and not is_unknown(default_tags):
        try:
            return json_document(default_tags)
        except DocumentError:
            return None
    return default_tags


def tag_violations(
    resource_type: str,
    props: Mapping[str, object],
    provider_props: Mapping[str, object] | None,
    required: Mapping[str, str],
) -> list[str]:
    if not is_taggable(resource_type, props):
        return []
    own = props.get("tags")
    defaults = get_path(_provider_default_tags(provider_props), "tags")
    if own is UNKNOWN or defaults is UNKNOWN:
        return []
    effective: dict[str, object] = {}
    for source in (defaults, own):
        if isinstance(source, Mapping):
            effective.update(source)
    missing = [key for key in required if key not in effective]
    wrong = [
        f"{key}={effective[key]!r} (expected {value!r})"
        for key, value in required.items()
        if key in effective and effective[key] != value and not is_unknown(effective[key])
    ]
    messages = []
    if missing:
        messages.append(f"missing tags: {', '.join(missing)}")
    if wrong:
        messages.append(f"wrong tags: {', '.join(wrong)}")
    return messages


def required_tags_validator(
    args: ResourceValidationArgs, report_violation: ReportViolation
) -> None:
    raw_required = args.get_config().get("tags")
    required = (
        {str(k): str(v) for k, v in raw_required.items()}
        if isinstance(raw_required, Mapping)
        else {}
    )
    if not required:
        report_violation("policy config has no tags to require; pass --policy-pack-config", None)
        return
    provider = args.provider
    provider_props = props_of(provider.props) if provider is not None else None
    for message in tag_violations(
        args.resource_type, props_of(args.props), provider_props, required
    ):
        report_violation(message, None)


POLICY = ResourceValidationPolicy(
    name=NAME,
    description="Every taggable AWS resource carries the project, environment and managed-by tags.",
    validate=required_tags_validator,
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=PolicyConfigSchema(
        properties={
            "tags": {
                "type": "object",
                "additionalProperties": {"type": "string"},
                "minProperties": 1,
                "description": "Tag keys every taggable resource must carry, with their values.",
            },
        },
        required=["tags"],
    ),
)

__all__ = ["NAME", "POLICY", "is_taggable", "plain", "required_tags_validator", "tag_violations"]
