"""What the offline plan records of each resource the program registers.

A `CapturedResource` carries what the Pulumi engine would hand a policy pack
(type, name, URN, parent, provider, inputs) so the same records feed the plan
report, the JSON files in `build/plan/` and the Analyzer gRPC runner.
Inputs unknown at preview time keep the engine's unknown sentinel.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pulumi.runtime import rpc

UNKNOWN = rpc.UNKNOWN
"""The engine's marker for a value not known until the resource is created."""


@dataclass(frozen=True)
class CapturedResource:
    urn: str
    type: str
    name: str
    parent: str | None
    custom: bool
    provider: str | None
    inputs: dict[str, Any]
    dependencies: tuple[str, ...] = ()


@dataclass(frozen=True)
class StackPlan:
    project: str
    stack: str
    resources: tuple[CapturedResource, ...]
    outputs: dict[str, Any] = field(default_factory=dict)

    def of_type(self, type_token: str) -> list[CapturedResource]:
        return [r for r in self.resources if r.type == type_token]

    def one(self, type_token: str, name: str) -> CapturedResource:
        for resource in self.resources:
            if resource.type == type_token and resource.name == name:
                return resource
        known = sorted(r.name for r in self.of_type(type_token))
        raise KeyError(f"no {type_token} named {name!r}; this stack has {known}")

    def to_json(self) -> str:
        document = {
            "project": self.project,
            "stack": self.stack,
            "outputs": self.outputs,
            "resources": [asdict(r) for r in self.resources],
        }
        return json.dumps(document, indent=2, sort_keys=True, default=str) + "\n"

    @classmethod
    def from_json(cls, text: str) -> StackPlan:
        document = json.loads(text)
        resources = tuple(
            CapturedResource(**{**r, "dependencies": tuple(r.get("dependencies", ()))})
            for r in document["resources"]
        )
        return cls(document["project"], document["stack"], resources, document["outputs"])

    def write(self, directory: Path) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{self.stack}.json"
        path.write_text(self.to_json())
        return path
