"""An offline interpreter of Step Functions state machines in the JSONata query language.

`StateMachine(definition).run(input, clients)` walks an Amazon States Language definition
as Step Functions would, calling AWS through boto3 clients (local AWS in the demos and
tests). The definition is checked whole before anything runs
(`offline.state_machine_check`); what this interpreter does not implement is refused there,
naming the state and the field, never skipped silently.

Supported (the subset a small orchestration uses):

- top level: `QueryLanguage: JSONata` (required: JSONPath is not interpreted), `StartAt`,
  `States`, `Comment`, `Version`;
- `Task` with `Resource: arn:<partition>:states:::aws-sdk:<service>:<action>`: the boto3
  client of `<service>` (a few Step Functions names differ from boto3's: `SDK_SERVICES`) and
  the operation `<Action>`, called with the evaluated `Arguments` (PascalCase, the API's own
  names); the result is the response without `ResponseMetadata`, timestamps as ISO 8601
  strings as the SDK integrations return them. `Assign`, `Output`, `Next`/`End`. `Retry`
  is accepted and not applied: local AWS answers the same way twice, so a retry could only
  repeat the failure. A failed call ends the execution FAILED (`Catch` is refused);
- `Choice` with `Choices` of `Condition` + `Next` (+ `Assign`, `Output`), `Default`;
- `Pass` (`Assign`, `Output`, `Next`/`End`), `Succeed` (`Output`), `Fail` (`Error`, `Cause`).

JSONata: a string field `{% expression %}` is evaluated (jsonata-python) with
`$states.input`, `$states.result` (Task, after the call), `$states.context` and the
variables `Assign` set; Step Functions' own `$uuid()` and `$parse()` are provided. As in
Step Functions, every `Assign` of a state is evaluated with the variables as they were
when the state was entered, and then all are set.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import jsonata
from botocore import xform_name
from botocore.exceptions import BotoCoreError, ClientError

from offline.state_machine_check import SDK_RESOURCE, check_definition, is_expression

SDK_SERVICES = {"sfn": "stepfunctions", "eventbridge": "events", "cloudwatchlogs": "logs"}
"""Step Functions' service names in aws-sdk ARNs that are not boto3's client names."""
MAX_TRANSITIONS = 1000
"""A definition that loops longer than this is stopped (Step Functions allows 25,000 events)."""


class _StateFailedError(Exception):
    def __init__(self, error: str, cause: str) -> None:
        super().__init__(f"{error}: {cause}")
        self.error, self.cause = error, cause


@dataclass(frozen=True)
class SdkCall:
    """One AWS call a Task made: `service:action` and the arguments it sent."""

    state: str
    service: str
    action: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class Execution:
    """How a run ended: status, the states entered in order, output or error."""

    status: str
    """`SUCCEEDED` or `FAILED`."""
    path: tuple[str, ...]
    output: Any = None
    error: str | None = None
    cause: str | None = None
    variables: dict[str, Any] = field(default_factory=dict)
    calls: tuple[SdkCall, ...] = ()

    @property
    def final_state(self) -> str:
        return self.path[-1]


def _jsonable(value: Any) -> Any:
    """An SDK response as Step Functions hands it on: JSON types, ISO 8601 timestamps."""
    if isinstance(value, Mapping):
        return {k: _jsonable(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        text = value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
        return f"{text}Z"
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, bytes | bytearray) or hasattr(value, "read"):
        raise _StateFailedError("States.Runtime", "a binary or streaming response is not supported")
    return value


class StateMachine:
    """A checked definition, ready to run any number of times (else `DefinitionError`)."""

    def __init__(self, definition: Mapping[str, Any] | str) -> None:
        document = json.loads(definition) if isinstance(definition, str) else dict(definition)
        self.definition: dict[str, Any] = document
        self._compiled: dict[str, Any] = {}
        check_definition(self.definition, self._expression)

    def _expression(self, text: str) -> Any:
        if text not in self._compiled:
            expression = jsonata.Jsonata(text[2:-2].strip())
            expression.register_lambda("uuid", lambda: str(uuid.uuid4()))
            expression.register_lambda("parse", json.loads)
            self._compiled[text] = expression
        return self._compiled[text]

    def _evaluate(self, value: Any, bindings: dict[str, Any]) -> Any:
        if isinstance(value, dict):
            return {k: self._evaluate(v, bindings) for k, v in value.items()}
        if isinstance(value, list):
            return [self._evaluate(v, bindings) for v in value]
        if is_expression(value):
            try:
                return self._expression(value).evaluate(None, bindings)
            except jsonata.JException as error:
                raise _StateFailedError(
                    "States.QueryEvaluationError", f"{value}: {error}"
                ) from None
        return value

    def run(
        self,
        execution_input: Any,
        clients: Callable[[str], Any],
        *,
        name: str = "local",
        max_transitions: int = MAX_TRANSITIONS,
    ) -> Execution:
        """Run from `StartAt` on `execution_input`; `clients(service)` gives boto3 clients."""
        variables: dict[str, Any] = {}
        calls: list[SdkCall] = []
        path: list[str] = []
        current = self.definition["StartAt"]
        data = execution_input
        started = datetime.now(UTC).isoformat()
        context = {
            "Execution": {"Id": name, "Name": name, "Input": execution_input, "StartTime": started},
            "StateMachine": {"Id": name, "Name": name},
        }
        for _ in range(max_transitions):
            path.append(current)
            state = self.definition["States"][current]
            states = {
                "input": data,
                "context": {
                    **context,
                    "State": {"Name": current, "EnteredTime": datetime.now(UTC).isoformat()},
                },
            }
            try:
                outcome = self._step(
                    current,
                    state=state,
                    states=states,
                    variables=variables,
                    clients=clients,
                    calls=calls,
                )
            except _StateFailedError as failure:
                return Execution(
                    "FAILED",
                    tuple(path),
                    None,
                    failure.error,
                    failure.cause,
                    dict(variables),
                    tuple(calls),
                )
            data, following = outcome
            if following is None:
                return Execution(
                    "SUCCEEDED", tuple(path), data, variables=dict(variables), calls=tuple(calls)
                )
            current = following
        return Execution(
            "FAILED",
            tuple(path),
            None,
            "States.Runtime",
            f"more than {max_transitions} transitions",
            dict(variables),
            tuple(calls),
        )

    def _step(
        self,
        name: str,
        *,
        state: dict[str, Any],
        states: dict[str, Any],
        variables: dict[str, Any],
        clients: Callable[[str], Any],
        calls: list[SdkCall],
    ) -> tuple[Any, str | None]:
        """(the state's output, the next state or None at the end); may raise _StateFailedError."""
        kind = state["Type"]
        bindings = {**variables, "states": states}
        if kind == "Fail":
            error = self._evaluate(state.get("Error", "States.Fail"), bindings)
            raise _StateFailedError(
                str(error), str(self._evaluate(state.get("Cause", ""), bindings))
            )
        if kind == "Choice":
            for rule in state["Choices"]:
                matched = self._evaluate(rule["Condition"], bindings)
                if not isinstance(matched, bool):
                    raise _StateFailedError(
                        "States.QueryEvaluationError",
                        f"{name}: Condition {rule['Condition']} gave {matched!r}, not a boolean",
                    )
                if matched:
                    return self._leave(rule, bindings, variables, states["input"]), rule["Next"]
            if "Default" not in state:
                raise _StateFailedError("States.NoChoiceMatched", f"{name}: no Choice matched")
            return self._leave(state, bindings, variables, states["input"]), state["Default"]
        result = states["input"]
        if kind == "Task":
            result = self._call(name, state, bindings, clients, calls)
            states = {**states, "result": result}
            bindings = {**variables, "states": states}
        output = self._leave(state, bindings, variables, result)
        return output, None if state.get("End") or kind == "Succeed" else state.get("Next")

    def _leave(
        self,
        holder: dict[str, Any],
        bindings: dict[str, Any],
        variables: dict[str, Any],
        default: Any,
    ) -> Any:
        """Evaluate Output (default: `default`) and Assign with the entry bindings; assign."""
        output = self._evaluate(holder["Output"], bindings) if "Output" in holder else default
        assigned = {key: self._evaluate(v, bindings) for key, v in holder.get("Assign", {}).items()}
        variables.update(assigned)
        return output

    def _call(
        self,
        name: str,
        state: dict[str, Any],
        bindings: dict[str, Any],
        clients: Callable[[str], Any],
        calls: list[SdkCall],
    ) -> Any:
        found = SDK_RESOURCE.match(state["Resource"])
        assert found is not None  # checked
        service, action = found["service"], found["action"]
        arguments = self._evaluate(state.get("Arguments", {}), bindings)
        if not isinstance(arguments, dict):
            raise _StateFailedError("States.Runtime", f"{name}: Arguments gave {arguments!r}")
        client = clients(SDK_SERVICES.get(service, service))
        operation = action[0].upper() + action[1:]
        if operation not in client.meta.service_model.operation_names:
            raise _StateFailedError(
                "States.Runtime", f"{name}: {service} has no action {action!r} ({operation})"
            )
        calls.append(SdkCall(name, service, action, arguments))
        try:
            response = getattr(client, xform_name(operation))(**arguments)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "Unknown")
            service_id = client.meta.service_model.service_id.replace(" ", "")
            raise _StateFailedError(f"{service_id}.{code}", str(error)) from None
        except BotoCoreError as error:  # parameter validation, endpoint problems
            raise _StateFailedError("States.Runtime", f"{name}: {error}") from None
        response.pop("ResponseMetadata", None)
        return _jsonable(response)
