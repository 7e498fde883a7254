"""Deterministic names of what the deployer creates.

Models and endpoint configs are named after the endpoint, the model package
version and a short hash of their content: a replayed or retried event finds
the resource it already created (no timestamps, no duplicates), and a change of
settings for the same version gets a new name instead of a silent mismatch.
The component scopes the deployer's IAM policy with the same prefix.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

MAX_NAME = 63
"""SageMaker's limit for model, endpoint config and endpoint names."""
_MAX_SUFFIX = len("-v99999-12345678")
_MAX_PREFIX = MAX_NAME - _MAX_SUFFIX


def content_hash(document: Any, length: int = 8) -> str:
    """Short, stable hash of a JSON-serialisable document."""
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:length]


def resource_prefix(endpoint_name: str) -> str:
    """Prefix of every model and endpoint config name of one endpoint.

    Long endpoint names are cut and made unique again with a hash, so that any
    version suffix still fits SageMaker's 63 characters.
    """
    if len(endpoint_name) <= _MAX_PREFIX:
        return endpoint_name
    digest = content_hash(endpoint_name, 6)
    return f"{endpoint_name[: _MAX_PREFIX - 7].rstrip('-')}-{digest}"


def model_name(endpoint_name: str, version: int, content: Any) -> str:
    return f"{resource_prefix(endpoint_name)}-v{version}-{content_hash(content)}"


def endpoint_config_name(endpoint_name: str, version: int, content: Any) -> str:
    return f"{resource_prefix(endpoint_name)}-v{version}-{content_hash(content)}"


def resource_pattern(endpoint_name: str) -> str:
    """IAM resource-name pattern matching every model/config `model_name` can produce.

    SageMaker ARNs carry names in lower case, so the pattern is lower case too.
    """
    return f"{resource_prefix(endpoint_name).lower()}-v*"


def rollback_alarm_names(endpoint_name: str) -> tuple[str, str]:
    """Names of the CloudWatch alarms that roll a blue/green update back."""
    return (f"{endpoint_name}-invocation-5xx", f"{endpoint_name}-model-latency")
