"""The committed policies/config/<stack>.json agree with the stack settings."""

from __future__ import annotations

from pathlib import Path

import pytest
from pulumi_policy import ResourceValidationPolicy

import policies.enforcement
import policies.rules
from infra import policy_config
from infra.policy_config import (
    expected_files,
    load_stack_settings,
    stale_files,
)
from infra.policy_config import (
    policy_config as build_policy_config,
)
from infra.settings import IDENTITY_STACK, PROD_MIN_ENDPOINT_INSTANCES, STACKS

CONFIGURED = (IDENTITY_STACK, *STACKS)
"""Every stack with a policy config: the four CI stacks and the identity bootstrap."""


def test_committed_policy_configs_match_the_stack_settings() -> None:
    assert stale_files() == [], (
        "policies/config is out of date: uv run python -m infra.policy_config --write"
    )


def test_a_settings_change_is_detected_as_drift(tmp_path: Path) -> None:
    root = Path(policy_config.REPO_ROOT)
    for stack in CONFIGURED:
        (tmp_path / f"Pulumi.{stack}.yaml").write_text((root / f"Pulumi.{stack}.yaml").read_text())
    (tmp_path / "Pulumi.yaml").write_text((root / "Pulumi.yaml").read_text())
    prod = tmp_path / "Pulumi.prod.yaml"
    prod.write_text(
        prod.read_text()
        .replace("      allowed: true", "      allowed: false")
        .replace("      enabled: true", "      enabled: false")
        .replace("      retrain_on_drift: true", "      retrain_on_drift: false")
    )
    assert stale_files(tmp_path, root / "policies" / "config") == ["prod"]


def test_levels_per_stack_come_from_the_packs_matrix() -> None:
    """prod blocks on everything; elsewhere only the matrix's exceptions warn."""
    levels = {
        stack: {
            name: rule["enforcementLevel"]
            for name, rule in build_policy_config(
                stack, load_stack_settings(stack), project="promote-code"
            ).items()
        }
        for stack in CONFIGURED
    }
    assert set(levels["prod"].values()) == {"mandatory"}
    assert levels["dev"]["prod-images-from-ops"] == "advisory"
    assert levels["staging"]["prod-images-from-ops"] == "mandatory"
    assert levels["staging"]["sagemaker-endpoint-min-instances"] == "advisory"
    assert levels["staging"]["sagemaker-endpoint-encryption-and-capture"] == "mandatory"
    assert levels["ops"]["github-oidc-trust"] == "mandatory"
    assert levels["dev"]["s3-bucket-hardening"] == "mandatory"


def _new_rule(name: str) -> ResourceValidationPolicy:
    return ResourceValidationPolicy(name=name, description="new", validate=lambda _a, _r: None)


def test_a_rule_added_to_the_pack_is_mandatory_in_every_generated_config(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The generator takes its rule list from the pack: a new rule cannot be forgotten."""
    monkeypatch.setattr(
        policies.rules, "ALL_POLICIES", (*policies.rules.ALL_POLICIES, _new_rule("zz-new-rule"))
    )
    for stack in CONFIGURED:
        config = build_policy_config(stack, load_stack_settings(stack), project="promote-code")
        assert config["zz-new-rule"] == {"enforcementLevel": "mandatory"}, stack
    # ...and the committed files are then stale until regenerated.
    assert stale_files() == list(CONFIGURED)


def test_a_matrix_entry_for_a_rule_the_pack_lacks_is_refused(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    exceptions = {**policies.enforcement.EXCEPTIONS, "prod-image-from-ops": {"dev": "advisory"}}
    monkeypatch.setattr(policies.enforcement, "EXCEPTIONS", exceptions)
    assert policy_config.main(["--check"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1
    assert "EXCEPTIONS names prod-image-from-ops, which the pack does not have" in error


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
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{s}.json" for s in CONFIGURED)
    assert prod.read_text() == expected_files()["prod"]
    assert policy_config.main(["--check"]) == 0


def test_the_stack_account_is_generated_for_the_model_package_check() -> None:
    for stack in CONFIGURED:
        settings = load_stack_settings(stack)
        config = build_policy_config(stack, settings, project="promote-code")
        assert config["prod-images-from-ops"]["stackAccountId"] == settings.accounts.for_stack(
            stack
        )
