"""promotion-gate: a promoted stack runs exactly what its source stack runs and has proven.

The program of a stack with a source (prod: staging) registers one
`promote:promotion:Gate` resource recording what its gate checked: the source
stack, the commit, the source's commit and verified commit, and the source's
exact image references. In a stack whose policy config names a `sourceStack`,
this rule requires that record and checks it against the stack itself:

- the gate exists, once, and names the configured source stack (so deleting
  `promotion:` from `Pulumi.prod.yaml`, or pointing it at dev, is a violation);
- the commit deployed is the source's commit and the one it verified;
- every container image of every resource is one of the source's images
  (a digest other than staging's is a violation even when it is an ops image).

StackReferences themselves never reach a policy pack: the engine analyses only
registered resources (reads are kept apart, pkg/resource/deploy/step_executor.go),
which is why the gate is a registered resource.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ReportViolation,
    StackValidationArgs,
    StackValidationPolicy,
)

from ._props import config_str, is_unknown, props_of
from .images.references import images_of

NAME = "promotion-gate"
GATE_TYPE = "promote:promotion:Gate"
_COMMIT = re.compile(r"^[0-9a-f]{40}$")


def _stack_part(name: object) -> str | None:
    return name.rsplit("/", 1)[-1] if isinstance(name, str) else None


def gate_problems(gate: Mapping[str, object], source_stack: str) -> list[str]:
    """What is wrong with a gate record (empty when it proves the promotion)."""
    problems = []
    named = gate.get("sourceStack")
    if _stack_part(named) != source_stack:
        problems.append(
            f"the promotion gate reads {named!r}, not the {source_stack} stack this stack must "
            f"promote from; set promotion.source_stack to <org>/<project>/{source_stack}"
        )
    commit = gate.get("commit")
    if not isinstance(commit, str) or not _COMMIT.match(commit):
        problems.append(f"the promotion gate's commit {commit!r} is not a 40-hex commit")
    for key, what in (("sourceCommit", "runs"), ("verifiedCommit", "verified")):
        if gate.get(key) != commit:
            problems.append(
                f"{source_stack} {what} {gate.get(key)!r}, not the commit deployed ({commit!r})"
            )
    images = gate.get("images")
    if not isinstance(images, Mapping) or not images:
        problems.append("the promotion gate records no images of the source stack")
    return problems


def promotion_violations(
    resources: Iterable[tuple[str, str, Mapping[str, object]]], config: Mapping[str, object]
) -> list[tuple[str | None, str]]:
    """(urn, message) for each violation; `resources` are (type, urn, plain props)."""
    source_stack = config_str(config, "sourceStack")
    if not source_stack:
        return []
    resources = list(resources)
    gates = [(urn, props) for typ, urn, props in resources if typ == GATE_TYPE]
    if len(gates) != 1:
        return [
            (
                None,
                f"this stack must promote from {source_stack}, but it has {len(gates)} "
                f"promotion gates ({GATE_TYPE}); restore promotion.source_stack: "
                f"<org>/<project>/{source_stack} in its stack file",
            )
        ]
    urn, gate = gates[0]
    found: list[tuple[str | None, str]] = [(urn, p) for p in gate_problems(gate, source_stack)]
    images = gate.get("images")
    allowed = set(images.values()) if isinstance(images, Mapping) else set()
    for typ, resource_urn, props in resources:
        for ref in images_of(typ, props):
            if ref.kind != "image":
                continue
            if is_unknown(ref.value) or ref.value not in allowed:
                found.append(
                    (
                        resource_urn,
                        f"{ref.where} is {ref.value!r}, not one of the images "
                        f"{source_stack} runs: prod takes staging's exact digests",
                    )
                )
    return found


def promotion_gate_validator(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    resources = ((r.resource_type, r.urn, props_of(r.props)) for r in args.resources)
    for urn, message in promotion_violations(resources, args.get_config()):
        report_violation(message, urn)


POLICY = StackValidationPolicy(
    name=NAME,
    description=(
        "A stack that promotes from another (prod from staging) carries the promotion gate "
        "for that stack, deploys the commit it runs and verified, and runs only its images."
    ),
    validate=promotion_gate_validator,
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=PolicyConfigSchema(
        properties={
            "sourceStack": {
                "type": "string",
                "minLength": 1,
                "description": (
                    "Name of the stack this one must promote from (its last path segment, "
                    "e.g. staging). Unset: the stack promotes from none."
                ),
            },
        },
    ),
)
