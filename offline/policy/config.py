"""The `--policy-pack-config` file: loading, parsing and reconciling it as the engine does.

`reconcile_policy_config` mirrors the engine's ReconcilePolicyPackConfig (schema
defaults, then the pack's initial config, then the file; validated against each
policy's schema). Two checks go further than the engine, because a typo or a
hand edit would otherwise pass without a word: config for a policy the pack does
not have is refused, and so is a config that lowers a rule below the level the
pack's enforcement matrix (`policies/enforcement.py`) gives it in that stack.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, cast

from infra.context import REPO_ROOT
from offline.policy.errors import PolicyConfigError
from policies.enforcement import mandatory_rules

POLICY_CONFIG_DIR = REPO_ROOT / "policies" / "config"
REGENERATE = "uv run python -m infra.policy_config --write"


class EnforcementLevel(StrEnum):
    ADVISORY = "advisory"
    MANDATORY = "mandatory"
    REMEDIATE = "remediate"
    DISABLED = "disabled"


BLOCKING = frozenset({EnforcementLevel.MANDATORY, EnforcementLevel.REMEDIATE})
"""Levels whose violations stop a deployment."""


@dataclass(frozen=True)
class PolicyConfig:
    enforcement_level: EnforcementLevel | None = None
    properties: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class PolicyInfo:
    name: str
    description: str
    enforcement_level: EnforcementLevel
    config_schema: Mapping[str, Any] | None


@dataclass(frozen=True)
class AnalyzerInfo:
    name: str
    version: str
    policies: tuple[PolicyInfo, ...]
    initial_config: Mapping[str, PolicyConfig]


def shown(path: Path) -> str:
    """`path` as a user would type it: relative to the working directory when inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def config_path(stack: str, directory: Path = POLICY_CONFIG_DIR) -> Path:
    return directory / f"{stack}.json"


def load_policy_config(stack: str, directory: Path = POLICY_CONFIG_DIR) -> dict[str, object]:
    """The committed `policies/config/<stack>.json`, or one line saying what is wrong with it."""
    path = config_path(stack, directory)
    where = shown(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise PolicyConfigError(f"{where} is missing; run `{REGENERATE}`") from None
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or str(error)
        raise PolicyConfigError(f"{where} cannot be read ({reason})") from None
    try:
        loaded = json.loads(text)
    except json.JSONDecodeError as error:
        raise PolicyConfigError(
            f"{where}: not valid JSON (line {error.lineno}, column {error.colno}: {error.msg}); "
            f"fix it or run `{REGENERATE}`"
        ) from None
    if not isinstance(loaded, dict):
        raise PolicyConfigError(
            f"{where}: a policy pack config is a JSON object of policy names, "
            f"got {type(loaded).__name__}; run `{REGENERATE}`"
        )
    return cast(dict[str, object], loaded)


def _level(value: object, where: str) -> EnforcementLevel:
    try:
        return EnforcementLevel(str(value))
    except ValueError:
        raise PolicyConfigError(
            f"parsing enforcement level for {where!r}: {value!r} is not a valid enforcement level"
        ) from None


def parse_policy_pack_config(raw: Mapping[str, object]) -> dict[str, PolicyConfig]:
    """Parse the JSON of `--policy-pack-config` like the engine (a level, or an object)."""
    parsed: dict[str, PolicyConfig] = {}
    for name, value in raw.items():
        if isinstance(value, str):
            parsed[name] = PolicyConfig(_level(value, name))
        elif isinstance(value, Mapping):
            properties = {str(k): v for k, v in value.items() if k != "enforcementLevel"}
            level = _level(value["enforcementLevel"], name) if "enforcementLevel" in value else None
            if level is not None or properties:
                parsed[name] = PolicyConfig(level, properties)
        else:
            raise PolicyConfigError(f"parsing {name!r}: {value!r} must be a string or object")
    return parsed


def _apply(
    result: dict[str, PolicyConfig], given: Mapping[str, PolicyConfig]
) -> dict[str, PolicyConfig]:
    everything = given.get("all")
    if everything is not None and everything.enforcement_level is not None:
        result = {
            name: PolicyConfig(everything.enforcement_level, config.properties)
            for name, config in result.items()
        }
    for name, config in given.items():
        current = result.get(name, PolicyConfig())
        properties = {**current.properties, **config.properties}
        result[name] = PolicyConfig(
            config.enforcement_level or current.enforcement_level, properties
        )
    return result


def _schema_errors(policy: PolicyInfo, properties: Mapping[str, object]) -> list[str]:
    import jsonschema  # noqa: PLC0415 - only needed once per configuration

    if policy.config_schema is None:
        return []
    schema: dict[str, Any] = {"type": "object"}
    if policy.config_schema.get("properties"):
        schema["properties"] = policy.config_schema["properties"]
    if policy.config_schema.get("required"):
        schema["required"] = policy.config_schema["required"]
    validator = jsonschema.Draft7Validator(schema)
    errors = []
    for error in sorted(validator.iter_errors(dict(properties)), key=str):
        location = ".".join(str(p) for p in error.absolute_path) or "(root)"
        errors.append(f"{policy.name}: {location}: {error.message}")
    return errors


def reconcile_policy_config(
    info: AnalyzerInfo, config: Mapping[str, object], *, stack: str | None = None
) -> dict[str, PolicyConfig]:
    """Defaults from the schemas, then the pack's initial config, then `config`; validated.

    With `stack`, a config that lowers a rule the matrix makes mandatory there is
    refused first (its message says more than the schema errors that follow from it).
    """
    given = parse_policy_pack_config(config)
    known = {policy.name for policy in info.policies}
    unknown = sorted(set(given) - known - {"all"})
    if unknown:
        raise PolicyConfigError(
            f"policy config names policies the pack {info.name!r} does not have: "
            f"{', '.join(unknown)} (it has {', '.join(sorted(known))})"
        )
    result: dict[str, PolicyConfig] = {}
    for policy in info.policies:
        schema_properties = (policy.config_schema or {}).get("properties", {})
        defaults = {
            key: prop["default"]
            for key, prop in schema_properties.items()
            if isinstance(prop, Mapping) and "default" in prop
        }
        result[policy.name] = PolicyConfig(policy.enforcement_level, defaults)
    result = _apply(result, info.initial_config)
    result = _apply(result, given)
    if stack is not None:
        refuse_weakening(stack, result)
    errors = [
        error
        for policy in info.policies
        for error in _schema_errors(policy, result[policy.name].properties)
    ]
    if errors:
        raise PolicyConfigError("invalid policy pack config: " + "; ".join(errors))
    return result


def refuse_weakening(stack: str, reconciled: Mapping[str, PolicyConfig]) -> None:
    """Refuse a config that lets a rule the matrix makes mandatory in `stack` pass unblocked.

    The matrix is the reviewed decision (`policies/enforcement.py`); a config file,
    e.g. `{"all": "disabled"}`, must not quietly overrule it.
    """
    lowered = [
        f"{rule} ({config.enforcement_level or 'unset'})"
        for rule in mandatory_rules(stack)
        if (config := reconciled.get(rule)) is not None and config.enforcement_level not in BLOCKING
    ]
    if lowered:
        shown_rules = ", ".join(lowered[:3]) + (
            f" and {len(lowered) - 3} more" if len(lowered) > 3 else ""
        )
        raise PolicyConfigError(
            f"policy config for {stack} lowers rules that policies/enforcement.py makes "
            f"mandatory there: {shown_rules}; change a stack's levels in policies/enforcement.py "
            f"and run `{REGENERATE}`"
        )
