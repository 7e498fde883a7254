"""What the offline state machine interpreter accepts, and the check that refuses the rest.

`check_definition` walks a whole Amazon States Language definition before anything runs
(`offline.state_machine.StateMachine` calls it): the top-level fields, each state's type and
fields (`STATE_FIELDS`), its transitions, its Task resource (aws-sdk integrations only) and
every `{% ... %}` JSONata expression, parsed up front. Whatever the interpreter does not
implement raises `DefinitionError`, naming the state and the field; nothing is skipped.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

import jsonata

SDK_RESOURCE = re.compile(
    r"^arn:aws[a-z-]*:states:::aws-sdk:(?P<service>[a-z0-9-]+):(?P<action>[a-zA-Z0-9]+)$"
)
TOP_FIELDS = {"Comment", "QueryLanguage", "StartAt", "States", "Version"}
STATE_FIELDS = {
    "Task": {
        "Type",
        "Comment",
        "QueryLanguage",
        "Resource",
        "Arguments",
        "Assign",
        "Output",
        "Next",
        "End",
        "Retry",
    },
    "Choice": {"Type", "Comment", "QueryLanguage", "Choices", "Default", "Assign", "Output"},
    "Pass": {"Type", "Comment", "QueryLanguage", "Assign", "Output", "Next", "End"},
    "Succeed": {"Type", "Comment", "QueryLanguage", "Output"},
    "Fail": {"Type", "Comment", "QueryLanguage", "Error", "Cause"},
}
RULE_FIELDS = {"Condition", "Next", "Assign", "Output", "Comment"}

Compile = Callable[[str], Any]
"""Parse one `{% ... %}` string into an expression; raises jsonata.JException."""


class DefinitionError(ValueError):
    """A definition this interpreter cannot run; the message names the state and field."""


def is_expression(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("{%") and value.endswith("%}")


def check_definition(document: Mapping[str, Any], compile_expression: Compile) -> None:
    """Raise `DefinitionError` unless the interpreter runs all of `document`."""
    unknown = sorted(set(document) - TOP_FIELDS)
    if unknown:
        raise DefinitionError(f"definition: unsupported top-level field(s) {unknown}")
    if document.get("QueryLanguage") != "JSONata":
        raise DefinitionError(
            "definition: QueryLanguage must be JSONata (JSONPath definitions are not "
            f"interpreted), got {document.get('QueryLanguage')!r}"
        )
    states = document.get("States")
    if not isinstance(states, dict) or not states:
        raise DefinitionError("definition: States must be a non-empty object")
    _target(states, "definition", "StartAt", document.get("StartAt"))
    for name, state in states.items():
        _check_state(states, name, state, compile_expression)


def _target(states: Mapping[str, Any], where: str, key: str, name: Any) -> None:
    if name not in states:
        raise DefinitionError(f"{where}: {key} {name!r} is not a state of this definition")


def _check_state(
    states: Mapping[str, Any], name: str, state: Any, compile_expression: Compile
) -> None:
    where = f"state {name!r}"
    kind = state.get("Type") if isinstance(state, dict) else None
    if kind not in STATE_FIELDS:
        raise DefinitionError(
            f"{where}: Type {kind!r} is not supported (supported: {sorted(STATE_FIELDS)})"
        )
    unknown = sorted(set(state) - STATE_FIELDS[kind])
    if unknown:
        raise DefinitionError(f"{where}: unsupported field(s) {unknown} for a {kind} state")
    if state.get("QueryLanguage", "JSONata") != "JSONata":
        raise DefinitionError(f"{where}: QueryLanguage must be JSONata")
    if kind in ("Task", "Pass"):
        if ("Next" in state) == bool(state.get("End")):
            raise DefinitionError(f"{where}: set exactly one of Next or End: true")
        if "Next" in state:
            _target(states, where, "Next", state["Next"])
    if kind == "Task":
        _check_task(where, state)
    if kind == "Choice":
        _check_choice(states, where, state)
    for key in ("Assign",):
        if key in state and not isinstance(state[key], dict):
            raise DefinitionError(f"{where}: {key} must be an object")
    _compile_all(where, state, compile_expression)


def _check_task(where: str, state: dict[str, Any]) -> None:
    resource = str(state.get("Resource", ""))
    if not SDK_RESOURCE.match(resource):
        raise DefinitionError(
            f"{where}: Resource {resource!r} is not an aws-sdk integration "
            "(arn:aws:states:::aws-sdk:<service>:<action>); only those are run"
        )
    arguments = state.get("Arguments", {})
    if not (isinstance(arguments, dict) or is_expression(arguments)):
        raise DefinitionError(f"{where}: Arguments must be an object or {{% ... %}}")


def _check_choice(states: Mapping[str, Any], where: str, state: dict[str, Any]) -> None:
    choices = state.get("Choices")
    if not isinstance(choices, list) or not choices:
        raise DefinitionError(f"{where}: Choices must be a non-empty list")
    for number, rule in enumerate(choices):
        at = f"{where} Choices[{number}]"
        unknown = sorted(set(rule) - RULE_FIELDS)
        if unknown:
            raise DefinitionError(f"{at}: unsupported field(s) {unknown}")
        if not is_expression(rule.get("Condition")):
            raise DefinitionError(f"{at}: Condition must be a {{% ... %}} expression")
        _target(states, at, "Next", rule.get("Next"))
    if "Default" in state:
        _target(states, where, "Default", state["Default"])


def _compile_all(where: str, value: Any, compile_expression: Compile) -> None:
    """Parse every expression now, so a syntax error is a definition error."""
    if isinstance(value, dict):
        for item in value.values():
            _compile_all(where, item, compile_expression)
    elif isinstance(value, list):
        for item in value:
            _compile_all(where, item, compile_expression)
    elif is_expression(value):
        try:
            compile_expression(value)
        except jsonata.JException as error:
            raise DefinitionError(f"{where}: cannot parse {value!r}: {error}") from None
