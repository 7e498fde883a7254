"""Settings are validated before any resource is declared, with messages that say what to fix."""

from __future__ import annotations

import copy
import subprocess
import sys
from typing import Any

import pytest

from infra.settings import (
    IDENTITY_STACK,
    STACKS,
    EnvironmentSettings,
    IdentitySettings,
    OpsSettings,
    SettingsError,
    load_settings,
)
from infra.stack_files import read_stack_config


def load(stack: str, config: dict[str, Any]) -> object:
    return load_settings(
        stack,
        config.get("promote:settings"),
        aws_region=config.get("aws:region"),
        allowed_account_ids=config.get("aws:allowedAccountIds"),
    )


@pytest.mark.parametrize("stack", [*STACKS, IDENTITY_STACK])
def test_every_committed_stack_file_loads(stack: str) -> None:
    settings = load(stack, read_stack_config(stack))
    expected = {"ops": OpsSettings, IDENTITY_STACK: IdentitySettings}.get(
        stack, EnvironmentSettings
    )
    assert isinstance(settings, expected)


def test_committed_files_differ_only_where_environments_should() -> None:
    prod = load("prod", read_stack_config("prod"))
    dev = load("dev", read_stack_config("dev"))
    assert isinstance(prod, EnvironmentSettings) and isinstance(dev, EnvironmentSettings)
    assert prod.retraining.enabled and not dev.retraining.enabled
    assert dev.studio.enabled and not prod.studio.enabled
    assert prod.promotion.source_stack == "organization/promote-code/staging"


def broken(stack: str, path: str, value: Any) -> dict[str, Any]:
    config = copy.deepcopy(read_stack_config(stack))
    *parents, last = path.split(".")
    node = config["promote:settings"]
    for part in parents:
        node = node.setdefault(part, {})
    if value is DELETE:
        del node[last]
    else:
        node[last] = value
    return config


DELETE = object()


@pytest.mark.parametrize(
    ("stack", "path", "value", "expected"),
    [
        (
            "prod",
            "accounts.ops",
            "1234",
            "Pulumi.prod.yaml: promote:settings.accounts.ops must be exactly 12 digits, got '1234'",
        ),
        (
            "dev",
            "accounts.staging",
            12345678901,
            "Pulumi.dev.yaml: promote:settings.accounts.staging must be a quoted 12-digit string, "
            "got the number 12345678901",
        ),
        ("dev", "accounts.staging", "1234567890ab", "must be exactly 12 digits"),
        (
            "staging",
            "accounts.prod",
            "333333333333",
            "account 333333333333 is used for both staging and prod",
        ),
        ("ops", "github.repository", "promote-code", "repository must be 'owner/name'"),
        ("ops", "github.repository", "my-org/*", "repository must be 'owner/name'"),
        ("dev", "retraining.enabled", True, "does not allow scheduled retraining"),
        ("dev", "colour", "blue", "promote:settings.colour is not a known setting"),
        ("dev", "region", DELETE, "promote:settings.region is required"),
        ("dev", "network.enabled", False, "studio.enabled needs network.enabled: true"),
        ("prod", "endpoint.rollout.canary_percent", 60, "canary_percent"),
        (
            "dev",
            "pipeline.cache_expire_after",
            "30 days",
            "cache_expire_after must be an ISO 8601 duration such as P30D, got '30 days'",
        ),
        ("dev", "pipeline.training_instance_type", "g4dn", "must look like ml.m5.large"),
        (
            "dev",
            "pipeline.accuracy_threshold",
            0.7,
            "promote:settings.pipeline accuracy_threshold was replaced by metric_threshold "
            "(with approval_metric: accuracy",
        ),
        ("dev", "pipeline.epochs", 20, "epochs was replaced by trainer.c"),
        ("dev", "pipeline.approval_metric", "auc", "'macro_f1', 'accuracy' or 'weighted_f1'"),
        ("dev", "pipeline.trainer.hash_bits", 30, "pipeline.trainer.hash_bits"),
        ("dev", "pipeline.conflicts", "first", "'most-frequent', 'drop' or 'keep-all'"),
        ("prod", "endpoint.rollout.linear_step_percent", 5, "linear_step_percent"),
        ("prod", "endpoint.instance_count", 1, "rollout.mode canary shifts part of the traffic"),
        ("staging", "endpoint.rollout", {"mode": "linear"}, "needs instance_count >= 2"),
        ("identity", "access.dev", {"role_arn": "admin"}, "role_arn must be an IAM role ARN"),
        ("identity", "state", {"bucket": "*"}, "bucket must be an S3 bucket name"),
        (
            "prod",
            "promotion.source_stack",
            "organization/promote-code/dev",
            "must be organization/",
        ),
        ("staging", "promotion.source_stack", "organization/promote-code/prod", "the stack before"),
        (
            "dev",
            "promotion.source_stack",
            "organization/promote-code/ops",
            "first in the promotion",
        ),
    ],
)
def test_bad_settings_name_file_key_and_fix(
    stack: str, path: str, value: Any, expected: str
) -> None:
    with pytest.raises(SettingsError) as caught:
        load(stack, broken(stack, path, value))
    assert expected in str(caught.value)
    assert str(caught.value).startswith(f"Pulumi.{stack}.yaml:")


def test_unknown_stack_names_the_real_ones() -> None:
    with pytest.raises(SettingsError, match=r"unknown stack 'qa'.*ops, dev, staging, prod"):
        load("qa", read_stack_config("dev"))


def test_missing_aws_region_says_what_to_add() -> None:
    config = read_stack_config("staging")
    del config["aws:region"]
    with pytest.raises(SettingsError, match=r"aws:region is missing; add `aws:region: eu-west-1`"):
        load("staging", config)


def test_prod_endpoint_needs_the_policy_minimum_of_instances() -> None:
    config = broken("prod", "endpoint.instance_count", 1)
    config["promote:settings"]["endpoint"]["rollout"] = {"mode": "all_at_once"}
    with pytest.raises(SettingsError, match="instance_count must be at least 2 in prod"):
        load("prod", config)


def test_allowed_account_ids_must_be_this_stacks_account() -> None:
    config = read_stack_config("prod")
    config["aws:allowedAccountIds"] = ["333333333333"]
    with pytest.raises(SettingsError, match=r'aws:allowedAccountIds must be \["444444444444"\]'):
        load("prod", config)


def test_every_problem_is_reported_at_once() -> None:
    config = broken("dev", "accounts.ops", "1")
    config["promote:settings"]["typo"] = 1
    with pytest.raises(SettingsError) as caught:
        load("dev", config)
    message = str(caught.value)
    assert "accounts.ops" in message and "typo" in message


def test_settings_error_exits_non_zero_with_message_only(tmp_path: Any) -> None:
    code = (
        "import sys; from unittest import mock\n"
        "from offline import cli; from offline.plan import harness\n"
        "cfg = harness.read_stack_config('dev'); cfg['promote:settings']['accounts']['ops'] = '1'\n"
        "with mock.patch.object(harness, 'read_stack_config', return_value=cfg):\n"
        "    sys.exit(cli.main(['plan', '--stack', 'dev']))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert result.returncode == 2
    assert (
        "Pulumi.dev.yaml: promote:settings.accounts.ops must be exactly 12 digits" in result.stderr
    )
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        ("retraining.schedule_expression", "cron(garbage)", "cron(...) needs 6 fields"),
        ("retraining.schedule_expression", "cron(0 3 * * SUN *)", "? in exactly one"),
        ("retraining.schedule_expression", "rate(-5 minutes)", "rate(<positive whole number>"),
        ("retraining.timezone", "Mars/Olympus", "must be an IANA time zone"),
        ("network.cidr", "999.999.999.999/16", "must be an IPv4 network block"),
        ("endpoint.instance_count", "3", "endpoint.instance_count Input should be a valid integer"),
        ("endpoint.instance_count", 2.0, "endpoint.instance_count Input should be a valid integer"),
        ("retraining.enabled", "yes", "retraining.enabled Input should be a valid boolean"),
        ("region", "x" * 200_000, "(200002 characters)"),
    ],
)
def test_inputs_that_used_to_pass_or_crash_are_one_clear_error(
    path: str, value: Any, expected: str
) -> None:
    """Issue 11: each was accepted (or raised a traceback) before strict, complete checks."""
    with pytest.raises(SettingsError) as caught:
        load("prod", broken("prod", path, value))
    message = str(caught.value)
    assert message.startswith("Pulumi.prod.yaml: promote:settings")
    assert expected in message
    assert len(message) < 1000


def test_good_schedules_pass() -> None:
    for expression in (
        "cron(0 3 ? * SUN *)",
        "rate(1 day)",
        "rate(12 hours)",
        "at(2027-01-01T03:00:00)",
    ):
        load("prod", broken("prod", "retraining.schedule_expression", expression))


def test_an_unquoted_account_id_never_suggests_another_account() -> None:
    # YAML 1.1 reads an unquoted 044444444444 as octal.
    config = broken("prod", "accounts.prod", 0o44444444444)
    with pytest.raises(SettingsError) as caught:
        load("prod", config)
    message = str(caught.value)
    assert "in quotes exactly as AWS shows it" in message
    assert '"004920765540"' not in message and "044444444444" not in message


def test_allowed_account_ids_as_a_number_is_an_error_not_a_crash() -> None:
    config = read_stack_config("prod")
    config["aws:allowedAccountIds"] = 444444444444
    with pytest.raises(SettingsError, match=r'aws:allowedAccountIds must be \["444444444444"\]'):
        load("prod", config)


def test_a_misspelt_promote_key_is_refused() -> None:
    from infra.stack_files import settings_of  # noqa: PLC0415

    config = read_stack_config("prod")
    config["promote:setings"] = config["promote:settings"]
    with pytest.raises(SettingsError, match="promote:setings is not a setting of this project"):
        settings_of("prod", config)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("- a\n- b\n", "has no `config:` mapping"),
        ("42\n", "has no `config:` mapping"),
        ("config:\n  aws:region: eu-west-1\n  aws:region: us-east-1\n", "written twice"),
    ],
)
def test_a_malformed_stack_file_is_one_line(tmp_path: Any, text: str, expected: str) -> None:
    from infra.stack_files import read_stack_config as read  # noqa: PLC0415

    (tmp_path / "Pulumi.prod.yaml").write_text(text)
    with pytest.raises(SettingsError, match=expected):
        read("prod", tmp_path)
