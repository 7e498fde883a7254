"""The layout's import contracts (pyproject `[tool.importlinter]`), checked with import-linter."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """Run import-linter over the packages below `root` with the repository's contracts."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [str(LINT_IMPORTS), str(REPO_ROOT / "pyproject.toml"), "--no-cache"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_the_tree_keeps_every_import_contract() -> None:
    result = lint_imports(REPO_ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 kept, 0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "broken"),
    [
        ("infra/leak.py", "import offline.plan.capture", "infra is not allowed to import offline"),
        ("ml/leak.py", "from offline import aws", "ml is not allowed to import offline"),
        ("ml/leak.py", "import infra.settings", "ml is not allowed to import infra"),
        ("policies/leak.py", "import ml.deployer", "policies is not allowed to import ml"),
    ],
)
def test_a_forbidden_import_breaks_a_contract(
    tmp_path: Path, module: str, line: str, broken: str
) -> None:
    for package in ("infra", "ml", "policies", "offline"):
        shutil.copytree(
            REPO_ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    (tmp_path / module).write_text(f"{line}\n")
    result = lint_imports(tmp_path)
    assert result.returncode == 1, result.stdout
    assert broken in result.stdout
