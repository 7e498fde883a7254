"""infra.preflight: a self-managed backend needs each stack file's secrets provider."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from infra import preflight
from infra.context import REPO_ROOT
from infra.settings import STACKS

REAL_KEY = "AQICAHhdT0w4Xbg+ZMOdVYmSs3k1Yl7Yv3aH6D3pA=="


@pytest.fixture
def root(tmp_path: Path) -> Path:
    for stack in STACKS:
        shutil.copy(REPO_ROOT / f"Pulumi.{stack}.yaml", tmp_path)
    return tmp_path


def set_key(root: Path, stack: str, line: str | None) -> None:
    path = root / f"Pulumi.{stack}.yaml"
    kept = [x for x in path.read_text().splitlines() if not x.startswith("encryptedkey:")]
    path.write_text("\n".join(([line] if line else []) + kept) + "\n")


def test_the_committed_stack_files_carry_a_marked_example_provider() -> None:
    for stack in STACKS:
        problem = preflight.stack_file_problem(REPO_ROOT / f"Pulumi.{stack}.yaml", stack)
        assert problem is not None and "still the template's example" in problem, stack


def test_pulumi_cloud_needs_nothing(root: Path) -> None:
    for stack in STACKS:
        set_key(root, stack, None)
    assert preflight.check(STACKS, "https://api.pulumi.com", root) == []
    assert preflight.check(STACKS, None, root) == []


def test_a_self_managed_backend_with_real_keys_passes(root: Path) -> None:
    for stack in STACKS:
        set_key(root, stack, f"encryptedkey: {REAL_KEY}")
    assert preflight.check(STACKS, "s3://acme-state?region=eu-west-1", root) == []


def test_a_missing_key_is_one_line_with_the_fix(root: Path) -> None:
    for stack in STACKS:
        set_key(root, stack, f"encryptedkey: {REAL_KEY}")
    set_key(root, "prod", None)
    result = subprocess.run(
        [sys.executable, "-m", "infra.preflight", "--root", str(root)],
        env={"PULUMI_BACKEND_URL": "s3://acme-state", "PATH": "/usr/bin:/bin"},
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: Pulumi.prod.yaml: encryptedkey is missing")
    assert "pulumi stack change-secrets-provider --stack prod" in line
    assert "awskms://alias/promote-code-state?region=eu-west-1" in line


def test_a_passphrase_provider_is_refused(root: Path) -> None:
    path = root / "Pulumi.dev.yaml"
    path.write_text(
        path.read_text().replace("secretsprovider: awskms://", "secretsprovider: passphrase#")
    )
    (problem,) = preflight.check(["dev"], "s3://acme-state", root)
    assert "no awskms:// secretsprovider" in problem
