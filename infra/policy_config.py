"""Per-stack policy pack config, generated from the stack settings so the two cannot drift.

`policies/config/<stack>.json` is what CI passes to
`pulumi preview --policy-pack policies --policy-pack-config policies/config/<stack>.json`.
Account, region, repository, retraining and instance-count values come from
`Pulumi.<stack>.yaml` through the real settings model; which rules block a
deployment in which stack is the pack's own matrix, `policies/enforcement.py`.

    uv run python -m infra.policy_config --write   # regenerate
    uv run python -m infra.policy_config --check   # exit 1 when a file is stale
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from infra.context import REPO_ROOT
from infra.settings import (
    IDENTITY_STACK,
    PROD_MIN_ENDPOINT_INSTANCES,
    STACKS,
    EnvironmentSettings,
    Settings,
    SettingsError,
)
from infra.stack_files import load_stack_settings
from policies.enforcement import UnknownRuleError, levels

CONFIG_DIR = REPO_ROOT / "policies" / "config"

IMAGE_REPOSITORY_ROLES = ("training", "deployer")
"""The ops ECR repositories are named <project>/<role>."""


def project_name(root: Path = REPO_ROOT) -> str:
    document = yaml.safe_load((root / "Pulumi.yaml").read_text())
    name = document.get("name") if isinstance(document, dict) else None
    if not isinstance(name, str) or not name:
        raise SettingsError(f"{root / 'Pulumi.yaml'}: `name` (the project name) is missing")
    return name


def policy_config(stack: str, settings: Settings, *, project: str) -> dict[str, dict[str, Any]]:
    """The `--policy-pack-config` document for one stack."""
    retraining_allowed = (
        settings.retraining.allowed if isinstance(settings, EnvironmentSettings) else False
    )
    properties: dict[str, dict[str, Any]] = {
        "prod-images-from-ops": {
            "opsAccountId": settings.accounts.ops,
            "region": settings.region,
            "allowedRepositories": [f"{project}/{role}" for role in IMAGE_REPOSITORY_ROLES],
            # The design's rule: in prod an image unknown at preview is a violation, not a skip.
            "unknownIsViolation": stack == "prod",
            # A model package (ModelPackageName) must be one of this stack's account.
            "stackAccountId": settings.accounts.for_stack(stack),
        },
        "github-oidc-trust": {
            "repository": settings.github.repository,
            "previewRoleNames": [f"{project}-github-preview"],
        },
        "sagemaker-endpoint-min-instances": {
            "minInstanceCount": PROD_MIN_ENDPOINT_INSTANCES if stack == "prod" else 1,
        },
        "retraining-schedule-allowed": {"retrainingAllowed": retraining_allowed},
        "required-tags": {
            "tags": {"project": project, "environment": stack, "managed-by": "pulumi"},
        },
    }
    stack_levels = levels(stack)
    source = settings.promotion.source_stack if isinstance(settings, EnvironmentSettings) else None
    if source and "promotion-gate" in stack_levels:
        # The gate's record names the source by its last path segment (org/project/<stack>).
        properties["promotion-gate"] = {"sourceStack": source.rsplit("/", 1)[-1]}
    unknown = sorted(set(properties) - set(stack_levels))
    if unknown:
        raise SettingsError(
            f"infra/policy_config.py sets properties for {', '.join(unknown)}, which the pack "
            "(policies/rules/__init__.py) does not have"
        )
    return {
        name: {"enforcementLevel": level, **properties.get(name, {})}
        for name, level in stack_levels.items()
    }


def render(config: Mapping[str, object]) -> str:
    return json.dumps(config, indent=2) + "\n"


def expected_files(root: Path = REPO_ROOT) -> dict[str, str]:
    """`policies/config/<stack>.json` contents for every stack, from the committed settings."""
    project = project_name(root)
    return {
        stack: render(policy_config(stack, load_stack_settings(stack, root), project=project))
        for stack in (IDENTITY_STACK, *STACKS)
    }


def stale_files(root: Path = REPO_ROOT, directory: Path = CONFIG_DIR) -> list[str]:
    """Stacks whose committed policy config differs from what the settings give."""
    stale = []
    for stack, text in expected_files(root).items():
        path = directory / f"{stack}.json"
        if not path.is_file() or path.read_text() != text:
            stale.append(stack)
    return stale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m infra.policy_config", description=__doc__.split("\n\n")[0]
    )
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help="regenerate policies/config/*.json")
    mode.add_argument("--check", action="store_true", help="fail when a file is out of date")
    options = parser.parse_args(argv)
    try:
        files = expected_files()
    except (SettingsError, UnknownRuleError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if options.write:
        CONFIG_DIR.mkdir(parents=True, exist_ok=True)
        for stack, text in files.items():
            path = CONFIG_DIR / f"{stack}.json"
            path.write_text(text)
            print(f"wrote {path}")
        return 0
    stale = stale_files(REPO_ROOT, CONFIG_DIR)
    if stale:
        print(
            f"policy config out of date for {', '.join(stale)}; run "
            "`uv run python -m infra.policy_config --write`",
            file=sys.stderr,
        )
        return 1
    print("policy configs match the stack settings")
    return 0


if __name__ == "__main__":
    sys.exit(main())
