"""The SageMaker pipeline expression language, evaluated against one local execution.

Generic: it knows the language (`Get` of `Parameters.*`, `Execution.*` and
`Steps.<name>.<property path>`, `Std:Join`, `Std:JsonGet` on property files, and
the condition types), never the names of any particular pipeline's steps, files
or parameters. What a step produced is recorded in the `Scope` as it runs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

_PATH_TOKEN = re.compile(r"\.?([A-Za-z0-9_-]+)|\['([^']*)'\]|\[(\d+)\]")
_PROPERTY_FILE = re.compile(r"^Steps\.([A-Za-z0-9_-]+)\.PropertyFiles\.([A-Za-z0-9_-]+)$")

_COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "Equals": lambda a, b: bool(a == b),
    "NotEquals": lambda a, b: bool(a != b),
    "GreaterThan": lambda a, b: bool(a > b),
    "GreaterThanOrEqualTo": lambda a, b: bool(a >= b),
    "LessThan": lambda a, b: bool(a < b),
    "LessThanOrEqualTo": lambda a, b: bool(a <= b),
}


class ExpressionError(ValueError):
    """An expression cannot be evaluated in this execution; the message names it."""


def declared_parameters(
    definition: Mapping[str, Any], overrides: Mapping[str, Any]
) -> dict[str, Any]:
    """The definition's parameters and defaults, `overrides` applied (unknown names refused).

    An override is converted to its parameter's declared type, as StartPipelineExecution
    (whose PipelineParameters values are strings) does: "0.5" for a Float is 0.5.
    """
    declared = {p["Name"]: p for p in definition.get("Parameters", [])}
    unknown = sorted(set(overrides) - set(declared))
    if unknown:
        raise ExpressionError(f"unknown pipeline parameter(s) {unknown}; known: {sorted(declared)}")
    values = {name: p.get("DefaultValue") for name, p in declared.items()}
    for name, value in overrides.items():
        values[name] = _typed(name, str(declared[name].get("Type", "String")), value)
    return values


def _typed(name: str, kind: str, value: Any) -> Any:
    convert: dict[str, Any] = {"Integer": int, "Float": float, "String": str}
    if kind == "Boolean":
        text = to_text(value).lower()
        if text not in ("true", "false"):
            raise ExpressionError(f"pipeline parameter {name} is a Boolean: true or false")
        return text == "true"
    if kind not in convert:
        raise ExpressionError(f"pipeline parameter {name} has an unsupported type {kind!r}")
    try:
        return convert[kind](value)
    except (TypeError, ValueError):
        raise ExpressionError(
            f"pipeline parameter {name} is of type {kind}, got {value!r}"
        ) from None


@dataclass
class Scope:
    """What expressions of one execution can read."""

    parameters: dict[str, Any]
    execution: dict[str, str]
    properties: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Step name -> the step's properties, as `DescribeXJob` would show them."""
    property_files: dict[tuple[str, str], Any] = field(default_factory=dict)
    """(step name, property file name) -> the parsed JSON file."""

    def resolve(self, value: Any) -> Any:
        """`value` with every expression in it replaced by its value."""
        if isinstance(value, list):
            return [self.resolve(item) for item in value]
        if not isinstance(value, dict):
            return value
        if set(value) == {"Get"}:
            return self._get(value["Get"])
        if set(value) == {"Std:Join"}:
            join = value["Std:Join"]
            return str(join.get("On", "")).join(
                to_text(self.resolve(item)) for item in join["Values"]
            )
        if set(value) == {"Std:JsonGet"}:
            return self._json_get(value["Std:JsonGet"])
        return {key: self.resolve(item) for key, item in value.items()}

    def evaluate(self, condition: Mapping[str, Any]) -> tuple[bool, str]:
        """Whether `condition` holds, and a readable account of what was compared."""
        kind = condition["Type"]
        if kind == "Not":
            holds, text = self.evaluate(condition["Condition"])
            return not holds, f"not ({text})"
        if kind == "Or":
            results = [self.evaluate(item) for item in condition["Conditions"]]
            return any(h for h, _ in results), " or ".join(t for _, t in results)
        left = self.resolve(condition["LeftValue"])
        if kind == "In":
            values = [self.resolve(v) for v in condition["RightValue"]]
            return left in values, f"{left!r} in {values!r}"
        if kind not in _COMPARISONS:
            raise ExpressionError(f"condition type {kind!r} is not supported locally")
        right = self.resolve(condition["RightValue"])
        return _COMPARISONS[kind](left, right), f"{left!r} {kind} {right!r}"

    def _get(self, expression: str) -> Any:
        head, _, rest = expression.partition(".")
        if head == "Parameters":
            if rest not in self.parameters:
                raise ExpressionError(f"unknown parameter in {expression!r}")
            return self.parameters[rest]
        if head == "Execution":
            if rest not in self.execution:
                raise ExpressionError(f"execution variable {rest!r} is not supported locally")
            return self.execution[rest]
        if head == "Steps":
            step, _, path = rest.partition(".")
            if step not in self.properties:
                raise ExpressionError(f"{expression!r} reads step {step!r}, which has not run")
            return walk_path(self.properties[step], path, expression)
        raise ExpressionError(f"cannot resolve {expression!r}")

    def _json_get(self, spec: Mapping[str, Any]) -> Any:
        reference = spec["PropertyFile"]["Get"]
        match = _PROPERTY_FILE.match(reference)
        if not match:
            raise ExpressionError(f"unsupported property file reference {reference!r}")
        key = (match.group(1), match.group(2))
        if key not in self.property_files:
            raise ExpressionError(f"property file {reference!r} was not produced")
        return walk_path(self.property_files[key], spec["Path"], f"JsonGet {spec['Path']}")


def walk_path(document: Any, path: str, expression: str) -> Any:
    """Follow a property path (`a.b['c'][0]`) into `document`."""
    current = document
    for match in _PATH_TOKEN.finditer(path):
        key: str | int = int(match.group(3)) if match.group(3) is not None else ""
        if match.group(3) is None:
            key = match.group(1) or match.group(2)
        try:
            current = current[key]
        except (KeyError, IndexError, TypeError):
            raise ExpressionError(f"{expression!r}: no {key!r} in {_preview(current)}") from None
    return current


def to_text(value: Any) -> str:
    """A value as the service renders it into a string (booleans in lower case)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _preview(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) < 200 else text[:200] + "..."
