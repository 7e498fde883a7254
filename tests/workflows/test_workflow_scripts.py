"""The shell steps of the workflows, run for real against a fake `pulumi` and a scratch git repo."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import botocore.session
import pytest

from offline.plan.capture import StackPlan

from .support import REPO_ROOT, workflow_paths

SCRIPTS = REPO_ROOT / ".github" / "scripts"
HEAD, BASE, STAGING, DEV = ("a" * 40, "b" * 40, "c" * 40, "d" * 40)

FAKE_PULUMI = """#!/usr/bin/env bash
# Answers `pulumi stack output --stack <s> --json` from $FAKE_OUTPUTS/<s>.json.
stack=""
while [[ $# -gt 0 ]]; do
  case "$1" in --stack) stack="$2"; shift 2 ;; *) shift ;; esac
done
cat "$FAKE_OUTPUTS/$stack.json" 2>/dev/null || echo '{}'
"""


def run_script(
    name: str, tmp_path: Path, env: Mapping[str, str], cwd: Path | None = None
) -> tuple[subprocess.CompletedProcess[str], dict[str, str]]:
    output = tmp_path / "github_output"
    output.write_text("")
    result = subprocess.run(
        ["bash", str(SCRIPTS / name)],
        capture_output=True,
        text=True,
        cwd=cwd or tmp_path,
        env={**os.environ, **env, "GITHUB_OUTPUT": str(output)},
        check=False,
        timeout=60,
    )
    outputs = dict(line.split("=", 1) for line in output.read_text().splitlines() if "=" in line)
    return result, outputs


@pytest.fixture
def fake_pulumi(tmp_path: Path) -> dict[str, str]:
    """Environment with a fake `pulumi` first on PATH; write stack outputs with `deployed()`."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    pulumi = bin_dir / "pulumi"
    pulumi.write_text(FAKE_PULUMI)
    pulumi.chmod(0o755)
    outputs = tmp_path / "outputs"
    outputs.mkdir()
    return {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "FAKE_OUTPUTS": str(outputs)}


def deployed(env: Mapping[str, str], stack: str, commit: str, verified: str | None = None) -> None:
    path = Path(env["FAKE_OUTPUTS"]) / f"{stack}.json"
    outputs: dict[str, object] = {"deployed_commit": commit, "bucket": "x"}
    if verified is not None:
        outputs["verification"] = {"commit": verified}
    path.write_text(json.dumps(outputs))


def test_the_workflows_run_exactly_these_scripts() -> None:
    used = {
        Path(word).name
        for path in workflow_paths()
        for word in path.read_text().split()
        if word.startswith(".github/scripts/")
    }
    assert used == {p.name for p in SCRIPTS.glob("*.sh")}
    assert used == {"preview-image-tag.sh", "check-staging-runs.sh", "resolve-promoted-commit.sh"}


def workflow_and_script_text() -> str:
    paths = [*workflow_paths(), *sorted(SCRIPTS.glob("*.sh"))]
    return "\n".join(path.read_text() for path in paths)


def test_the_stack_outputs_read_by_ci_exist(stack_plans: dict[str, StackPlan]) -> None:
    text = workflow_and_script_text()
    read = set(re.findall(r"pulumi stack output ([a-z_]+)", text))
    read |= set(re.findall(r"\.get\(\"([a-z_]+)\"\)", text))
    # `commit` is read inside the `verification` output (its record), not as an output.
    read -= {"commit"}
    assert read == {"deployed_commit", "verification", "data_bucket_name", "pipeline_name"}
    # Environment stacks export the same keys (no per-stack code), so staging speaks for all.
    assert read <= set(stack_plans["staging"].outputs)


def test_every_python_module_ci_calls_takes_the_flags_it_is_given() -> None:
    text = workflow_and_script_text()
    # Each `python -m <module>` call with its continuation lines; `$(...)` values dropped.
    text = re.sub(r"\$\([^)]*\)", "", text.replace("\\\n", " "))
    calls = re.findall(r"python -m ([\w.]+)([^\n]*)", text)
    assert sorted({module for module, _ in calls}) == [
        "infra.preflight",
        "ml.data.upload",
        "ml.verify",
    ]
    for module, arguments in calls:
        help_text = subprocess.run(
            [sys.executable, "-m", module, "--help"],
            capture_output=True,
            text=True,
            cwd=REPO_ROOT,
            check=True,
            timeout=120,
        ).stdout
        flags = re.findall(r"--[\w-]+", arguments)
        assert flags
        for flag in flags:
            assert flag in help_text, (module, flag)


def test_the_prod_pipeline_start_is_a_valid_aws_cli_call() -> None:
    text = workflow_and_script_text()
    match = re.search(r"aws sagemaker start-pipeline-execution\s+\\?\s*--pipeline-name", text)
    assert match, "prod no longer starts the training pipeline"
    operation = (
        botocore.session.get_session()
        .get_service_model("sagemaker")
        .operation_model("StartPipelineExecution")
    )
    # The CLI fills the idempotency token itself; the pipeline name is all it needs.
    assert set(operation.input_shape.required_members) - {"ClientRequestToken"} == {"PipelineName"}


# preview-image-tag.sh -----------------------------------------------------------


def preview_tag(stack: str, tmp_path: Path, env: Mapping[str, str]) -> tuple[int, str, str]:
    result, outputs = run_script(
        "preview-image-tag.sh",
        tmp_path,
        {**env, "STACK": stack, "HEAD_SHA": HEAD, "BASE_SHA": BASE},
    )
    return result.returncode, outputs.get("tag", ""), result.stdout + result.stderr


def test_ops_previews_with_the_head_commit(tmp_path: Path, fake_pulumi: dict[str, str]) -> None:
    assert preview_tag("ops", tmp_path, fake_pulumi)[:2] == (0, HEAD)


@pytest.mark.parametrize("stack", ["dev", "staging"])
def test_an_environment_previews_with_the_commit_it_runs(
    stack: str, tmp_path: Path, fake_pulumi: dict[str, str]
) -> None:
    deployed(fake_pulumi, stack, DEV)
    assert preview_tag(stack, tmp_path, fake_pulumi)[:2] == (0, DEV)


def test_a_never_deployed_environment_previews_with_the_base_commit(
    tmp_path: Path, fake_pulumi: dict[str, str]
) -> None:
    status, tag, log = preview_tag("dev", tmp_path, fake_pulumi)
    assert (status, tag) == (0, BASE)
    assert "no deployed_commit yet" in log


def test_prod_previews_with_the_commit_staging_runs(
    tmp_path: Path, fake_pulumi: dict[str, str]
) -> None:
    deployed(fake_pulumi, "staging", STAGING)
    deployed(fake_pulumi, "prod", DEV)
    assert preview_tag("prod", tmp_path, fake_pulumi)[:2] == (0, STAGING)


def test_prod_preview_stops_when_staging_was_never_deployed(
    tmp_path: Path, fake_pulumi: dict[str, str]
) -> None:
    status, tag, log = preview_tag("prod", tmp_path, fake_pulumi)
    assert (status, tag) == (1, "")
    assert "git tag -f staging" in log


def test_preview_tag_must_be_a_full_commit(tmp_path: Path, fake_pulumi: dict[str, str]) -> None:
    deployed(fake_pulumi, "staging", "latest")
    status, _, log = preview_tag("staging", tmp_path, fake_pulumi)
    assert status == 1
    assert "full commit SHA" in log


# check-staging-runs.sh ----------------------------------------------------------


def test_prod_proceeds_when_staging_runs_the_commit(
    tmp_path: Path, fake_pulumi: dict[str, str]
) -> None:
    deployed(fake_pulumi, "staging", STAGING, verified=STAGING)
    result, _ = run_script("check-staging-runs.sh", tmp_path, {**fake_pulumi, "COMMIT": STAGING})
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("verified", [None, HEAD])
def test_prod_refuses_a_commit_staging_runs_but_did_not_prove(
    tmp_path: Path, fake_pulumi: dict[str, str], verified: str | None
) -> None:
    deployed(fake_pulumi, "staging", STAGING, verified=verified)
    result, _ = run_script("check-staging-runs.sh", tmp_path, {**fake_pulumi, "COMMIT": STAGING})
    assert result.returncode == 1
    assert f"staging runs {STAGING} but has not proven it" in result.stdout


def test_prod_refuses_a_commit_staging_does_not_run(
    tmp_path: Path, fake_pulumi: dict[str, str]
) -> None:
    deployed(fake_pulumi, "staging", STAGING)
    result, _ = run_script("check-staging-runs.sh", tmp_path, {**fake_pulumi, "COMMIT": HEAD})
    assert result.returncode == 1
    assert f"staging runs {STAGING}, the prod tag points at {HEAD}" in result.stdout


def test_prod_refuses_when_staging_was_never_deployed(
    tmp_path: Path, fake_pulumi: dict[str, str]
) -> None:
    result, _ = run_script("check-staging-runs.sh", tmp_path, {**fake_pulumi, "COMMIT": HEAD})
    assert result.returncode == 1
    assert "staging has never been deployed" in result.stdout


# resolve-promoted-commit.sh -----------------------------------------------------


def git(repo: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return result.stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A clone-like repository: two commits on origin/main, one on an unmerged branch."""
    path = tmp_path / "repo"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    for message in ("first", "second"):
        git(path, "commit", "-q", "--allow-empty", "-m", message)
    git(path, "update-ref", "refs/remotes/origin/main", "HEAD")
    git(path, "checkout", "-q", "-b", "unmerged")
    git(path, "commit", "-q", "--allow-empty", "-m", "never reviewed")
    return path


def test_a_tag_on_main_resolves_to_its_commit(tmp_path: Path, repo: Path) -> None:
    first = git(repo, "rev-parse", "main~1")
    git(repo, "checkout", "-q", "--detach", first)
    result, outputs = run_script(
        "resolve-promoted-commit.sh", tmp_path, {"GITHUB_REF_NAME": "staging"}, cwd=repo
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert outputs == {"sha": first}


def test_a_tag_off_main_is_refused(tmp_path: Path, repo: Path) -> None:
    result, outputs = run_script(
        "resolve-promoted-commit.sh", tmp_path, {"GITHUB_REF_NAME": "prod"}, cwd=repo
    )
    assert result.returncode == 1
    assert "which is not on main" in result.stdout
    assert outputs == {}
