"""Loading one stack's settings: the right model for the stack, strict validation, and the
checks that need the rest of the stack file (aws:region, aws:allowedAccountIds, the
promotion source, prod's endpoint minimum), each failure one line naming file and key."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from infra.settings.base import SettingsError, shown
from infra.settings.endpoint import PROD_MIN_ENDPOINT_INSTANCES
from infra.settings.kinds import EnvironmentSettings, IdentitySettings, OpsSettings, Settings
from infra.settings.stacks import (
    IDENTITY_STACK,
    PROMOTION_ORDER,
    SETTINGS_KEY,
    STACKS,
    source_in_order,
)


def _key_path(loc: Sequence[int | str]) -> str:
    parts = [SETTINGS_KEY]
    for item in loc:
        if isinstance(item, int):
            parts[-1] += f"[{item}]"
        else:
            parts.append(str(item))
    return ".".join(parts)


def _describe(error: ValidationError, source: str) -> str:
    lines = []
    for err in error.errors():
        loc = [p for p in err["loc"] if p not in ("function-after",)]
        key = _key_path(loc)
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "is not a known setting; remove it or check its spelling"
        elif err["type"] == "missing":
            message = "is required; add it"
        if len(message) > 300:
            message = f"{message[:300]}... (cut)"
        lines.append(f"{source}: {key} {message}")
    return "\n".join(lines)


def unknown_promote_keys(keys: Sequence[str]) -> list[str]:
    """Config keys in the `promote:` namespace other than `promote:settings` (typos)."""
    return sorted(k for k in keys if k.startswith("promote:") and k != SETTINGS_KEY)


def load_settings(
    stack: str,
    raw: Mapping[str, Any] | None,
    *,
    aws_region: str | None,
    allowed_account_ids: Sequence[object] | None,
) -> Settings:
    """Validate one stack's settings; raise SettingsError with every problem found."""
    source = f"Pulumi.{stack}.yaml"
    if stack not in (*STACKS, IDENTITY_STACK):
        raise SettingsError(
            f"unknown stack {stack!r}: this project has the stacks {', '.join(STACKS)} "
            f"and the {IDENTITY_STACK} bootstrap (pulumi stack select ops|dev|staging|prod)"
        )
    if raw is None:
        raise SettingsError(f"{source}: {SETTINGS_KEY} is missing; copy it from Pulumi.dev.yaml")
    if not isinstance(raw, Mapping):
        raise SettingsError(f"{source}: {SETTINGS_KEY} must be an object, got {shown(raw)}")
    model = _MODELS.get(stack, EnvironmentSettings)
    try:
        # JSON mode, strict: "3" or 2.0 is no count and "yes" no boolean (YAML/JSON arrays
        # are still the tuples the models declare).
        settings = model.model_validate_json(json.dumps(dict(raw)), strict=True)
    except ValidationError as error:
        raise SettingsError(_describe(error, source)) from None
    _check_aws_config(source, stack, settings, aws_region, allowed_account_ids)
    if isinstance(settings, EnvironmentSettings):
        _check_promotion_source(source, stack, settings.promotion.source_stack)
    if (
        stack == "prod"
        and isinstance(settings, EnvironmentSettings)
        and settings.endpoint.instance_count < PROD_MIN_ENDPOINT_INSTANCES
    ):
        raise SettingsError(
            f"{source}: {SETTINGS_KEY}.endpoint.instance_count must be at least "
            f"{PROD_MIN_ENDPOINT_INSTANCES} in prod (the policy minimum), "
            f"got {settings.endpoint.instance_count}"
        )
    return settings


_MODELS: dict[str, type[OpsSettings] | type[EnvironmentSettings] | type[IdentitySettings]] = {
    "ops": OpsSettings,
    IDENTITY_STACK: IdentitySettings,
}


def _check_promotion_source(source: str, stack: str, source_stack: str | None) -> None:
    """A stack promotes only from the one before it in PROMOTION_ORDER (prod from staging)."""
    if source_stack is None:
        return
    allowed = source_in_order(stack)
    parts = source_stack.split("/")
    if allowed is None or len(parts) != 3 or parts[2] != allowed or not all(parts):
        expected = (
            f"organization/<project>/{allowed} (the stack before {stack} in the promotion "
            f"order {' -> '.join(PROMOTION_ORDER)})"
            if allowed is not None
            else f"nothing: {stack} is first in the promotion order; remove promotion"
        )
        raise SettingsError(
            f"{source}: {SETTINGS_KEY}.promotion.source_stack is {source_stack[:120]!r}; "
            f"it must be {expected}"
        )


def _check_aws_config(
    source: str,
    stack: str,
    settings: Settings,
    aws_region: str | None,
    allowed_account_ids: Sequence[object] | None,
) -> None:
    if not aws_region:
        raise SettingsError(f"{source}: aws:region is missing; add `aws:region: {settings.region}`")
    if aws_region != settings.region:
        raise SettingsError(
            f"{source}: aws:region is {shown(aws_region)} but {SETTINGS_KEY}.region is "
            f"{shown(settings.region)}; make them the same"
        )
    account = settings.accounts.for_stack(stack)
    listed = allowed_account_ids if isinstance(allowed_account_ids, list | tuple) else None
    if listed is None or [a if isinstance(a, str) else None for a in listed] != [account]:
        raise SettingsError(
            f'{source}: aws:allowedAccountIds must be ["{account}"] (the {stack} account, '
            f"so a wrong AWS profile fails before anything changes), got "
            f"{shown(allowed_account_ids)}"
        )
