"""Supply-chain and token hygiene of the workflows: zizmor, pins, triggers, permissions."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from .support import (
    WORKFLOWS_DIR,
    JobRun,
    all_job_runs,
    github_variables,
    load_yaml,
    ops_settings,
    triggers_of,
    venv_tool,
    workflow_paths,
)

# `uses: owner/repo[/path]@<40 hex> # vX.Y.Z`: a commit cannot be moved like a tag,
# and the comment keeps the release readable for reviewers and Dependabot.
PINNED = re.compile(r"^[\w.-]+/[\w.-]+(/[\w./-]+)?@[0-9a-f]{40} # v\d+(\.\d+){0,2}$")
USES_LINE = re.compile(r"^\s*(?:-\s+)?uses:\s*(.+?)\s*$")
FORBIDDEN_TRIGGERS = {"pull_request_target", "workflow_run"}
EXPECTED_TRIGGERS = {
    "pull-request.yml": {"pull_request": {"branches": ["main"]}},
    "main.yml": {"push": {"branches": ["main"]}},
    "promote.yml": {"push": {"tags": ["staging", "prod"]}},
}


def zizmor(*targets: Path) -> list[dict[str, Any]]:
    """zizmor's findings as JSON; `--offline` keeps it off the network (no GitHub API)."""
    result = subprocess.run(
        [
            str(venv_tool("zizmor")),
            "--offline",
            "--no-progress",
            "--format=json",
            *map(str, targets),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    # Exit codes 10-14 mean "findings"; anything else non-zero is a failure to run.
    assert result.returncode == 0 or 10 <= result.returncode <= 14, result.stderr
    findings: list[dict[str, Any]] = json.loads(result.stdout or "[]")
    return findings


def describe(finding: dict[str, Any]) -> str:
    where = ""
    for location in finding.get("locations", [])[:1]:
        path = location.get("symbolic", {}).get("key", {}).get("Local", {}).get("verbatim_path")
        row = location.get("concrete", {}).get("location", {}).get("start_point", {}).get("row")
        where = f" at {path}:{row + 1 if isinstance(row, int) else '?'}"
    severity = finding["determinations"]["severity"]
    return f"{finding['ident']} ({severity}){where}: {finding['desc']}"


@pytest.fixture(scope="module")
def runs() -> list[JobRun]:
    return all_job_runs(github_variables(ops_settings()))


def test_zizmor_finds_nothing_high_offline() -> None:
    # `.github/` as a whole: the workflows and dependabot.yml.
    findings = zizmor(WORKFLOWS_DIR.parent)
    high = [describe(f) for f in findings if f["determinations"]["severity"] == "High"]
    assert high == []


def test_zizmor_reports_a_dangerous_workflow_as_high(tmp_path: Path) -> None:
    workflows = tmp_path / ".github" / "workflows"
    workflows.mkdir(parents=True)
    (workflows / "bad.yml").write_text(
        "on: pull_request_target\n"
        "jobs:\n"
        "  build:\n"
        "    runs-on: ubuntu-latest\n"
        "    steps:\n"
        "      - uses: actions/checkout@v4\n"
        "        with:\n"
        "          ref: ${{ github.event.pull_request.head.sha }}\n"
        '      - run: echo "${{ github.event.pull_request.title }}"\n'
    )
    idents = {f["ident"] for f in zizmor(workflows) if f["determinations"]["severity"] == "High"}
    assert {"dangerous-triggers", "template-injection", "unpinned-uses"} <= idents


@pytest.mark.parametrize("path", workflow_paths(), ids=lambda p: p.name)
def test_every_action_is_pinned_by_commit_with_its_version(path: Path) -> None:
    unpinned = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        match = USES_LINE.match(line)
        if match is None or match.group(1).startswith("./"):
            continue
        if not PINNED.match(match.group(1)):
            unpinned.append(f"{path.name}:{number}: {match.group(1)}")
    assert unpinned == []


def test_each_action_is_pinned_to_one_commit_everywhere() -> None:
    commits: dict[str, set[str]] = {}
    for path in workflow_paths():
        for line in path.read_text().splitlines():
            match = USES_LINE.match(line)
            if match and "@" in match.group(1):
                action, ref = match.group(1).split("@", 1)
                commits.setdefault(action, set()).add(ref)
    assert {a: r for a, r in commits.items() if len(r) > 1} == {}


@pytest.mark.parametrize("path", workflow_paths(), ids=lambda p: p.name)
def test_triggers_are_exactly_the_designed_ones(path: Path) -> None:
    triggers = triggers_of(load_yaml(path))
    assert not FORBIDDEN_TRIGGERS & set(triggers)
    assert triggers == EXPECTED_TRIGGERS[path.name]


@pytest.mark.parametrize("path", workflow_paths(), ids=lambda p: p.name)
def test_workflow_grants_nothing_and_jobs_ask_for_their_own(path: Path) -> None:
    document = load_yaml(path)
    assert document.get("permissions") == {}, "workflow-level permissions must be {}"
    without = [job_id for job_id, job in document["jobs"].items() if "permissions" not in job]
    assert without == []


def test_job_permissions_are_minimal(runs: list[JobRun]) -> None:
    excess = []
    for run in runs:
        allowed = {"contents": "read"}
        if run.assumed_roles:
            allowed["id-token"] = "write"
        if any(c.command == "preview" for c in run.pulumi_commands) and run.workflow == (
            "pull-request.yml"
        ):
            allowed["pull-requests"] = "write"  # the preview comment
        extra = {k: v for k, v in run.permissions.items() if allowed.get(k) != v}
        if extra:
            excess.append(f"{run.label}: {extra}")
    assert excess == []


def test_checkouts_do_not_keep_the_token(runs: list[JobRun]) -> None:
    keeping = [
        run.label
        for run in runs
        for step in run.steps_using("actions/checkout")
        if step.get("with", {}).get("persist-credentials") is not False
    ]
    assert keeping == []


def test_every_uv_sync_is_frozen(runs: list[JobRun]) -> None:
    syncs = [
        (run.label, str(step["run"]))
        for run in runs
        for step in run.job.get("steps", [])
        if "uv sync" in str(step.get("run", ""))
    ]
    assert syncs, "no job installs the locked environment"
    assert [s for s in syncs if "--frozen" not in s[1]] == []
    assert {run.workflow_env.get("UV_FROZEN") for run in runs} == {"1"}


def test_deploy_runs_restore_no_cache(runs: list[JobRun]) -> None:
    # A cache written by a pull request must not flow into a run that deploys.
    deploying = {r.workflow for r in runs if any(c.command == "up" for c in r.pulumi_commands)}
    cached = [
        run.label
        for run in runs
        if run.workflow in deploying
        for step in run.steps_using("astral-sh/setup-uv")
        if step.get("with", {}).get("enable-cache") is not False
    ]
    assert cached == []
