"""Helpers for reading captured plans in tests."""

from __future__ import annotations

import json
from typing import Any

from offline.plan.capture import CapturedResource

TEST_TAG = "0123456789abcdef0123456789abcdef01234567"


def policy_document(resource: CapturedResource, key: str = "policy") -> dict[str, Any]:
    document: dict[str, Any] = json.loads(resource.inputs[key])
    return document


def statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    body = document["Statement"]
    return body if isinstance(body, list) else [body]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def verification_record(commit: str = TEST_TAG) -> dict[str, Any]:
    """A staging verification record with every check passed, as ml/verify/ writes it."""
    from infra.promotion import VERIFICATION_CHECKS  # noqa: PLC0415

    return {
        "commit": commit,
        "checks": {check: {"passed": True} for check in VERIFICATION_CHECKS},
    }
