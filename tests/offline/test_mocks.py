"""The offline mocks answer like AWS and refuse to invent answers for unknown invokes."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pulumi
import pytest

from infra.program import resolve_image_tag
from offline.plan.capture import StackPlan
from offline.plan.mocks import OfflineMocks, UnmockedInvokeError


def test_unknown_invoke_raises_instead_of_returning_empty() -> None:
    mocks = OfflineMocks(account="222222222222", region="eu-west-1")
    call = pulumi.runtime.MockCallArgs(token="aws:s3/getBucket:getBucket", args={}, provider="")
    with pytest.raises(UnmockedInvokeError, match="aws:s3/getBucket:getBucket"):
        mocks.call(call)


def test_image_tag_comes_from_the_environment_first() -> None:
    assert resolve_image_tag({"PROMOTE_IMAGE_TAG": "abc123"}) == "abc123"


def test_image_tag_is_refused_for_a_dirty_tree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "f.txt").write_text("a")
    git = ["git", "-C", str(tmp_path), "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run([*git, "add", "f.txt"], check=True)
    subprocess.run([*git, "commit", "-qm", "x"], check=True)
    monkeypatch.setattr("infra.program.REPO_ROOT", tmp_path)
    head = subprocess.run(
        [*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert resolve_image_tag({}) == head
    (tmp_path / "f.txt").write_text("b")
    with pytest.raises(pulumi.RunError, match="uncommitted changes"):
        resolve_image_tag({})


@pytest.mark.parametrize("stack", ["identity", "ops", "dev", "staging", "prod"])
def test_a_plan_survives_its_json_form(stack_plans: dict[str, StackPlan], stack: str) -> None:
    # What lets the test session plan once and hand the plans to every xdist worker.
    plan = stack_plans[stack]
    assert StackPlan.from_json(plan.to_json()) == plan
