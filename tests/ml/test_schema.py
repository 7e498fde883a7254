"""Every generated definition validates against AWS's published definition schema.

The schema lives in ../shared/reference (CI has it; a fresh clone may not).
It predates seven parts of the definition language and the APIs the pipeline
needs, so the test adds exactly those to an in-memory copy and nothing else:

- `PropertyFiles` on processing steps (how `evaluation.json` is declared);
- `Std:JsonGet` values (how the condition reads it);
- `Std:Join` values (defined in the schema as `JoinFunction` but never
  referenced; used for hyperparameters and per-execution output paths);
- `Environment` of training steps (CreateTrainingJob's `Environment`, a
  TrainingEnvironmentMap in botocore: the tracking URI and the run's lineage);
- the top-level `MlflowConfig` (`MlflowResourceArn`, `MlflowExperimentName`:
  what sagemaker SDK v3 writes for a pipeline tracked in MLflow);
- `CustomerMetadataProperties` and `DriftCheckBaselines` of the register step
  (CreateModelPackage's fields: the package's lineage and its drift baseline).

Every other part of the definition is validated as published, strictly.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from ml.pipeline.definition import definition_json
from tests.ml.conftest import make_config

REPO = Path(__file__).resolve().parents[2]
SCHEMA = REPO.parent / "shared" / "reference" / "sagemaker-pipeline-definition.schema.json"
ARGUMENT_VALUES = (
    "StringArgumentValue",
    "IntegerArgumentValue",
    "FloatArgumentValue",
    "BooleanArgumentValue",
)


@pytest.fixture(scope="module")
def published() -> dict[str, Any]:
    if not SCHEMA.is_file():
        pytest.skip(
            f"{SCHEMA} is absent: AWS's pipeline definition schema is provided at "
            "../shared/reference/ in CI and is not copied into this project"
        )
    document: dict[str, Any] = json.loads(SCHEMA.read_text())
    return document


def with_language_gaps_filled(schema: dict[str, Any]) -> dict[str, Any]:
    extended = copy.deepcopy(schema)
    definitions = extended["definitions"]
    definitions["JoinFunction"] = {
        "type": "object",
        "properties": {
            "Std:Join": {
                "type": "object",
                "properties": {
                    "On": {"type": "string"},
                    "Values": {"type": "array", "items": {"$ref": "#/definitions/JoinValue"}},
                },
                "required": ["On", "Values"],
                "additionalProperties": False,
            }
        },
        "required": ["Std:Join"],
        "additionalProperties": False,
    }
    definitions["JoinValue"] = {
        "anyOf": [
            {"type": ["string", "number", "boolean"]},
            {"$ref": "#/definitions/GetFunction"},
        ]
    }
    definitions["JsonGetFunction"] = {
        "type": "object",
        "properties": {
            "Std:JsonGet": {
                "type": "object",
                "properties": {
                    "PropertyFile": {"$ref": "#/definitions/GetFunction"},
                    "Path": {"type": "string"},
                },
                "required": ["PropertyFile", "Path"],
                "additionalProperties": False,
            }
        },
        "required": ["Std:JsonGet"],
        "additionalProperties": False,
    }
    for name in ARGUMENT_VALUES:
        definitions[name]["oneOf"] = [
            *definitions[name]["oneOf"],
            {"$ref": "#/definitions/JoinFunction"},
            {"$ref": "#/definitions/JsonGetFunction"},
        ]
    definitions["TrainingStep"]["properties"]["Arguments"]["properties"]["Environment"] = {
        "type": "object",
        "additionalProperties": {"$ref": "#/definitions/StringArgumentValue"},
    }
    extended["properties"]["MlflowConfig"] = {
        "type": "object",
        "properties": {
            "MlflowResourceArn": {"type": "string"},
            "MlflowExperimentName": {"type": "string"},
        },
        "required": ["MlflowResourceArn"],
        "additionalProperties": False,
    }
    register = definitions["RegisterModelStep"]["properties"]["Arguments"]["properties"]
    register["CustomerMetadataProperties"] = {
        "type": "object",
        "additionalProperties": {"$ref": "#/definitions/StringArgumentValue"},
    }
    source = register["ModelMetrics"]["properties"]["ModelQuality"]["properties"]["Statistics"]
    register["DriftCheckBaselines"] = {
        "type": "object",
        "properties": {
            "ModelDataQuality": {
                "type": "object",
                "properties": {"Statistics": source, "Constraints": source},
                "additionalProperties": False,
            }
        },
        "additionalProperties": False,
    }
    definitions["ProcessingStep"]["properties"]["PropertyFiles"] = {
        "type": "array",
        "items": {
            "type": "object",
            "properties": {
                "PropertyFileName": {"type": "string"},
                "OutputName": {"type": "string"},
                "FilePath": {"type": "string"},
            },
            "required": ["PropertyFileName", "OutputName", "FilePath"],
            "additionalProperties": False,
        },
    }
    return extended


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"kms_key_arn": None},
        {"training_instance_type": "ml.g4dn.xlarge", "cache_expire_after": "PT12H"},
        {
            "mlflow_tracking_arn": (
                "arn:aws:sagemaker:eu-west-1:222222222222:mlflow-tracking-server/promote-code-dev-mlflow"
            ),
            "mlflow_experiment": "promote-code-dev",
            "commit": "0" * 40,
        },
    ],
    ids=["dev-like", "no-kms", "gpu", "tracked"],
)
def test_definition_validates(published: dict[str, Any], overrides: dict[str, Any]) -> None:
    schema = with_language_gaps_filled(published)
    definition = json.loads(definition_json(make_config(**overrides)))
    validator = jsonschema.Draft7Validator(schema)
    errors = sorted(validator.iter_errors(definition), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(
        f"{'/'.join(map(str, e.absolute_path))}: {e.message[:300]}" for e in errors[:10]
    )


def without_known_gaps(value: Any, *, training: bool = False) -> Any:
    """The definition without the overlay's constructs: Join/JsonGet values replaced by a Get,
    PropertyFiles, MlflowConfig and training steps' Environment removed."""
    if isinstance(value, dict):
        if "Std:Join" in value or "Std:JsonGet" in value:
            return {"Get": "Parameters.Placeholder"}
        dropped = {
            "PropertyFiles",
            "MlflowConfig",
            "CustomerMetadataProperties",
            "DriftCheckBaselines",
        } | ({"Environment"} if training else set())
        inner = value.get("Type") == "Training"
        return {
            k: without_known_gaps(v, training=inner or (training and k == "Arguments"))
            for k, v in value.items()
            if k not in dropped
        }
    if isinstance(value, list):
        return [without_known_gaps(item) for item in value]
    return value


def test_overlay_covers_only_the_known_gaps(published: dict[str, Any]) -> None:
    definition = json.loads(definition_json(make_config()))
    validator = jsonschema.Draft7Validator(published)
    assert list(validator.iter_errors(definition)), (
        "the published schema now accepts the definition as is: drop the overlay"
    )
    # Take out exactly the constructs the overlay adds: the rest must pass as published.
    errors = list(validator.iter_errors(without_known_gaps(definition)))
    assert not errors, [e.message[:200] for e in errors]


def test_schema_catches_a_broken_definition(published: dict[str, Any]) -> None:
    schema = with_language_gaps_filled(published)
    definition = json.loads(definition_json(make_config()))
    definition["Steps"][0]["Type"] = "Processing "
    definition["Steps"][1]["Arguments"]["ResourceConfig"]["InstanceCount"] = "one"
    assert len(list(jsonschema.Draft7Validator(schema).iter_errors(definition))) >= 2
