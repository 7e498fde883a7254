"""Every workflow is valid against GitHub's workflow JSON schema.

The schema is the copy vendored inside check-jsonschema (SchemaStore's
github-workflow.json), read from the installed package: no network.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from .support import REPO_ROOT, load_yaml, workflow_paths

EXPECTED_WORKFLOWS = {"pull-request.yml", "main.yml", "promote.yml"}


def vendored_validator(name: str) -> jsonschema.Draft7Validator:
    vendored = resources.files("check_jsonschema.builtin_schemas.vendor") / f"{name}.json"
    schema = json.loads(vendored.read_text(encoding="utf-8"))
    assert schema["$schema"].startswith("http://json-schema.org/draft-07/")
    return jsonschema.Draft7Validator(schema)


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft7Validator:
    return vendored_validator("github-workflows")


def schema_errors(validator: jsonschema.Draft7Validator, document: Any) -> list[str]:
    return [
        f"{'/'.join(map(str, error.absolute_path)) or '<root>'}: {error.message}"
        for error in validator.iter_errors(document)
    ]


def test_the_three_workflows_exist() -> None:
    assert {p.name for p in workflow_paths()} >= EXPECTED_WORKFLOWS


@pytest.mark.parametrize("path", workflow_paths(), ids=lambda p: p.name)
def test_workflow_matches_the_github_schema(
    validator: jsonschema.Draft7Validator, path: Path
) -> None:
    assert schema_errors(validator, load_yaml(path)) == []


def test_dependabot_config_matches_its_schema() -> None:
    document = load_yaml(REPO_ROOT / ".github" / "dependabot.yml")
    assert schema_errors(vendored_validator("dependabot"), document) == []


def test_the_schema_rejects_a_broken_workflow(validator: jsonschema.Draft7Validator) -> None:
    broken = {
        "on": {"push": {"branches": ["main"]}},
        "permissions": {"id-token": "admin"},
        "jobs": {"deploy": {"steps": [{"run": "true"}]}},
    }
    errors = schema_errors(validator, broken)
    assert errors, "the vendored schema accepted an invalid workflow"
    assert any(e.startswith("permissions") for e in errors)
