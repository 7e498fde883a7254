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
from infra.settings import SETTINGS_KEY, Settings, SettingsError, load_settings


def stack_file(stack: str, root: Path = REPO_ROOT) -> Path:
    return root / f"Pulumi.{stack}.yaml"


def read_stack_config(stack: str, root: Path = REPO_ROOT) -> dict[str, Any]:
    """The `config:` mapping of `Pulumi.<stack>.yaml`; SettingsError names what is wrong."""
    path = stack_file(stack, root)
    if not path.is_file():
        raise SettingsError(f"unknown stack {stack!r}: {path.name} does not exist")
    try:
        document = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise SettingsError(f"{path.name}: not valid YAML: {error}") from None
    config = document.get("config") if isinstance(document, dict) else None
    if not isinstance(config, dict):
        raise SettingsError(f"{path.name}: has no `config:` mapping")
    return config


def settings_of(stack: str, config: dict[str, Any]) -> Settings:
    """Validate one stack's settings from its config mapping."""
    return load_settings(
        stack,
        config.get(SETTINGS_KEY),
        aws_region=config.get("aws:region"),
        allowed_account_ids=config.get("aws:allowedAccountIds"),
    )


def load_stack_settings(stack: str, root: Path = REPO_ROOT) -> Settings:
    """Read and validate `Pulumi.<stack>.yaml` through the real settings model."""
    return settings_of(stack, read_stack_config(stack, root))
