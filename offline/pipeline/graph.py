"""Read a pipeline definition as a DAG: its steps, and what each step waits for.

Shared by the mermaid rendering and the local runner, so both see the same
wiring SageMaker would: explicit `DependsOn` plus every `Steps.<name>...`
reference (property `Get`s and `PropertyFile`s used by `Std:JsonGet`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

_STEP_REFERENCE = re.compile(r"^Steps\.([A-Za-z0-9_-]+)")


def all_steps(definition: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Every step, including the branches of condition steps, parents first."""

    def walk(steps: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for step in steps:
            yield step
            if step["Type"] == "Condition":
                yield from walk(step["Arguments"].get("IfSteps", []))
                yield from walk(step["Arguments"].get("ElseSteps", []))

    return walk(list(definition.get("Steps", [])))


def referenced_steps(value: Any) -> set[str]:
    """Names of the steps whose properties a (nested) argument value reads."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "Get" and isinstance(item, str):
                match = _STEP_REFERENCE.match(item)
                if match:
                    found.add(match.group(1))
            else:
                found |= referenced_steps(item)
    elif isinstance(value, list):
        for item in value:
            found |= referenced_steps(item)
    return found


def step_dependencies(definition: Mapping[str, Any]) -> dict[str, set[str]]:
    """Step name -> names of the steps it must wait for (condition branches excluded)."""
    result: dict[str, set[str]] = {}
    for step in all_steps(definition):
        arguments = step.get("Arguments", {})
        if step["Type"] == "Condition":
            # A condition's own inputs; its branches' needs are their own.
            arguments = {"Conditions": arguments.get("Conditions", [])}
        upstream = set(step.get("DependsOn", [])) | referenced_steps(arguments)
        upstream.discard(step["Name"])
        result[step["Name"]] = upstream
    return result


def branch_parents(definition: Mapping[str, Any]) -> dict[str, tuple[str, str]]:
    """Step name -> (condition step, "if" | "else") for steps inside a condition branch."""
    parents: dict[str, tuple[str, str]] = {}
    for step in all_steps(definition):
        if step["Type"] != "Condition":
            continue
        for branch, key in (("if", "IfSteps"), ("else", "ElseSteps")):
            for child in step["Arguments"].get(key, []):
                parents[child["Name"]] = (step["Name"], branch)
    return parents


def topological_order(definition: Mapping[str, Any]) -> list[str]:
    """Top-level steps in an order that respects every dependency (definition order breaks ties).

    Raises ValueError on an unknown dependency or a cycle.
    """
    top_level = [step["Name"] for step in definition.get("Steps", [])]
    dependencies = step_dependencies(definition)
    known = set(dependencies)
    for name, upstream in dependencies.items():
        unknown = upstream - known
        if unknown:
            raise ValueError(f"step {name!r} depends on unknown step(s) {sorted(unknown)}")
    parents = branch_parents(definition)
    done: set[str] = set()
    order: list[str] = []
    pending = list(top_level)
    while pending:
        for name in pending:
            # A branch step counts as available once its condition has run.
            needs = {parents[d][0] if d in parents else d for d in dependencies[name]}
            if needs <= done:
                order.append(name)
                done.add(name)
                done |= {child for child, (parent, _) in parents.items() if parent == name}
                pending.remove(name)
                break
        else:
            raise ValueError(f"dependency cycle among steps {pending}")
    return order
