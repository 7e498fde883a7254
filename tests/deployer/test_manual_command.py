"""`python -m ml.deployer.manual`: settings from the offline plan, deployments against moto."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ml.deployer import manual
from ml.deployer.config import DeployerConfig, DeployerConfigError, Env
from offline.plan.capture import UNKNOWN, StackPlan
from tests.deployer.support import (
    CAPTURE_URI,
    ENDPOINT,
    GROUP,
    REGION,
    ROLE_ARN,
    Registry,
    deployer_config,
)

REPO_ROOT = Path(__file__).resolve().parents[2]


def write_plan(directory: Path, stack: str, outputs: dict[str, object]) -> None:
    StackPlan("promote-code", stack, (), outputs).write(directory)


def printed_result(out: str) -> dict[str, object]:
    """The result the command prints last (indented JSON, after the one-line logs)."""
    result: dict[str, object] = json.loads(out[out.index('{\n  "action"') :])
    return result


def test_plan_outputs_and_stack_settings_make_the_config() -> None:
    outputs = {
        "endpoint_name": ENDPOINT,
        "model_package_group_name": GROUP,
        "execution_role_arn": ROLE_ARN,
        "region": REGION,
    }
    env = manual.resolve_environment(
        outputs,
        manual.settings_environment("prod", REPO_ROOT),
        {Env.DATA_CAPTURE_S3_URI: CAPTURE_URI, Env.INSTANCE_TYPE: None},
    )
    config = DeployerConfig.from_env(env)
    # Pulumi.prod.yaml: two instances, canary 10 %.
    assert (config.instance_count, config.rollout.mode, config.rollout.canary_percent) == (
        2,
        "canary",
        10,
    )
    assert config.rollback_alarm_names == (
        f"{ENDPOINT}-invocation-5xx",
        f"{ENDPOINT}-model-latency",
    )
    assert config.data_capture_s3_uri == CAPTURE_URI


def test_recorded_lambda_environment_wins_over_everything_but_flags() -> None:
    recorded = deployer_config(instance_count=3).to_env()
    env = manual.resolve_environment(
        {"deployer_environment": recorded, "endpoint_name": "ignored"},
        {Env.INSTANCE_COUNT: "7"},
        {Env.INSTANCE_TYPE: "ml.c5.xlarge"},
    )
    config = DeployerConfig.from_env(env)
    assert (config.endpoint_name, config.instance_count) == (ENDPOINT, 3)
    assert config.instance_type == "ml.c5.xlarge"


def test_values_unknown_in_the_plan_are_refused() -> None:
    with pytest.raises(DeployerConfigError, match=Env.EXECUTION_ROLE_ARN):
        manual.resolve_environment(
            {"endpoint_name": ENDPOINT, "execution_role_arn": UNKNOWN}, {}, {}
        )


def test_missing_data_capture_destination_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_plan(
        tmp_path,
        "dev",
        {"endpoint_name": ENDPOINT, "model_package_group_name": GROUP, "region": REGION},
    )
    code = manual.main(
        ["--stack", "dev", "--plan-dir", str(tmp_path), "--execution-role-arn", ROLE_ARN]
    )
    assert code == manual.EXIT_USAGE
    assert Env.DATA_CAPTURE_S3_URI in capsys.readouterr().err


def test_deploys_latest_then_does_nothing_when_run_again(
    registry: Registry, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    registry.group()
    first, second = registry.register(), registry.register()
    registry.approve(first)
    registry.approve(second)
    write_plan(
        tmp_path,
        "dev",
        {"deployer_environment": deployer_config().to_env(), "region": REGION},
    )
    argv = ["--stack", "dev", "--plan-dir", str(tmp_path), "--endpoint-url", registry.url]

    assert manual.main(argv) == 0
    first_run = printed_result(capsys.readouterr().out)
    assert manual.main(argv) == 0
    second_run = printed_result(capsys.readouterr().out)

    assert (first_run["action"], first_run["package_version"]) == ("created", 2)
    assert second_run["action"] == "noop"
    endpoint = registry.sagemaker.describe_endpoint(EndpointName=ENDPOINT)
    assert endpoint["EndpointConfigName"] == first_run["endpoint_config_name"]


def test_given_version_is_deployed_even_if_not_the_latest(
    registry: Registry, tmp_path: Path
) -> None:
    registry.group()
    first, second = registry.register(), registry.register()
    registry.approve(first)
    registry.approve(second)
    write_plan(tmp_path, "dev", {"deployer_environment": deployer_config().to_env()})
    argv = [
        "--stack",
        "dev",
        "--plan-dir",
        str(tmp_path),
        "--endpoint-url",
        registry.url,
        "--region",
        REGION,
    ]

    assert manual.main([*argv, "--version", "1"]) == 0
    assert manual.main([*argv, "--version", "9"]) == manual.EXIT_OPERATOR

    endpoint = registry.sagemaker.describe_endpoint(EndpointName=ENDPOINT)
    assert endpoint["EndpointConfigName"].startswith(f"{ENDPOINT}-v1-")
