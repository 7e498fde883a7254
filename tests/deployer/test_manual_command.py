"""`python -m ml.deployer.manual`: the real stack's outputs by default, an offline plan on request.

The default path runs `pulumi stack output --json --stack <s>` as a process;
here a stand-in `pulumi` executable on PATH answers like the CLI does.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from ml.deployer import manual
from ml.deployer.config import Env
from tests.deployer.support import ENDPOINT, REGION, Registry, deployer_config

UNKNOWN = manual.OFFLINE_UNKNOWN


def write_plan(directory: Path, stack: str, outputs: dict[str, object]) -> Path:
    path = directory / f"{stack}.json"
    document = {"project": "promote-code", "stack": stack, "outputs": outputs, "resources": []}
    path.write_text(json.dumps(document))
    return path


def fake_pulumi(
    directory: Path, monkeypatch: pytest.MonkeyPatch, stdout: str, code: int = 0
) -> Path:
    """A `pulumi` on PATH that prints `stdout` (or fails) and records its arguments."""
    bin_dir = directory / "bin"
    bin_dir.mkdir()
    script = bin_dir / "pulumi"
    (directory / "out.txt").write_text(stdout)
    script.write_text(
        "#!/bin/sh\n"
        f'echo "$@" > {directory}/args.txt\n'
        f"cat {directory}/out.txt\n"
        + (f"echo \"error: no stack named 'prod' found\" >&2\nexit {code}\n" if code else "")
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return directory / "args.txt"


def printed_result(out: str) -> dict[str, Any]:
    """The result the command prints last (indented JSON, after the one-line logs)."""
    result: dict[str, Any] = json.loads(out[out.index('{\n  "action"') :])
    return result


def outputs(**changes: Any) -> dict[str, Any]:
    return {"deployer_environment": deployer_config().to_env(), "region": REGION, **changes}


def test_reads_the_real_stack_outputs_by_default(
    registry: Registry,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    registry.group()
    registry.approve(registry.register())
    args = fake_pulumi(tmp_path, monkeypatch, json.dumps(outputs()))

    code = manual.main(["--stack", "dev", "--cwd", str(tmp_path), "--endpoint-url", registry.url])

    assert code == 0, capsys.readouterr().err
    assert args.read_text().split() == ["stack", "output", "--json", "--stack", "dev"]
    assert printed_result(capsys.readouterr().out)["action"] == "created"


def test_deploys_latest_from_an_offline_plan_then_does_nothing_when_run_again(
    registry: Registry, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    registry.group()
    first, second = registry.register(), registry.register()
    registry.approve(first)
    registry.approve(second)
    plan = write_plan(tmp_path, "dev", outputs())
    argv = ["--stack", "dev", "--offline-plan", str(plan), "--endpoint-url", registry.url]

    assert manual.main(argv) == 0
    first_run = printed_result(capsys.readouterr().out)
    assert manual.main(argv) == 0
    second_run = printed_result(capsys.readouterr().out)

    assert (first_run["action"], first_run["package_version"]) == ("created", 2)
    assert second_run["action"] == "noop"
    endpoint = registry.sagemaker.describe_endpoint(EndpointName=ENDPOINT)
    assert endpoint["EndpointConfigName"] == first_run["endpoint_config_name"]


def test_given_version_is_deployed_even_if_not_the_latest(
    registry: Registry, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    registry.group()
    first, second = registry.register(), registry.register()
    registry.approve(first)
    registry.approve(second)
    plan = write_plan(tmp_path, "dev", outputs())
    argv = ["--stack", "dev", "--offline-plan", str(plan), "--endpoint-url", registry.url]

    assert manual.main([*argv, "--version", "1"]) == 0
    capsys.readouterr()
    assert manual.main([*argv, "--version", "9"]) == manual.EXIT_OPERATOR
    assert capsys.readouterr().err.strip().endswith("has no version 9")

    endpoint = registry.sagemaker.describe_endpoint(EndpointName=ENDPOINT)
    assert endpoint["EndpointConfigName"].startswith(f"{ENDPOINT}-v1-")


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def test_an_offline_plan_needs_a_local_endpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = write_plan(tmp_path, "prod", outputs())
    assert manual.main(["--stack", "prod", "--offline-plan", str(plan)]) == manual.EXIT_USAGE
    assert "--endpoint-url" in one_line(capsys.readouterr().err)


def test_missing_pulumi_cli_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert manual.main(["--stack", "prod"]) == manual.EXIT_USAGE
    line = one_line(capsys.readouterr().err)
    assert "pulumi CLI is not on PATH" in line
    assert "--offline-plan" in line


def test_a_stack_pulumi_cannot_read_is_one_line_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_pulumi(tmp_path, monkeypatch, "", code=255)
    assert manual.main(["--stack", "prod", "--cwd", str(tmp_path)]) == manual.EXIT_USAGE
    line = one_line(capsys.readouterr().err)
    assert "pulumi stack output --json --stack prod" in line
    assert "no stack named 'prod' found" in line
    assert "pulumi login" in line


def test_a_missing_output_names_the_stack_the_output_and_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_pulumi(tmp_path, monkeypatch, json.dumps({"region": REGION}))
    assert manual.main(["--stack", "prod", "--cwd", str(tmp_path)]) == manual.EXIT_USAGE
    line = one_line(capsys.readouterr().err)
    assert "stack prod has no output deployer_environment" in line
    assert "pulumi up --stack prod" in line
    assert "environment variable" not in line


def test_a_missing_value_in_the_output_names_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = deployer_config().to_env()
    del env[Env.EXECUTION_ROLE_ARN]
    plan = write_plan(tmp_path, "dev", outputs(deployer_environment=env))
    argv = ["--stack", "dev", "--offline-plan", str(plan), "--endpoint-url", "http://127.0.0.1:9"]
    assert manual.main(argv) == manual.EXIT_USAGE
    line = one_line(capsys.readouterr().err)
    assert f"lacks {Env.EXECUTION_ROLE_ARN}" in line
    assert "--execution-role-arn" in line
    assert "environment variable" not in line


def test_values_unknown_in_the_plan_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = {**deployer_config().to_env(), Env.DATA_CAPTURE_S3_URI: UNKNOWN}
    plan = write_plan(tmp_path, "dev", outputs(deployer_environment=env))
    argv = ["--stack", "dev", "--offline-plan", str(plan), "--endpoint-url", "http://127.0.0.1:9"]
    assert manual.main(argv) == manual.EXIT_USAGE
    line = one_line(capsys.readouterr().err)
    assert Env.DATA_CAPTURE_S3_URI in line
    assert "--data-capture-s3-uri" in line


def test_an_unreachable_endpoint_means_retry_later(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    plan = write_plan(tmp_path, "dev", outputs())
    argv = ["--stack", "dev", "--offline-plan", str(plan), "--endpoint-url", "http://127.0.0.1:9"]
    assert manual.main(argv) == manual.EXIT_RETRY
    assert one_line(capsys.readouterr().err).startswith("retry later:")


def test_a_busy_endpoint_means_retry_later(
    registry: Registry,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    registry.group()
    registry.approve(registry.register())
    plan = write_plan(tmp_path, "dev", outputs())
    argv = ["--stack", "dev", "--offline-plan", str(plan), "--endpoint-url", registry.url]
    assert manual.main(argv) == 0
    registry.approve(registry.register())
    real = manual.deploy_package

    def busy(sagemaker: Any, *args: Any, **kwargs: Any) -> Any:
        class Updating:
            def __getattr__(self, name: str) -> Any:
                return getattr(sagemaker, name)

            def describe_endpoint(self, **kw: Any) -> dict[str, Any]:
                return {**sagemaker.describe_endpoint(**kw), "EndpointStatus": "Updating"}

        return real(Updating(), *args, **kwargs)

    monkeypatch.setattr(manual, "deploy_package", busy)
    capsys.readouterr()
    assert manual.main(argv) == manual.EXIT_RETRY
    assert "is Updating" in one_line(capsys.readouterr().err)
