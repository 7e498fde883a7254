"""The promotion gate: a stack deploys exactly what its source stack runs and has proven.

Prod names staging as its source (`promotion.source_stack`). Staging exports the
commit it runs (`deployed_commit`), the digest-pinned images it runs (`images`)
and, once the staging promotion job has trained, served and smoke-tested that
commit, the `verification` record of those checks. Prod then

- refuses unless staging runs this commit and has verified it (each missing check named),
- deploys staging's exact image references, never a fresh tag lookup, and
- records all of it in a `promote:promotion:Gate` resource, which the policy pack's
  `promotion-gate` rule requires in prod (so removing or redirecting the gate in
  settings is a policy violation, not a quiet change).

The source is read before any resource is declared, so a refused deployment changes nothing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi

# Pulumi's Python SDK has no public way to read a StackReference output synchronously, and
# the gate must decide before the first resource is registered (a refused deployment must
# change nothing). `StackReference.get_output_details` is async; `_sync_await` is how the
# SDK's own blocking calls (`pulumi.runtime.invoke`, `get_*` data sources) wait. Checked
# against pulumi 3.272 (sdk/python/lib/pulumi/runtime/sync_await.py, also unchanged at
# v3.259+ of the engine repository); pyproject pins the range.
from pulumi.runtime.sync_await import _sync_await

from ml.verify import CHECKS

DEPLOYED_COMMIT = "deployed_commit"
IMAGES = "images"
VERIFICATION = "verification"
GATE_TYPE = "promote:promotion:Gate"

VERIFICATION_CHECKS = CHECKS
"""What the staging promotion job must have proven, in order (ml/verify/ runs them)."""

_COMMIT = re.compile(r"^[0-9a-f]{40}$")
_IMAGE = re.compile(
    r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com/"
    r"(?P<repository>[a-z0-9._/-]+)@sha256:[0-9a-f]{64}$"
)


class PromotionRefusedError(pulumi.RunError):
    """The commit being deployed is not one the source stack runs and has proven."""


@dataclass(frozen=True)
class SourceState:
    """What the source stack exports (None where it exports nothing)."""

    stack: str
    commit: str | None
    images: Mapping[str, Any] | None
    verification: Mapping[str, Any] | None
    missing_stack: str | None = None
    """Set when the source stack does not exist: the engine's error message."""


def _output(reference: pulumi.StackReference, name: str) -> Any:
    details = _sync_await(reference.get_output_details(name))
    return details.value if details.value is not None else details.secret_value


def read_source(source_stack: str) -> SourceState:
    """The source stack's exports, read through a StackReference."""
    reference = pulumi.StackReference(source_stack)
    try:
        commit = _output(reference, DEPLOYED_COMMIT)
        images = _output(reference, IMAGES)
        verification = _output(reference, VERIFICATION)
    except Exception as error:  # the engine reports a missing stack as a plain RPC error
        return SourceState(source_stack, None, None, None, missing_stack=str(error))
    return SourceState(
        stack=source_stack,
        commit=None if commit is None else str(commit),
        images=images if isinstance(images, Mapping) else None,
        verification=verification if isinstance(verification, Mapping) else None,
    )


def _promote_hint(commit: str) -> str:
    return f"git tag -f staging {commit} && git push -f origin staging"


def verification_problem(verification: Mapping[str, Any] | None, commit: str) -> str | None:
    """Why `verification` does not prove `commit`, or None when it does."""
    if verification is None:
        return "it has no verification record (the staging promotion job never finished)"
    if verification.get("commit") != commit:
        return f"its verification record is for commit {verification.get('commit')!r}"
    checks = verification.get("checks")
    checks = checks if isinstance(checks, Mapping) else {}
    for check in VERIFICATION_CHECKS:
        result = checks.get(check)
        passed = isinstance(result, Mapping) and result.get("passed") is True
        if not passed:
            return f"its verification record lacks a passed {check!r} check"
    return None


def promoted_images(
    stack: str,
    source: SourceState,
    commit: str,
    expected_repositories: Mapping[str, str],
    *,
    ops_account: str,
    region: str,
) -> dict[str, str]:
    """The source's exact image references for `commit`; PromotionRefusedError otherwise."""
    where = source.stack
    if source.missing_stack is not None:
        message = (
            f"{stack} deploys only what {where} runs, but {where} could not be read "
            f"({source.missing_stack.splitlines()[0]}): create and deploy it first "
            f"(pulumi stack init {where} && {_promote_hint(commit)})"
        )
        # The failed StackReference read also fails the program with the engine's bare
        # "unknown stack" after the program returns (the SDK re-raises the first failed RPC),
        # so the refusal is logged as an error diagnostic too, where `pulumi up` shows it.
        pulumi.log.error(message)
        raise PromotionRefusedError(message)
    if source.commit is None:
        raise PromotionRefusedError(
            f"{stack} deploys only what {where} runs, but {where} exports no "
            f"{DEPLOYED_COMMIT}: deploy commit {commit} to it first ({_promote_hint(commit)})"
        )
    if source.commit != commit:
        raise PromotionRefusedError(
            f"{stack} refuses commit {commit}: {where} runs {source.commit}. Promote the "
            f"commit to staging first ({_promote_hint(commit)}), or deploy {source.commit} "
            f"to {stack}"
        )
    problem = verification_problem(source.verification, commit)
    if problem is not None:
        raise PromotionRefusedError(
            f"{stack} refuses commit {commit}: {where} runs it but has not proven it: "
            f"{problem}. Re-run the staging promotion job for {commit}."
        )
    images = dict(source.images or {})
    result: dict[str, str] = {}
    for name, repository in sorted(expected_repositories.items()):
        uri = images.get(name)
        match = _IMAGE.match(uri) if isinstance(uri, str) else None
        if (
            match is None
            or match["account"] != ops_account
            or match["region"] != region
            or match["repository"] != repository
        ):
            raise PromotionRefusedError(
                f"{stack} refuses commit {commit}: {where} exports {IMAGES}.{name} = {uri!r}, "
                f"not an image of {ops_account}.dkr.ecr.{region}.amazonaws.com/{repository} "
                "pinned by digest; redeploy staging with this template"
            )
        result[name] = match.string
    return result


@dataclass(frozen=True)
class PromotionGateArgs:
    source_stack: str
    commit: str
    source_commit: str
    verified_commit: str
    images: Mapping[str, str]
    checks: Sequence[str]


class PromotionGate(pulumi.ComponentResource):
    """The record of a passed promotion gate, for the policy pack's `promotion-gate` rule.

    It owns no cloud resource; its inputs are what the gate checked, all known at preview.
    """

    def __init__(
        self, name: str, args: PromotionGateArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        props: dict[str, Any] = {
            "sourceStack": args.source_stack,
            "commit": args.commit,
            "sourceCommit": args.source_commit,
            "verifiedCommit": args.verified_commit,
            "images": dict(sorted(args.images.items())),
            "checks": list(args.checks),
        }
        super().__init__(GATE_TYPE, name, props, opts)
        self.images = dict(args.images)
        self.register_outputs(props)


def gate(
    name: str,
    stack: str,
    source_stack: str,
    commit: str,
    expected_repositories: Mapping[str, str],
    *,
    ops_account: str,
    region: str,
) -> PromotionGate:
    """Read the source, check it, and record the passed gate (raises when refused)."""
    if not _COMMIT.match(commit):
        raise PromotionRefusedError(f"{stack}: the commit to deploy must be 40 hex, got {commit!r}")
    source = read_source(source_stack)
    images = promoted_images(
        stack, source, commit, expected_repositories, ops_account=ops_account, region=region
    )
    return PromotionGate(
        name,
        PromotionGateArgs(
            source_stack=source_stack,
            commit=commit,
            source_commit=str(source.commit),
            verified_commit=str((source.verification or {}).get("commit")),
            images=images,
            checks=VERIFICATION_CHECKS,
        ),
    )


VERIFICATION_ENV = "PROMOTE_VERIFICATION"
"""Path of the verification record the staging promotion job wrote (ml/verify/)."""


def load_verification(path: str, commit: str) -> dict[str, Any]:
    """The verification record at `path`, checked to prove `commit`; RunError otherwise.

    The attesting `pulumi up` of staging exports it unchanged, so prod's gate reads it.
    """
    try:
        with open(path, encoding="utf-8") as handle:  # noqa: PTH123 - a user-given path
            record = json.load(handle)
    except (OSError, ValueError) as error:
        raise pulumi.RunError(f"{VERIFICATION_ENV}={path}: cannot read it ({error})") from None
    if not isinstance(record, dict):
        raise pulumi.RunError(f"{VERIFICATION_ENV}={path}: not a verification record")
    problem = verification_problem(record, commit)
    if problem is not None:
        raise pulumi.RunError(
            f"{VERIFICATION_ENV}={path} does not prove commit {commit}: "
            f"{problem.removeprefix('its ')}"
        )
    return record
