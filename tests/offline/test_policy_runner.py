"""The runner over the Analyzer protocol: one process for several stacks, failures in one line."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from offline.policy.config import EnforcementLevel, load_policy_config
from offline.policy.errors import PolicyConfigError, PolicyPackError
from offline.policy.runner import PolicyPackProcess, analyze_plans
from tests.policies.policy_helpers import (
    good_resources,
    one_resource_plan,
    plan_of,
    set_inputs,
    write_config,
    write_pack,
)


@pytest.fixture(scope="module")
def pack() -> Iterator[PolicyPackProcess]:
    with PolicyPackProcess(project="promote-code", timeout=600) as process:
        yield process


def test_one_process_serves_several_stacks(pack: PolicyPackProcess) -> None:
    port = pack.port
    for stack in ("dev", "prod", "dev"):
        pack.analyze(plan_of(stack, good_resources(stack)), load_policy_config(stack))
    assert pack.running
    assert pack.port == port


def test_analyze_plans_runs_each_stack_under_its_own_config() -> None:
    bad = set_inputs("deployer", imageUri="docker.io/library/python:3.11")
    plans = {stack: plan_of(stack, bad(good_resources(stack))) for stack in ("dev", "prod")}
    results = analyze_plans(plans)
    assert [v.enforcement_level for v in results["dev"]] == [EnforcementLevel.ADVISORY]
    images = [v for v in results["prod"] if v.policy == "prod-images-from-ops"]
    assert [v.enforcement_level for v in images] == [EnforcementLevel.MANDATORY]
    assert "other than ECR" in str(images[0])


def test_the_process_is_stopped_after_use_and_after_errors() -> None:
    with PolicyPackProcess(project="promote-code") as process:
        pid = process.process.pid
        assert pid is not None and process.running
    assert not process.running
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)  # the group is gone, not just its leader
    with pytest.raises(RuntimeError, match="boom"), PolicyPackProcess() as process:
        pid = process.process.pid
        raise RuntimeError("boom")
    assert pid is not None and not process.running
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)  # the group is gone, not just its leader


def test_a_pack_that_dies_mid_run_is_reported() -> None:
    with PolicyPackProcess() as process:
        pid = process.process.pid
        assert pid is not None
        os.killpg(pid, 9)
        for _ in range(500):
            if not process.running:
                break
            time.sleep(0.01)
        with pytest.raises(PolicyPackError, match="is not running") as raised:
            process.analyze(plan_of("prod", good_resources("prod")), load_policy_config("prod"))
    assert "exit code -9" in str(raised.value)


def test_a_validator_that_crashes_is_a_pack_error_naming_the_resource(tmp_path: Path) -> None:
    plan = one_resource_plan()
    write_config(tmp_path / "config", "prod", {"test-rule": "mandatory"})
    with pytest.raises(PolicyPackError) as raised:
        analyze_plans(
            {"prod": plan},
            pack_dir=write_pack(tmp_path / "pack", "crash"),
            config_dir=tmp_path / "config",
        )
    message = str(raised.value)
    assert not isinstance(raised.value, PolicyConfigError)
    assert raised.value.exit_code == 3
    assert f"failed Analyze of {plan.resources[0].urn}: UNKNOWN" in message
    assert "boom in the validator" in message and "\n" not in message


def test_a_config_error_names_the_stacks_file(tmp_path: Path) -> None:
    config = json.loads(json.dumps(load_policy_config("prod")))
    config["sagemaker-endpoint-min-instances"]["minInstanceCount"] = 0
    path = write_config(tmp_path, "prod", config)
    with pytest.raises(PolicyConfigError) as raised:
        analyze_plans({"prod": plan_of("prod", good_resources("prod"))}, config_dir=tmp_path)
    message = str(raised.value)
    assert message.startswith(f"{path}: invalid policy pack config: ")
    assert "minInstanceCount" in message and "\n" not in message
