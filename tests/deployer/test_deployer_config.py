"""Pure parts of the deployer: configuration from the environment, names, request builders."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ml.deployer import naming
from ml.deployer.config import DeployerConfig, DeployerConfigError, Env, RolloutConfig
from ml.deployer.requests import has_local_storage, plan_for
from tests.deployer.support import ENDPOINT, GROUP, deployer_config

ARN = f"arn:aws:sagemaker:eu-west-1:123456789012:model-package/{GROUP}/4"
REPO = Path(__file__).resolve().parents[2]


def test_the_lambda_image_code_imports_on_its_own(tmp_path: Path) -> None:
    # The deployer image copies only some of ml/: everything the handler imports must be in it.
    dockerfile = (REPO / "ml" / "images" / "deployer" / "Dockerfile").read_text()
    for line in dockerfile.splitlines():
        if not line.startswith("COPY "):
            continue
        for name in shlex.split(line)[1:-1]:
            if not name.startswith("ml/") or name.startswith("ml/images/"):
                continue
            source, target = REPO / name, tmp_path / name
            if source.is_dir():
                shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(source, target)
    code = (
        f"import sys; sys.path.insert(0, {str(tmp_path)!r}); import ml.deployer.handler as h; "
        f"assert h.__file__.startswith({str(tmp_path)!r}), h.__file__"
    )
    completed = subprocess.run(
        [sys.executable, "-I", "-c", code], capture_output=True, text=True, check=False
    )
    assert completed.returncode == 0, completed.stderr[-1500:]


def test_environment_round_trip() -> None:
    config = deployer_config(rollout=RolloutConfig(mode="linear", linear_step_percent=30))
    assert DeployerConfig.from_env(config.to_env()) == config


def test_missing_variable_names_the_variable() -> None:
    env = deployer_config().to_env()
    del env[Env.EXECUTION_ROLE_ARN]
    with pytest.raises(DeployerConfigError, match=Env.EXECUTION_ROLE_ARN):
        DeployerConfig.from_env(env)


@pytest.mark.parametrize(
    ("rollout", "message"),
    [
        ({"mode": "canary", "canary_percent": 60}, "canary_percent must be 1-50, got 60"),
        ({"mode": "linear", "linear_step_percent": 5}, "linear_step_percent must be 10-50"),
        ({"maximum_execution_timeout_seconds": 300}, "must be 600-28800, got 300"),
        ({"mode": "shadow"}, "mode must be one of canary, linear, all_at_once"),
        ({"mode": "canary", "bake": 1}, "unknown keys"),
    ],
)
def test_invalid_rollout_is_refused(rollout: dict[str, object], message: str) -> None:
    env = deployer_config().to_env() | {Env.ROLLOUT: json.dumps(rollout)}
    with pytest.raises(DeployerConfigError, match=message):
        DeployerConfig.from_env(env)


def test_invalid_values_are_refused_with_what_to_fix() -> None:
    env = deployer_config().to_env() | {
        Env.INSTANCE_COUNT: "two",
    }
    with pytest.raises(DeployerConfigError, match=f"{Env.INSTANCE_COUNT} must be an integer"):
        DeployerConfig.from_env(env)
    with pytest.raises(DeployerConfigError, match="s3:// URI"):
        deployer_config(data_capture_s3_uri="/tmp/capture")


def test_names_are_deterministic_and_change_with_content() -> None:
    config = deployer_config()
    first, again = plan_for(config, ARN, 4), plan_for(config, ARN, 4)
    bigger = plan_for(deployer_config(instance_count=3), ARN, 4)
    assert first == again
    assert first.endpoint_config_name.startswith(f"{ENDPOINT}-v4-")
    assert first.model_name == bigger.model_name  # same package and role
    assert first.endpoint_config_name != bigger.endpoint_config_name


def test_long_endpoint_names_still_fit_and_match_the_iam_pattern() -> None:
    endpoint = "a-really-long-endpoint-name-for-an-organisation-with-long-names"
    plan = plan_for(deployer_config(endpoint_name=endpoint), ARN, 12345)
    pattern = naming.resource_pattern(endpoint).removesuffix("*")
    for name in (plan.model_name, plan.endpoint_config_name):
        assert len(name) <= naming.MAX_NAME
        assert name.lower().startswith(pattern)
    other = plan_for(deployer_config(endpoint_name=endpoint + "2"), ARN, 12345)
    assert other.endpoint_config_name != plan.endpoint_config_name


@pytest.mark.parametrize(
    ("instance_type", "local"),
    [
        ("ml.m5.large", False),
        ("ml.c6i.xlarge", False),
        ("ml.m5d.large", True),
        ("ml.g4dn.xlarge", True),
        ("ml.r7gd.medium", True),
        ("ml.g5.xlarge", True),
    ],
)
def test_volume_key_only_for_instances_without_local_storage(
    instance_type: str, local: bool
) -> None:
    request = plan_for(deployer_config(instance_type=instance_type), ARN, 4).endpoint_config_request
    assert has_local_storage(instance_type) is local
    assert ("KmsKeyId" in request) is not local
    assert "KmsKeyId" in request["DataCaptureConfig"]  # captured data is always encrypted
