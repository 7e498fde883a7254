"""The committed stack files: `Pulumi.<stack>.yaml` read and validated in one place.

`pulumi up` reads the same files through the engine (`infra.program.settings_from_config`);
everything that reads them from disk (the offline plan, the policy-config generator, tests)
comes through here, so a stack file is parsed and checked the same way everywhere.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from infra.context import REPO_ROOT
from infra.settings import (
    SETTINGS_KEY,
    Settings,
    SettingsError,
    load_settings,
    unknown_promote_keys,
)


class _UniqueKeyLoader(yaml.SafeLoader):  # type: ignore[misc]
    """YAML that refuses a key written twice in one mapping (PyYAML keeps the last)."""


def _mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"key {key!r} is written twice", key_node.start_mark
            )
        seen.add(key)
    return dict(loader.construct_pairs(node))


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def stack_file(stack: str, root: Path = REPO_ROOT) -> Path:
    return root / f"Pulumi.{stack}.yaml"


def read_stack_config(stack: str, root: Path = REPO_ROOT) -> dict[str, Any]:
    """The `config:` mapping of `Pulumi.<stack>.yaml`; SettingsError names what is wrong."""
    path = stack_file(stack, root)
    if not path.is_file():
        raise SettingsError(f"unknown stack {stack!r}: {path.name} does not exist")
    try:
        document = yaml.load(path.read_text(), Loader=_UniqueKeyLoader) or {}  # noqa: S506
    except yaml.YAMLError as error:
        raise SettingsError(f"{path.name}: not valid YAML: {error}") from None
    config = document.get("config") if isinstance(document, dict) else None
    if not isinstance(config, dict):
        raise SettingsError(f"{path.name}: has no `config:` mapping")
    return config


def settings_of(stack: str, config: dict[str, Any]) -> Settings:
    """Validate one stack's settings from its config mapping (and its `promote:` keys)."""
    unknown = unknown_promote_keys(list(config))
    if unknown:
        raise SettingsError(
            f"Pulumi.{stack}.yaml: {', '.join(unknown)} is not a setting of this project; every "
            f"setting goes under {SETTINGS_KEY} (see the README's settings reference)"
        )
    return load_settings(
        stack,
        config.get(SETTINGS_KEY),
        aws_region=config.get("aws:region"),
        allowed_account_ids=config.get("aws:allowedAccountIds"),
    )


def load_stack_settings(stack: str, root: Path = REPO_ROOT) -> Settings:
    """Read and validate `Pulumi.<stack>.yaml` through the real settings model."""
    return settings_of(stack, read_stack_config(stack, root))
