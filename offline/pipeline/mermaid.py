"""A picture of a pipeline definition's DAG, for the offline plan (`pipeline.mmd`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from offline.pipeline.graph import all_steps, step_dependencies


def mermaid(definition: Mapping[str, Any]) -> str:
    """Render a pipeline definition's DAG as a mermaid flowchart.

    Edges come from `DependsOn` and from property references between steps;
    a condition's branches are labelled `if` / `else`.
    """
    lines = ["flowchart TD"]
    steps = list(all_steps(definition))
    ids = {step["Name"]: f"s{index}" for index, step in enumerate(steps)}
    for step in steps:
        shape = ("{", "}") if step["Type"] == "Condition" else ("[", "]")
        label = f"{step['Name']}<br/><i>{step['Type']}</i>"
        lines.append(f'    {ids[step["Name"]]}{shape[0]}"{label}"{shape[1]}')
    dependencies = step_dependencies(definition)
    for step in steps:
        for upstream in sorted(dependencies[step["Name"]]):
            lines.append(f"    {ids[upstream]} --> {ids[step['Name']]}")
        if step["Type"] == "Condition":
            for branch, key in (("if", "IfSteps"), ("else", "ElseSteps")):
                for child in step["Arguments"].get(key, []):
                    lines.append(f"    {ids[step['Name']]} -- {branch} --> {ids[child['Name']]}")
    return "\n".join(lines) + "\n"
