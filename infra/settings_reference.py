"""Render the settings reference table of the README from the pydantic models.

`python -m infra.settings_reference [--write]` prints it or updates README.md;
a test keeps the README in step.
"""

from __future__ import annotations

import sys

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from infra.context import REPO_ROOT
from infra.settings import EnvironmentSettings, IdentitySettings, OpsSettings


def _default(field_default: object) -> str:
    if field_default is PydanticUndefined:
        return "required"
    if isinstance(field_default, BaseModel):
        return "(object)"
    return f"`{field_default!r}`" if field_default not in ((), None) else "none"


def rows(model: type[BaseModel], prefix: str = "") -> list[tuple[str, str, str]]:
    found: list[tuple[str, str, str]] = []
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            found += rows(annotation, f"{key}.")
            continue
        default = (
            "required"
            if field.is_required()
            else _default(
                field.default_factory() if field.default_factory is not None else field.default  # type: ignore[call-arg]
            )
        )
        found.append((key, default, field.description or ""))
    return found


def table() -> str:
    lines = ["| key (under `promote:settings`) | stacks | default | meaning |", "|---|---|---|---|"]
    models: dict[str, type[BaseModel]] = {
        "identity": IdentitySettings,
        "ops": OpsSettings,
        "dev, staging, prod": EnvironmentSettings,
    }
    found = {kind: {k: (d, t) for k, d, t in rows(model)} for kind, model in models.items()}
    for key in dict.fromkeys(k for keys in found.values() for k in keys):
        kinds = [kind for kind, keys in found.items() if key in keys]
        stacks = "all" if len(kinds) == len(models) else "; ".join(kinds)
        default, text = found[kinds[0]][key]
        lines.append(f"| `{key}` | {stacks} | {default} | {text} |")
    return "\n".join(lines) + "\n"


START, END = "<!-- settings-table:start -->\n", "<!-- settings-table:end -->"


def embed(readme: str) -> str:
    """The README text with the table between its markers replaced by the current one."""
    head, rest = readme.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}{table()}{END}{tail}"


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        path = REPO_ROOT / "README.md"
        path.write_text(embed(path.read_text()))
    else:
        print(table(), end="")
