"""Every file a Dockerfile copies is inside the build context the .dockerignore allowlist keeps."""

from __future__ import annotations

import shlex

import pytest

from infra.context import IMAGE_NAMES, REPO_ROOT


def allowed_paths() -> list[str]:
    lines = (REPO_ROOT / ".dockerignore").read_text().splitlines()
    assert "*" in lines, ".dockerignore must start from an allowlist"
    return [line[1:].rstrip("/") for line in lines if line.startswith("!")]


def copied_sources(image: str) -> list[str]:
    sources: list[str] = []
    for line in (REPO_ROOT / "ml" / "images" / image / "Dockerfile").read_text().splitlines():
        if not line.startswith("COPY "):
            continue
        words = shlex.split(line)
        if not any(w.startswith("--from") for w in words):
            sources += [w for w in words[1:-1] if not w.startswith("--")]
    return sources


@pytest.mark.parametrize("image", IMAGE_NAMES)
def test_copied_files_exist_and_are_not_ignored(image: str) -> None:
    sources = copied_sources(image)
    assert sources, f"{image} copies nothing"
    allowed = allowed_paths()
    for source in sources:
        path = source.rstrip("/")
        assert (REPO_ROOT / path).exists(), f"{image}: COPY {source} does not exist"
        assert any(path == a or path.startswith(f"{a}/") for a in allowed), (
            f"{image}: COPY {source} is excluded by .dockerignore"
        )
