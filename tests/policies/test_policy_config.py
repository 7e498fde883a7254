"""The committed policies/config/<stack>.json agree with the stack settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra import policy_config
from infra.policy_config import (
    POLICY_NAMES,
    enforcement_level,
    expected_files,
    load_stack_settings,
    stale_files,
)
from infra.policy_config import (
    policy_config as build_policy_config,
)
from infra.settings import PROD_MIN_ENDPOINT_INSTANCES, STACKS


def test_committed_policy_configs_match_the_stack_settings() -> None:
    assert stale_files() == [], (
        "policies/config is out of date: uv run python -m infra.policy_config --write"
    )


def test_a_settings_change_is_detected_as_drift(tmp_path: Path) -> None:
    root = Path(policy_config.REPO_ROOT)
    for stack in STACKS:
        (tmp_path / f"Pulumi.{stack}.yaml").write_text((root / f"Pulumi.{stack}.yaml").read_text())
    (tmp_path / "Pulumi.yaml").write_text((root / "Pulumi.yaml").read_text())
    prod = tmp_path / "Pulumi.prod.yaml"
    prod.write_text(
        prod.read_text()
        .replace("      allowed: true", "      allowed: false")
        .replace("      enabled: true", "      enabled: false")
    )
    assert stale_files(tmp_path, root / "policies" / "config") == ["prod"]


def test_prod_makes_every_rule_mandatory(
    committed_config: dict[str, dict[str, dict[str, object]]],
) -> None:
    prod = committed_config["prod"]
    assert sorted(prod) == sorted(POLICY_NAMES)
    assert {policy["enforcementLevel"] for policy in prod.values()} == {"mandatory"}


@pytest.mark.parametrize(
    ("policy", "stack", "level"),
    [
        ("prod-images-from-ops", "dev", "advisory"),
        ("prod-images-from-ops", "staging", "mandatory"),
        ("sagemaker-endpoint-min-instances", "staging", "advisory"),
        ("sagemaker-endpoint-encryption-and-capture", "staging", "mandatory"),
        ("github-oidc-trust", "ops", "mandatory"),
        ("s3-bucket-hardening", "dev", "mandatory"),
    ],
)
def test_levels_outside_prod(policy: str, stack: str, level: str) -> None:
    assert enforcement_level(policy, stack) == level


def test_values_come_from_the_settings() -> None:
    prod_settings = load_stack_settings("prod")
    config = build_policy_config("prod", prod_settings, project="promote-code")
    images = config["prod-images-from-ops"]
    assert images["opsAccountId"] == prod_settings.accounts.ops
    assert images["region"] == prod_settings.region
    assert images["unknownIsViolation"] is True
    assert config["sagemaker-endpoint-min-instances"]["minInstanceCount"] == (
        PROD_MIN_ENDPOINT_INSTANCES
    )
    assert config["retraining-schedule-allowed"]["retrainingAllowed"] is True
    assert config["github-oidc-trust"]["repository"] == prod_settings.github.repository
    staging = build_policy_config("staging", load_stack_settings("staging"), project="promote-code")
    assert staging["retraining-schedule-allowed"]["retrainingAllowed"] is False
    assert staging["prod-images-from-ops"]["unknownIsViolation"] is False
    assert staging["required-tags"]["tags"]["environment"] == "staging"


def test_check_entry_point_reports_drift(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`--check` compares the real files of CONFIG_DIR (no stub): a hand edit is drift."""
    assert policy_config.main(["--check"]) == 0
    monkeypatch.setattr(policy_config, "CONFIG_DIR", tmp_path)
    for stack, text in expected_files().items():
        (tmp_path / f"{stack}.json").write_text(text)
    assert policy_config.main(["--check"]) == 0
    prod = tmp_path / "prod.json"
    prod.write_text(
        prod.read_text().replace('"unknownIsViolation": true', '"unknownIsViolation": false')
    )
    assert stale_files(directory=tmp_path) == ["prod"]
    assert policy_config.main(["--check"]) == 1
    (tmp_path / "dev.json").unlink()
    assert stale_files(directory=tmp_path) == ["dev", "prod"]
    assert policy_config.main(["--write"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{s}.json" for s in STACKS)
    assert prod.read_text() == expected_files()["prod"]
    assert policy_config.main(["--check"]) == 0


def test_the_stack_account_is_generated_for_the_model_package_check() -> None:
    for stack in STACKS:
        settings = load_stack_settings(stack)
        config = build_policy_config(stack, settings, project="promote-code")
        assert config["prod-images-from-ops"]["stackAccountId"] == settings.accounts.for_stack(
            stack
        )
