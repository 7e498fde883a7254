"""Readable per-stack tables of an offline plan."""

from __future__ import annotations

from collections import Counter
from typing import Any

from offline.plan.capture import UNKNOWN, StackPlan

KEY_INPUTS = (
    "name",
    "bucket",
    "url",
    "imageName",
    "imageTagMutability",
    "modelPackageGroupName",
    "pipelineName",
    "domainName",
    "functionName",
    "cidrBlock",
    "serviceName",
    "quotaCode",
    "value",
    "scheduleExpression",
    "key",
)
MAX_VALUE = 60


def _show(value: Any) -> str:
    text = "(unknown until apply)" if value == UNKNOWN else str(value)
    return text if len(text) <= MAX_VALUE else text[: MAX_VALUE - 3] + "..."


def key_inputs(inputs: dict[str, Any]) -> str:
    return ", ".join(f"{k}={_show(inputs[k])}" for k in KEY_INPUTS if k in inputs)


def render(plan: StackPlan) -> str:
    rows = sorted((r.type, r.name, key_inputs(r.inputs)) for r in plan.resources)
    type_width = max((len(t) for t, _, _ in rows), default=4)
    name_width = max((len(n) for _, n, _ in rows), default=4)
    lines = [f"== stack {plan.stack}: {len(rows)} resources"]
    lines.append(f"{'TYPE':<{type_width}}  {'NAME':<{name_width}}  KEY INPUTS")
    lines.extend(f"{t:<{type_width}}  {n:<{name_width}}  {k}" for t, n, k in rows)
    counts = Counter(r.type.split(":")[0] for r in plan.resources)
    lines.append("counts: " + ", ".join(f"{pkg} {n}" for pkg, n in sorted(counts.items())))
    return "\n".join(lines)
