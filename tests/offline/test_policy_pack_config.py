"""The `--policy-pack-config` file as the runner reads it: engine reconciliation, and refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from offline.policy.config import (
    AnalyzerInfo,
    EnforcementLevel,
    PolicyConfig,
    PolicyInfo,
    load_policy_config,
    reconcile_policy_config,
)
from offline.policy.errors import PolicyConfigError

SCHEMA = {"properties": {"limit": {"type": "integer", "default": 3}}, "required": ["limit"]}


def _info(*policies: PolicyInfo) -> AnalyzerInfo:
    return AnalyzerInfo("pack", "0.0.1", policies, {})


def _rule(name: str, schema: dict[str, object] | None = None) -> PolicyInfo:
    return PolicyInfo(name, "", EnforcementLevel.MANDATORY, schema)


def test_reconcile_applies_defaults_all_and_per_policy_levels() -> None:
    info = _info(_rule("a", SCHEMA), _rule("b"))
    result = reconcile_policy_config(
        info, {"all": "advisory", "b": {"enforcementLevel": "disabled"}}
    )
    assert result["a"] == PolicyConfig(EnforcementLevel.ADVISORY, {"limit": 3})
    assert result["b"].enforcement_level is EnforcementLevel.DISABLED
    assert reconcile_policy_config(info, {"a": {"limit": 5}})["a"].properties == {"limit": 5}
    with pytest.raises(PolicyConfigError, match="a: limit") as raised:
        reconcile_policy_config(info, {"a": {"limit": "five"}, "b": {"x": 1}})
    assert "\n" not in str(raised.value)


# Rules of the real matrix: s3-bucket-hardening is mandatory everywhere,
# prod-images-from-ops only in staging and prod.
MATRIX_RULES = _info(_rule("s3-bucket-hardening"), _rule("prod-images-from-ops"))


@pytest.mark.parametrize(
    ("stack", "config", "lowered"),
    [
        ("prod", {"all": "disabled"}, ["s3-bucket-hardening", "prod-images-from-ops"]),
        ("prod", {"prod-images-from-ops": "advisory"}, ["prod-images-from-ops"]),
        ("dev", {"all": "advisory"}, ["s3-bucket-hardening"]),
        ("staging", {"s3-bucket-hardening": {"enforcementLevel": "disabled"}}, ["s3-bucket"]),
    ],
)
def test_a_config_that_lowers_a_mandatory_rule_is_refused(
    stack: str, config: dict[str, object], lowered: list[str]
) -> None:
    with pytest.raises(PolicyConfigError, match=f"for {stack} lowers rules") as raised:
        reconcile_policy_config(MATRIX_RULES, config, stack=stack)
    message = str(raised.value)
    assert all(rule in message for rule in lowered), message
    assert "policies/enforcement.py" in message and "\n" not in message
    if stack == "dev":
        assert "prod-images-from-ops" not in message  # advisory in dev by the matrix


@pytest.mark.parametrize(
    ("stack", "config"),
    [
        ("dev", {"prod-images-from-ops": "advisory"}),
        (
            "prod",
            {
                "all": "disabled",
                "s3-bucket-hardening": "mandatory",
                "prod-images-from-ops": "remediate",
            },
        ),
    ],
)
def test_what_the_matrix_allows_is_accepted(stack: str, config: dict[str, object]) -> None:
    reconciled = reconcile_policy_config(MATRIX_RULES, config, stack=stack)
    assert reconciled["s3-bucket-hardening"].enforcement_level is EnforcementLevel.MANDATORY
    assert reconciled["prod-images-from-ops"].enforcement_level is not EnforcementLevel.DISABLED


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, r"prod\.json is missing; run `uv run python -m infra\.policy_config --write`"),
        ('{"all": ', r"prod\.json: not valid JSON \(line 1, column 9"),
        ('["mandatory"]', r"prod\.json: a policy pack config is a JSON object .* got list"),
        ("directory", r"prod\.json cannot be read"),
    ],
)
def test_a_broken_config_file_is_one_line_naming_it(
    tmp_path: Path, content: str | None, expected: str
) -> None:
    path = tmp_path / "prod.json"
    if content == "directory":
        path.mkdir()
    elif content is not None:
        path.write_text(content)
    with pytest.raises(PolicyConfigError, match=expected) as raised:
        load_policy_config("prod", tmp_path)
    assert "\n" not in str(raised.value)
    assert raised.value.exit_code == 2
