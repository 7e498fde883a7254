"""The workflows and the ops stack's GitHub roles agree on who may do what.

The trust of each role is read from the ops stack's offline plan (the real
program under mocks), and each workflow job is read as GitHub would run it. A
job whose OIDC `sub` claim its role does not trust is locked out of AWS; a
role that trusts a pull request's `sub` lets a pull request change a stack.
Both show up here, before anything runs on GitHub.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any

import pytest

from infra.settings import STACKS, Settings
from offline.plan.capture import StackPlan

from .support import (
    DEPLOY_ROLE,
    PREVIEW_ROLE,
    REPO_ROOT,
    JobRun,
    TrustedRole,
    github_roles,
    github_variables,
    job_runs,
    load_yaml,
    oidc_mismatches,
    ops_settings,
    workflow_paths,
)

# Where and how each stack is deployed: the contract of the README's CI/CD section.
DEPLOYED_BY = {
    "ops": ("main.yml", None),
    "dev": ("main.yml", None),
    "staging": ("promote.yml", "staging"),
    "prod": ("promote.yml", "prod"),
}


@pytest.fixture(scope="module")
def settings() -> Settings:
    return ops_settings()


@pytest.fixture(scope="module")
def roles(stack_plans: dict[str, StackPlan]) -> dict[str, TrustedRole]:
    # The session's offline plans (tests/conftest.py): the identity bootstrap creates every role.
    return github_roles(stack_plans["identity"])


@pytest.fixture(scope="module")
def documents() -> dict[str, Any]:
    return {path.name: load_yaml(path) for path in workflow_paths()}


def runs_of(documents: Mapping[str, Any], settings: Settings) -> list[JobRun]:
    variables = github_variables(settings)
    return [run for name, doc in documents.items() for run in job_runs(name, doc, variables)]


@pytest.fixture(scope="module")
def runs(documents: dict[str, Any], settings: Settings) -> list[JobRun]:
    return runs_of(documents, settings)


def runs_running(runs: list[JobRun], command: str, stack: str) -> list[JobRun]:
    return [
        run
        for run in runs
        if any(c.command == command and c.stack == stack for c in run.pulumi_commands)
    ]


def role_arn(settings: Settings, stack: str, name: str) -> str:
    return f"arn:aws:iam::{settings.accounts.for_stack(stack)}:role/{name}"


@pytest.mark.parametrize("stack", STACKS)
def test_every_stack_file_agrees_with_the_github_variables(stack: str, settings: Settings) -> None:
    # One set of repository variables serves all four stacks.
    config = load_yaml(REPO_ROOT / f"Pulumi.{stack}.yaml")["config"]
    raw = config["promote:settings"]
    assert {k: str(v) for k, v in raw["accounts"].items()} == settings.accounts.model_dump()
    assert raw["region"] == config["aws:region"] == settings.region
    assert raw["github"]["repository"] == settings.github.repository


def test_the_identity_bootstrap_creates_both_roles_in_every_account(
    roles: dict[str, TrustedRole], settings: Settings
) -> None:
    expected = {role_arn(settings, s, n) for s in STACKS for n in (DEPLOY_ROLE, PREVIEW_ROLE)}
    assert set(roles) == expected


def test_role_trust_pins_audience_and_exact_subject(roles: dict[str, TrustedRole]) -> None:
    for role in roles.values():
        assert role.operators == {"StringEquals"}, role.arn
        assert role.audiences == {"sts.amazonaws.com"}, role.arn
        assert len(role.subjects) == 1, role.arn


def test_no_deploy_role_trusts_a_pull_request(roles: dict[str, TrustedRole]) -> None:
    for role in roles.values():
        pull_request = any(s.endswith(":pull_request") for s in role.subjects)
        assert pull_request == (role.name == PREVIEW_ROLE), role.arn


def test_every_job_presents_a_subject_its_role_trusts(
    runs: list[JobRun], roles: dict[str, TrustedRole], settings: Settings
) -> None:
    assert oidc_mismatches(runs, roles, settings) == []


@pytest.mark.parametrize("stack", STACKS)
def test_stack_is_deployed_by_the_designed_job(
    stack: str, runs: list[JobRun], roles: dict[str, TrustedRole], settings: Settings
) -> None:
    workflow, environment = DEPLOYED_BY[stack]
    deploys = runs_running(runs, "up", stack)
    assert [r.workflow for r in deploys] == [workflow]
    run = deploys[0]
    assert run.environment == environment
    assert run.assumed_roles == [role_arn(settings, stack, DEPLOY_ROLE)]
    repository = settings.github.repository
    assert run.oidc_subjects(repository) == set(roles[run.assumed_roles[0]].subjects)
    if environment is not None:
        # The tag, the GitHub environment and the stack are one name.
        assert run.may_run_on(f"refs/tags/{stack}")
        assert not any(run.may_run_on(f"refs/tags/{other}") for other in STACKS if other != stack)


@pytest.mark.parametrize("stack", STACKS)
def test_stack_is_previewed_on_pull_requests_with_the_read_only_role(
    stack: str, runs: list[JobRun], roles: dict[str, TrustedRole], settings: Settings
) -> None:
    previews = runs_running(runs, "preview", stack)
    assert [r.workflow for r in previews] == ["pull-request.yml"]
    run = previews[0]
    assert run.environment is None
    assert run.assumed_roles == [role_arn(settings, stack, PREVIEW_ROLE)]
    assert run.oidc_subjects(settings.github.repository) == {
        f"repo:{settings.github.repository}:pull_request"
    }
    assert [c.inputs.get("comment-on-pr") for c in run.pulumi_commands] == [True]


def test_pull_requests_only_ever_preview(runs: list[JobRun]) -> None:
    on_pull_requests = [r for r in runs if "pull_request" in r.triggers]
    assert on_pull_requests
    commands = {c.command for r in on_pull_requests for c in r.pulumi_commands}
    roles = {arn.rsplit("/", 1)[1] for r in on_pull_requests for arn in r.assumed_roles}
    assert commands == {"preview"}
    assert roles == {PREVIEW_ROLE}


@pytest.mark.parametrize("stack", STACKS)
def test_every_pulumi_run_uses_the_policy_pack_with_the_stack_config(
    stack: str, runs: list[JobRun]
) -> None:
    commands = [c for r in runs for c in r.pulumi_commands if c.stack == stack]
    assert {c.command for c in commands} == {"up", "preview"}
    for command in commands:
        assert command.policy_packs == "policies"
        assert command.policy_pack_configs == f"policies/config/{stack}.json"
        assert "PROMOTE_IMAGE_TAG" in command.env, f"{command.command} {stack}"


def test_jobs_running_the_policy_pack_put_the_project_environment_on_path(
    runs: list[JobRun],
) -> None:
    # The engine starts the Python policy pack with `python` from PATH; only the
    # project's .venv has pulumi-policy and the pack's imports.
    missing = [
        run.label
        for run in runs
        if run.pulumi_commands
        and not any(
            step.get("with", {}).get("activate-environment") is True
            for step in run.steps_using("astral-sh/setup-uv")
        )
    ]
    assert missing == []


@pytest.mark.parametrize("stack", STACKS)
def test_policy_pack_config_exists_for_every_stack(stack: str) -> None:
    assert (REPO_ROOT / "policies" / "config" / f"{stack}.json").is_file()


@pytest.mark.parametrize("stack", STACKS)
def test_deploys_of_one_stack_never_overlap(stack: str, runs: list[JobRun]) -> None:
    for run in runs_running(runs, "up", stack):
        assert run.concurrency == (f"deploy-{stack}", False), run.label


def test_every_github_variable_used_is_documented() -> None:
    guide = (REPO_ROOT / "README.md").read_text()
    used = {
        name
        for path in workflow_paths()
        for name in re.findall(r"vars\.([A-Z0-9_]+)", path.read_text())
    }
    assert used, "the workflows read no GitHub variables"
    assert {name for name in used if f"`{name}`" not in guide} == set()


# The cross-check has teeth: the mistakes it exists to catch are caught.


def _broken(documents: dict[str, Any]) -> dict[str, Any]:
    # A deep copy: the module-scoped documents stay as loaded for the other tests.
    return copy.deepcopy(documents)


def test_a_staging_job_without_its_environment_is_locked_out(
    documents: dict[str, Any], roles: dict[str, TrustedRole], settings: Settings
) -> None:
    broken = _broken(documents)
    del broken["promote.yml"]["jobs"]["staging"]["environment"]
    problems = oidc_mismatches(runs_of(broken, settings), roles, settings)
    assert any("refs/tags/staging" in p and "locked out" in p for p in problems), problems


def test_a_dev_job_with_an_environment_is_locked_out(
    documents: dict[str, Any], roles: dict[str, TrustedRole], settings: Settings
) -> None:
    broken = _broken(documents)
    broken["main.yml"]["jobs"]["dev"]["environment"] = "dev"
    problems = oidc_mismatches(runs_of(broken, settings), roles, settings)
    assert any("environment:dev" in p and "locked out" in p for p in problems), problems


def test_a_pull_request_reaching_for_the_deploy_role_is_reported(
    documents: dict[str, Any], roles: dict[str, TrustedRole], settings: Settings
) -> None:
    broken = _broken(documents)
    for step in broken["pull-request.yml"]["jobs"]["preview"]["steps"]:
        if "role-to-assume" in step.get("with", {}):
            step["with"]["role-to-assume"] = step["with"]["role-to-assume"].replace(
                PREVIEW_ROLE, DEPLOY_ROLE
            )
    problems = oidc_mismatches(runs_of(broken, settings), roles, settings)
    assert any("runs on pull requests and assumes" in p for p in problems), problems
    assert any(":pull_request'" in p and "locked out" in p for p in problems), problems


def test_a_role_of_the_wrong_account_is_reported(
    documents: dict[str, Any], roles: dict[str, TrustedRole], settings: Settings
) -> None:
    broken = _broken(documents)
    for step in broken["main.yml"]["jobs"]["dev"]["steps"]:
        if "role-to-assume" in step.get("with", {}):
            step["with"]["role-to-assume"] = "arn:aws:iam::${{ vars.AWS_ACCOUNT_ID_OPS }}:role/" + (
                DEPLOY_ROLE
            )
    problems = oidc_mismatches(runs_of(broken, settings), roles, settings)
    assert any("not the dev account" in p for p in problems), problems


def test_a_trigger_from_any_ref_is_reported(
    documents: dict[str, Any], roles: dict[str, TrustedRole], settings: Settings
) -> None:
    broken = _broken(documents)
    broken["main.yml"]["on"]["workflow_dispatch"] = None
    problems = oidc_mismatches(runs_of(broken, settings), roles, settings)
    assert any("workflow_dispatch" in p for p in problems), problems
