"""What every settings model shares: the strict base model, the error type, fields bounded
by `ml.limits`, and how a bad value is echoed in a message."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ml import limits


class SettingsError(Exception):
    """Stack settings are invalid; the message says which file, which key and what to write."""


class StrictModel(BaseModel):
    """Unknown keys are errors and a loaded model never changes."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def shown(value: object, limit: int = 80) -> str:
    """A value echoed in a message, cut to `limit` characters."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def bounded(bounds: limits.Bounds[Any], description: str) -> Any:
    """A numeric field whose default and range are the ones the ML configs check (`ml.limits`)."""
    return Field(
        default=bounds.default,
        ge=bounds.minimum,
        le=bounds.maximum,
        gt=bounds.exclusive_minimum,
        description=description,
    )
