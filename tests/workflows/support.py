"""Read the workflows the way GitHub runs them, for the checks in this folder.

A workflow job becomes one `JobRun` per matrix entry, with `${{ matrix.* }}` and
`${{ vars.* }}` resolved (GitHub variables come from the stack settings, as
the README (CI/CD) tells users to set them). From a run we derive what matters for
OIDC: the `sub` claim GitHub will present, the roles it assumes and the Pulumi
commands it runs.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from infra.settings import STACKS, Settings
from infra.stack_files import load_stack_settings
from offline.plan.capture import StackPlan

REPO_ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS_DIR = REPO_ROOT / ".github" / "workflows"
PROJECT = "promote-code"
DEPLOY_ROLE = f"{PROJECT}-github-deploy"
PREVIEW_ROLE = f"{PROJECT}-github-preview"
OIDC_HOST = "token.actions.githubusercontent.com"
CONFIGURE_AWS = "aws-actions/configure-aws-credentials"
PULUMI_ACTION = "pulumi/actions"

_EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
_REF_CONDITION = re.compile(r"github\.ref\s*==\s*'([^']+)'")


def load_yaml(path: Path) -> Any:
    # YAML 1.2, as GitHub reads workflows: `on` stays a string key, not `True`.
    return YAML(typ="safe", pure=True).load(path.read_text())


def workflow_paths() -> list[Path]:
    return sorted([*WORKFLOWS_DIR.glob("*.yml"), *WORKFLOWS_DIR.glob("*.yaml")])


def venv_tool(name: str) -> Path:
    """A command-line tool installed into this environment by `uv sync` (dev group)."""
    path = Path(sys.executable).parent / name
    if not path.is_file():
        pytest.fail(f"{name} is not installed in {path.parent}; run `uv sync` (dev dependencies)")
    return path


def ops_settings() -> Settings:
    return load_stack_settings("ops")


def github_variables(settings: Settings) -> dict[str, str]:
    """The repository variables the README asks users to create, filled from the settings."""
    variables = {f"AWS_ACCOUNT_ID_{s.upper()}": settings.accounts.for_stack(s) for s in STACKS}
    variables["AWS_REGION"] = settings.region
    variables["PULUMI_BACKEND_URL"] = "s3://example-pulumi-state?region=" + settings.region
    return variables


class UnpinnableSubjectError(ValueError):
    """A trigger whose OIDC `sub` cannot be known from the workflow file alone."""


@dataclass(frozen=True)
class PulumiCommand:
    command: str
    stack: str
    policy_packs: str | None
    policy_pack_configs: str | None
    env: Mapping[str, str]
    inputs: Mapping[str, Any]


@dataclass(frozen=True)
class JobRun:
    """One job of a workflow, or one entry of its matrix, as GitHub would run it."""

    workflow: str
    job_id: str
    job: Mapping[str, Any]
    triggers: Mapping[str, Any]
    workflow_env: Mapping[str, Any]
    variables: Mapping[str, str]
    matrix: Mapping[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        suffix = f" {dict(self.matrix)}" if self.matrix else ""
        return f"{self.workflow}:{self.job_id}{suffix}"

    def resolve(self, value: Any) -> str:
        """Substitute `matrix.*` and `vars.*`; other expressions stay as `<expr>`."""

        def substitute(match: re.Match[str]) -> str:
            expression = match.group(1)
            if expression.startswith("matrix."):
                return self.resolve(self.matrix[expression.removeprefix("matrix.")])
            if expression.startswith("vars."):
                name = expression.removeprefix("vars.")
                if name not in self.variables:
                    raise KeyError(
                        f"{self.label} reads the GitHub variable {name}, which is not one of "
                        f"the documented variables {sorted(self.variables)}"
                    )
                return self.variables[name]
            return f"<{expression}>"

        return _EXPRESSION.sub(substitute, str(value))

    @property
    def environment(self) -> str | None:
        environment = self.job.get("environment")
        if isinstance(environment, Mapping):
            environment = environment.get("name")
        return None if environment is None else self.resolve(environment)

    @property
    def permissions(self) -> Mapping[str, str]:
        permissions = self.job.get("permissions")
        return permissions if isinstance(permissions, Mapping) else {}

    @property
    def concurrency(self) -> tuple[str | None, bool]:
        concurrency = self.job.get("concurrency")
        if concurrency is None:
            return None, False
        if isinstance(concurrency, str):
            return self.resolve(concurrency), False
        return self.resolve(concurrency["group"]), bool(concurrency.get("cancel-in-progress"))

    def steps_using(self, action: str) -> list[Mapping[str, Any]]:
        return [
            step
            for step in self.job.get("steps", [])
            if str(step.get("uses", "")).split("@", 1)[0] == action
        ]

    @property
    def assumed_roles(self) -> list[str]:
        return [
            self.resolve(step.get("with", {}).get("role-to-assume", ""))
            for step in self.steps_using(CONFIGURE_AWS)
        ]

    @property
    def pulumi_commands(self) -> list[PulumiCommand]:
        commands = []
        for step in self.steps_using(PULUMI_ACTION):
            inputs = step.get("with", {})
            if "command" not in inputs:
                continue  # install-only use of the action
            env = {**self.workflow_env, **self.job.get("env", {}), **step.get("env", {})}
            commands.append(
                PulumiCommand(
                    command=self.resolve(inputs["command"]),
                    stack=self.resolve(inputs.get("stack-name", "")),
                    policy_packs=_optional(self.resolve, inputs.get("policyPacks")),
                    policy_pack_configs=_optional(self.resolve, inputs.get("policyPackConfigs")),
                    env={k: self.resolve(v) for k, v in env.items()},
                    inputs=inputs,
                )
            )
        return commands

    def may_run_on(self, ref: str) -> bool:
        """False only when the job's `if:` pins `github.ref` to other refs."""
        pinned = _REF_CONDITION.findall(str(self.job.get("if", "")))
        return not pinned or ref in pinned

    def oidc_subjects(self, repository: str) -> set[str]:
        """Every `sub` claim this job can present to AWS, from the triggers that start it."""
        if self.environment is not None:
            # GitHub puts the environment in `sub` whatever the event or ref.
            return {f"repo:{repository}:environment:{self.environment}"}
        subjects = set()
        for event, config in self.triggers.items():
            if event == "pull_request":
                subjects.add(f"repo:{repository}:pull_request")
            elif event == "push":
                for ref in _push_refs(self.workflow, config):
                    if self.may_run_on(ref):
                        subjects.add(f"repo:{repository}:ref:{ref}")
            else:
                raise UnpinnableSubjectError(
                    f"{self.label}: the `{event}` trigger can run from any ref, so its OIDC "
                    "`sub` claim cannot be matched to a role trust"
                )
        return subjects


def _optional(resolve: Any, value: Any) -> str | None:
    return None if value is None else str(resolve(value))


def _push_refs(workflow: str, config: Any) -> list[str]:
    config = config or {}
    branches = config.get("branches", [])
    tags = config.get("tags", [])
    if not branches and not tags:
        raise UnpinnableSubjectError(f"{workflow}: `push` without branches or tags runs on any ref")
    refs = [f"refs/heads/{b}" for b in branches] + [f"refs/tags/{t}" for t in tags]
    for ref in refs:
        if any(c in ref for c in "*?[!"):
            raise UnpinnableSubjectError(f"{workflow}: `push` filter {ref!r} is a pattern")
    return refs


def triggers_of(document: Mapping[str, Any]) -> dict[str, Any]:
    triggers = document["on"]
    if isinstance(triggers, str):
        return {triggers: None}
    if isinstance(triggers, list):
        return dict.fromkeys(triggers)
    return dict(triggers)


def job_runs(
    name: str, document: Mapping[str, Any], variables: Mapping[str, str]
) -> Iterator[JobRun]:
    triggers = triggers_of(document)
    workflow_env = document.get("env", {})
    for job_id, job in document["jobs"].items():
        matrix = job.get("strategy", {}).get("matrix", {})
        if set(matrix) - {"include"}:
            raise AssertionError(
                f"{name}:{job_id}: use `matrix.include` entries only, so every job run is explicit"
            )
        entries = matrix.get("include") or [{}]
        for entry in entries:
            yield JobRun(name, job_id, job, triggers, workflow_env, variables, entry)


def all_job_runs(variables: Mapping[str, str]) -> list[JobRun]:
    return [
        run for path in workflow_paths() for run in job_runs(path.name, load_yaml(path), variables)
    ]


@dataclass(frozen=True)
class TrustedRole:
    account: str
    name: str
    subjects: frozenset[str]
    audiences: frozenset[str]
    operators: frozenset[str]
    """Condition operators that carry the `sub` key (StringEquals expected)."""

    @property
    def arn(self) -> str:
        return f"arn:aws:iam::{self.account}:role/{self.name}"


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def github_roles(plan: StackPlan) -> dict[str, TrustedRole]:
    """The GitHub deploy and preview roles the ops stack creates, by ARN, with their trust."""
    provider_accounts = {}
    for provider in plan.of_type("pulumi:providers:aws"):
        allowed = provider.inputs.get("allowedAccountIds")
        if isinstance(allowed, str):
            allowed = json.loads(allowed)
        if allowed:
            provider_accounts[provider.urn] = str(_as_list(allowed)[0])
    roles = {}
    for resource in plan.of_type("aws:iam/role:Role"):
        name = resource.inputs.get("name")
        if name not in (DEPLOY_ROLE, PREVIEW_ROLE):
            continue
        provider_urn = (resource.provider or "").rsplit("::", 1)[0]
        if provider_urn not in provider_accounts:
            raise AssertionError(
                f"role {resource.name} is not created through an account provider with "
                "allowedAccountIds, so its account is unknown"
            )
        subjects: set[str] = set()
        audiences: set[str] = set()
        operators: set[str] = set()
        for statement in _as_list(json.loads(resource.inputs["assumeRolePolicy"])["Statement"]):
            for operator, condition in statement.get("Condition", {}).items():
                if f"{OIDC_HOST}:sub" in condition:
                    operators.add(operator)
                    subjects.update(_as_list(condition[f"{OIDC_HOST}:sub"]))
                if f"{OIDC_HOST}:aud" in condition:
                    audiences.update(_as_list(condition[f"{OIDC_HOST}:aud"]))
        role = TrustedRole(
            provider_accounts[provider_urn],
            str(name),
            frozenset(subjects),
            frozenset(audiences),
            frozenset(operators),
        )
        roles[role.arn] = role
    return roles


def oidc_mismatches(
    runs: list[JobRun], roles: Mapping[str, TrustedRole], settings: Settings
) -> list[str]:
    """Every way a job would be locked out of, or let into, an AWS role it should not be."""
    repository = settings.github.repository
    accounts = {settings.accounts.for_stack(s): s for s in STACKS}
    problems = []
    for run in runs:
        if not run.assumed_roles:
            continue
        try:
            subjects = run.oidc_subjects(repository)
        except UnpinnableSubjectError as error:
            problems.append(str(error))
            continue
        if run.permissions.get("id-token") != "write":
            problems.append(f"{run.label} assumes a role without `permissions: id-token: write`")
        for arn in run.assumed_roles:
            role = roles.get(arn)
            if role is None:
                problems.append(
                    f"{run.label} assumes {arn}, which the ops stack does not create "
                    f"(it creates {sorted(roles)})"
                )
                continue
            for subject in sorted(subjects - role.subjects):
                problems.append(
                    f"{run.label} presents sub {subject!r} but {arn} trusts only "
                    f"{sorted(role.subjects)}: the job would be locked out"
                )
            if "pull_request" in run.triggers and role.name != PREVIEW_ROLE:
                problems.append(f"{run.label} runs on pull requests and assumes {arn}")
            for command in run.pulumi_commands:
                stack_account = settings.accounts.for_stack(command.stack)
                if stack_account != role.account:
                    problems.append(
                        f"{run.label} runs `pulumi {command.command} --stack {command.stack}` "
                        f"with a role of account {role.account} ({accounts.get(role.account)}), "
                        f"not the {command.stack} account {stack_account}"
                    )
                if command.command != "preview" and role.name != DEPLOY_ROLE:
                    problems.append(
                        f"{run.label} runs `pulumi {command.command}` with {arn}; "
                        "only the deploy role may change a stack"
                    )
                if command.command != "preview" and "pull_request" in run.triggers:
                    problems.append(f"{run.label} runs `pulumi {command.command}` on pull requests")
    return problems
