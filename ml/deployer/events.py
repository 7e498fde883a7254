"""The EventBridge event the deployer reacts to, and a small pattern matcher.

`deployer_event_pattern` is the single definition used by the component's rule:
approvals (to deploy) and rejections (to warn when a rejected model is still
served) of one model package group, nothing else.
`matches` implements the subset of EventBridge pattern semantics the project
uses (value lists, nested objects, arrays in events, `prefix`, `anything-but`,
`exists`), so the pattern can be tested against sample events offline and the
handler can ignore anything the rule should not have delivered.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

SOURCE: Final = "aws.sagemaker"
DETAIL_TYPE: Final = "SageMaker Model Package State Change"
APPROVED: Final = "Approved"
REJECTED: Final = "Rejected"


def deployer_event_pattern(model_package_group_name: str) -> dict[str, Any]:
    """Approvals and rejections of packages in one model package group, nothing else."""
    return {
        "source": [SOURCE],
        "detail-type": [DETAIL_TYPE],
        "detail": {
            "ModelPackageGroupName": [model_package_group_name],
            "ModelApprovalStatus": [APPROVED, REJECTED],
        },
    }


class PatternError(ValueError):
    """The pattern uses a construct this matcher does not implement."""


_MISSING = object()


def matches(pattern: Mapping[str, Any], event: Mapping[str, Any]) -> bool:
    """Whether `event` matches the EventBridge `pattern`."""
    for key, rule in pattern.items():
        value = event.get(key, _MISSING) if isinstance(event, Mapping) else _MISSING
        if isinstance(rule, Mapping):
            if not isinstance(value, Mapping) or not matches(rule, value):
                return False
        elif isinstance(rule, list):
            if not _field_matches(rule, value):
                return False
        else:
            raise PatternError(f"pattern value for {key!r} must be an object or array: {rule!r}")
    return True


def _field_matches(rules: Sequence[Any], value: Any) -> bool:
    present = value is not _MISSING
    # An array in the event matches when any of its elements matches.
    candidates = value if isinstance(value, list) else [value]
    return any(_rule_matches(rule, c, present=present) for rule in rules for c in candidates)


def _rule_matches(rule: Any, value: Any, *, present: bool) -> bool:
    if isinstance(rule, Mapping):
        return _content_filter(rule, value, present=present)
    return value is not _MISSING and _same_json_value(rule, value)


def _content_filter(rule: Mapping[str, Any], value: Any, *, present: bool) -> bool:
    if len(rule) != 1:
        raise PatternError(f"content filter must have exactly one key: {rule!r}")
    ((operator, operand),) = rule.items()
    if operator == "exists":
        return bool(operand) == present
    if operator not in ("prefix", "anything-but"):
        raise PatternError(f"content filter {operator!r} is not implemented by this matcher")
    if value is _MISSING:
        return False
    if operator == "prefix":
        return isinstance(value, str) and value.startswith(operand)
    excluded = operand if isinstance(operand, list) else [operand]
    return not any(_same_json_value(item, value) for item in excluded)


def _same_json_value(expected: Any, actual: Any) -> bool:
    # JSON values compare exactly: "1" does not match 1, and true does not match 1.
    if isinstance(expected, bool) or isinstance(actual, bool) or expected is None or actual is None:
        return expected is actual
    if isinstance(expected, int | float) and isinstance(actual, int | float):
        return bool(expected == actual)
    return type(expected) is type(actual) and bool(expected == actual)
