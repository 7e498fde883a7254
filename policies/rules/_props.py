"""Plain views of what the engine sends a policy, with unknowns made explicit.

pulumi_policy wraps resource properties in proxies that raise
`UnknownValueError` on access to a value unknown at preview time; the SDK turns
that exception into an *advisory* "can't run policy during preview" note, i.e.
a skip. Rules here unwrap the proxies first and decide for themselves what an
unknown means (in prod, for images, it is a violation).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import cast

from pulumi_policy import proxy

UNKNOWN_SENTINELS: frozenset[str] = frozenset(
    {
        proxy.UNKNOWN_BOOLEAN_VALUE,
        proxy.UNKNOWN_NUMBER_VALUE,
        proxy.UNKNOWN_STRING_VALUE,
        proxy.UNKNOWN_ARRAY_VALUE,
        proxy.UNKNOWN_ASSET_VALUE,
        proxy.UNKNOWN_ARCHIVE_VALUE,
        proxy.UNKNOWN_OBJECT_VALUE,
    }
)

JsonValue = object
"""Any value decoded from JSON or from a resource's inputs (dict, list, str, number, bool, None)."""


class Unknown:
    """Marker for a value that is not known until the engine creates a resource."""

    _instance: Unknown | None = None

    def __new__(cls) -> Unknown:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "<unknown during preview>"


UNKNOWN = Unknown()


def is_unknown(value: object) -> bool:
    return value is UNKNOWN or (isinstance(value, str) and value in UNKNOWN_SENTINELS)


def plain(value: object) -> object:
    """A deep copy of `value` without the SDK's proxies; unknown sentinels become `UNKNOWN`."""
    if isinstance(value, proxy._DictProxy | proxy._ListProxy):
        value = value["__target"]
    if isinstance(value, Mapping):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    if is_unknown(value):
        return UNKNOWN
    return value


def props_of(raw: Mapping[str, object]) -> dict[str, object]:
    """The resource's properties as plain data (see `plain`)."""
    return cast(dict[str, object], plain(raw))


def get_path(value: object, *path: str) -> object:
    """`value[path[0]][path[1]]...`; None where a key is missing, UNKNOWN under an unknown."""
    current = value
    for key in path:
        if current is UNKNOWN:
            return UNKNOWN
        if not isinstance(current, Mapping):
            return None
        current = current.get(key)
    return current


def as_list(value: object) -> list[object]:
    """IAM-style "string or list of strings" (and pulumi's list-or-single object) as a list."""
    if value is None:
        return []
    if isinstance(value, list):
        return list(value)
    return [value]


class DocumentError(ValueError):
    """A JSON document (IAM policy, pipeline definition) could not be parsed."""


def json_document(value: object) -> object:
    """Parse a JSON-string input (policies, pipeline definitions); dicts pass through.

    Returns UNKNOWN for an unknown value and raises DocumentError for anything
    that is neither JSON text nor an object.
    """
    if is_unknown(value):
        return UNKNOWN
    if isinstance(value, Mapping):
        return plain(value)
    if not isinstance(value, str):
        raise DocumentError(f"expected a JSON string, got {type(value).__name__}")
    if any(sentinel in value for sentinel in UNKNOWN_SENTINELS):
        # A document that embeds an unknown (e.g. an ARN interpolated into the JSON text).
        return UNKNOWN
    try:
        return plain(json.loads(value))
    except json.JSONDecodeError as error:
        raise DocumentError(f"not valid JSON ({error.msg} at position {error.pos})") from None


@dataclass(frozen=True)
class PolicyStatement:
    """One statement of an IAM policy document, normalised to lists."""

    index: int
    sid: str | None
    effect: str
    actions: tuple[object, ...]
    not_actions: tuple[object, ...]
    resources: tuple[object, ...]
    not_resources: tuple[object, ...]
    principal: object
    conditions: Mapping[str, object]

    @property
    def label(self) -> str:
        return f"statement {self.sid!r}" if self.sid else f"statement #{self.index}"


def statements(document: object) -> Iterator[PolicyStatement]:
    """The statements of an IAM policy document (`Statement` may be an object or a list)."""
    if not isinstance(document, Mapping):
        raise DocumentError("an IAM policy document must be a JSON object")
    for index, raw in enumerate(as_list(document.get("Statement"))):
        if not isinstance(raw, Mapping):
            raise DocumentError(f"statement #{index} is not an object")
        conditions = raw.get("Condition") or {}
        sid = raw.get("Sid")
        yield PolicyStatement(
            index=index,
            sid=sid if isinstance(sid, str) and sid else None,
            # IAM requires Effect; treat a missing one as Allow so nothing slips through.
            effect=str(raw.get("Effect", "Allow")),
            actions=tuple(as_list(raw.get("Action"))),
            not_actions=tuple(as_list(raw.get("NotAction"))),
            resources=tuple(as_list(raw.get("Resource"))),
            not_resources=tuple(as_list(raw.get("NotResource"))),
            principal=raw.get("Principal"),
            conditions=conditions if isinstance(conditions, Mapping) else {},
        )


def principal_values(principal: object) -> list[object]:
    """Every principal a statement names, across the AWS/Service/Federated keys ("*" stays "*")."""
    if principal is None:
        return []
    if isinstance(principal, Mapping):
        values: list[object] = []
        for item in principal.values():
            values.extend(as_list(item))
        return values
    return as_list(principal)


def is_everyone(principal: object) -> bool:
    """True when a statement's principal includes `*` (anyone, any account)."""
    return any(value == "*" for value in principal_values(principal))


def config_str(config: Mapping[str, object], key: str) -> str | None:
    value = config.get(key)
    return value if isinstance(value, str) and value else None


def config_bool(config: Mapping[str, object], key: str, default: bool) -> bool:
    value = config.get(key)
    return value if isinstance(value, bool) else default


def config_int(config: Mapping[str, object], key: str, default: int) -> int:
    # Configure sends numbers as protobuf doubles; 2.0 means 2.
    value = config.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return default
    return int(value)


def config_strings(config: Mapping[str, object], key: str) -> tuple[str, ...]:
    """The non-empty strings of a list setting.

    Empty or blank items are dropped: an empty repository name would otherwise make
    `<registry>/@sha256:...` an allowed image. A list with nothing left counts as missing,
    so a rule that requires it fails closed.
    """
    value = config.get(key)
    if not isinstance(value, Sequence) or isinstance(value, str):
        return ()
    return tuple(item for item in value if isinstance(item, str) and item.strip())
