"""The generated pipeline definition: offline, deterministic, wired as designed."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from ml.lineage.keys import METADATA_KEYS
from ml.pipeline.code import BUNDLES, SHARED_MODULES, bundle_objects, content_hash
from ml.pipeline.contract import (
    STEP_NAMES,
    STEPS,
    PipelineConfig,
    PipelineConfigError,
    TrainerConfig,
)
from ml.pipeline.definition import build_pipeline, canonical_definition, definition_json
from ml.pipeline.sdk_isolation import isolated_sdk
from offline.pipeline.graph import all_steps, step_dependencies, topological_order
from offline.pipeline.mermaid import mermaid
from tests.ml.conftest import TRAINING_IMAGE, NetworkAttempts, make_config

with isolated_sdk("eu-west-1"):  # the builders import the SDK at their top
    from ml.pipeline import steps

REPO = Path(__file__).resolve().parents[2]


def steps_by_name(definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {step["Name"]: step for step in all_steps(definition)}


def images(value: Any) -> list[str]:
    """Every value under a key naming a container image, anywhere in the document."""
    found: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if key in ("ImageUri", "TrainingImage", "Image") and isinstance(item, str):
                found.append(item)
            else:
                found += images(item)
    elif isinstance(value, list):
        for item in value:
            found += images(item)
    return found


def test_build_makes_no_aws_call_and_no_connection(
    no_network: NetworkAttempts, config: PipelineConfig
) -> None:
    text = definition_json(replace(config, name="promote-code-guarded"))
    assert no_network == []
    assert json.loads(text)["Steps"]


def test_build_pipeline_returns_the_sdk_pipeline(no_network: NetworkAttempts) -> None:
    cfg = make_config()
    with isolated_sdk(cfg.region) as session:
        pipeline = build_pipeline(cfg, session)
        raw = json.loads(pipeline.definition())
    assert pipeline.name == cfg.name
    top_level = [step.name for step in STEPS if step.runs_if is None]
    assert [step["Name"] for step in raw["Steps"]] == top_level
    assert no_network == []


def test_a_declared_step_without_a_builder_fails_the_build(
    monkeypatch: pytest.MonkeyPatch, config: PipelineConfig
) -> None:
    # The contract's STEPS is the one list: a step missing in steps.py must not vanish silently.
    builders = {name: b for name, b in steps._BUILDERS.items() if name != "approve-model"}
    monkeypatch.setattr(steps, "_BUILDERS", builders)
    with pytest.raises(RuntimeError, match=r"contract.py declares .*add or remove a @_builds"):
        definition_json(config)


def test_definition_is_the_sdk_output_minus_the_documented_defaults(
    no_network: NetworkAttempts, config: PipelineConfig, definition_text: str
) -> None:
    with isolated_sdk(config.region) as session:
        raw = json.loads(build_pipeline(config, session).definition())
    # Each documented removal (ml/README.md), spelled out here rather than via the code.
    assert raw.pop("MlflowConfig") is None
    assert raw.pop("PipelineExperimentConfig") is None
    raw_steps = steps_by_name(raw)
    register = raw_steps["register-model"]["Arguments"]
    assert register.pop("ModelApprovalStatus") == "PendingManualApproval"
    assert register.pop("SkipModelValidation") == "None"
    (container,) = register["InferenceSpecification"]["Containers"]
    assert container.pop("Environment") == {}
    output = raw_steps["train-model"]["Arguments"]["OutputDataConfig"]
    assert output.pop("CompressionType") == "GZIP"
    # Nothing else changes, and the text is compact JSON with sorted keys.
    assert definition_text == json.dumps(raw, sort_keys=True, separators=(",", ":"))
    assert definition_text.startswith('{"Metadata":{},"Parameters":[{"DefaultValue":')
    assert '"Version":"2020-12-01"}' in definition_text
    assert no_network == []


def test_equal_configs_give_identical_definitions(definition_text: str) -> None:
    assert definition_json(make_config()) == definition_text


def test_config_changes_reach_the_definition(definition_text: str) -> None:
    changed = definition_json(make_config(training_instance_type="ml.g4dn.xlarge"))
    assert changed != definition_text
    assert '"InstanceType":"ml.g4dn.xlarge"' in changed


def test_step_names_and_types(definition: dict[str, Any]) -> None:
    steps = steps_by_name(definition)
    assert sorted(steps) == sorted(STEP_NAMES)
    assert {name: step["Type"] for name, step in steps.items()} == {
        "preprocess-data": "Processing",
        "train-model": "Training",
        "evaluate-model": "Processing",
        "register-model": "RegisterModel",
        "accuracy-check": "Condition",
        "approve-model": "Processing",
    }
    condition = steps["accuracy-check"]["Arguments"]
    assert [s["Name"] for s in condition["IfSteps"]] == ["approve-model"]
    assert condition["ElseSteps"] == []


def test_dependencies(definition: dict[str, Any]) -> None:
    dependencies = step_dependencies(definition)
    assert dependencies["preprocess-data"] == set()
    assert dependencies["train-model"] == {"preprocess-data"}
    assert dependencies["evaluate-model"] == {"preprocess-data", "train-model"}
    assert dependencies["register-model"] == {"train-model", "evaluate-model"}
    assert dependencies["accuracy-check"] == {"evaluate-model", "register-model"}
    assert dependencies["approve-model"] == {"register-model", "evaluate-model"}
    assert topological_order(definition) == [
        "preprocess-data",
        "train-model",
        "evaluate-model",
        "register-model",
        "accuracy-check",
    ]


def test_parameters(definition: dict[str, Any], config: PipelineConfig) -> None:
    parameters = {p["Name"]: (p["Type"], p["DefaultValue"]) for p in definition["Parameters"]}
    assert parameters == {
        "InputDataUri": ("String", f"s3://{config.data_bucket}/data/"),
        "LabelConflicts": ("String", "most-frequent"),
        "InputEncoding": ("String", "utf-8"),
        "InputDelimiter": ("String", ","),
        "RegularizationC": ("Float", 0.4),
        "HashBits": ("Integer", 20),
        "MaxFeatures": ("Integer", 100000),
        "NgramMax": ("Integer", 2),
        "ClassWeight": ("String", "balanced"),
        "Seed": ("Integer", 42),
        "MetricThreshold": ("Float", 0.2),
        "BaselineMargin": ("Float", 0.1),
        "ChampionTolerance": ("Float", 0.01),
    }
    steps = steps_by_name(definition)
    train = steps["train-model"]["Arguments"]["HyperParameters"]
    # Hyperparameters are strings: each number goes through Std:Join; nothing else is passed.
    assert train == {
        "trainer": "tfidf-linear",
        "class-weight": {"Get": "Parameters.ClassWeight"},
        **{
            key: {"Std:Join": {"On": "", "Values": [{"Get": f"Parameters.{parameter}"}]}}
            for key, parameter in (
                ("c", "RegularizationC"),
                ("hash-bits", "HashBits"),
                ("max-features", "MaxFeatures"),
                ("ngram-max", "NgramMax"),
                ("seed", "Seed"),
            )
        },
    }
    preprocess = steps["preprocess-data"]["Arguments"]
    dataset = next(i for i in preprocess["ProcessingInputs"] if i["InputName"] == "dataset")
    assert dataset["S3Input"]["S3Uri"] == {"Get": "Parameters.InputDataUri"}
    arguments = preprocess["AppSpecification"]["ContainerArguments"]
    for flag, parameter in (
        ("--conflicts", "LabelConflicts"),
        ("--encoding", "InputEncoding"),
        ("--delimiter", "InputDelimiter"),
    ):
        assert arguments[arguments.index(flag) + 1] == {"Get": f"Parameters.{parameter}"}
    evaluate = steps["evaluate-model"]["Arguments"]["AppSpecification"]["ContainerArguments"]
    assert evaluate[evaluate.index("--metric") + 1] == "macro_f1"
    for flag, parameter in (
        ("--threshold", "MetricThreshold"),
        ("--baseline-margin", "BaselineMargin"),
        ("--champion-tolerance", "ChampionTolerance"),
    ):
        assert evaluate[evaluate.index(flag) + 1] == {
            "Std:Join": {"On": "", "Values": [{"Get": f"Parameters.{parameter}"}]}
        }
    # The champion is the stack's group's; the train split gives the data hash and vocabulary.
    assert evaluate[evaluate.index("--model-package-group") + 1] == config.model_package_group
    assert evaluate[evaluate.index("--train-dir") + 1] == "/opt/ml/processing/input/train"
    inputs = steps["evaluate-model"]["Arguments"]["ProcessingInputs"]
    (train_input,) = [i for i in inputs if i["InputName"] == "train"]
    assert train_input["S3Input"]["LocalPath"] == "/opt/ml/processing/input/train"
    assert train_input["S3Input"]["S3Uri"] == {
        "Get": "Steps.preprocess-data.ProcessingOutputConfig.Outputs['train'].S3Output.S3Uri"
    }


def _json_get(path: str) -> dict[str, Any]:
    return {
        "Std:JsonGet": {
            "Path": path,
            "PropertyFile": {"Get": "Steps.evaluate-model.PropertyFiles.EvaluationReport"},
        }
    }


@pytest.mark.parametrize("metric", ["macro_f1", "accuracy"])
def test_condition_judges_the_configured_metric_against_threshold_and_baseline(
    metric: str,
) -> None:
    definition = json.loads(definition_json(make_config(approval_metric=metric)))
    steps = steps_by_name(definition)
    assert steps["evaluate-model"]["PropertyFiles"] == [
        {
            "FilePath": "evaluation.json",
            "OutputName": "evaluation",
            "PropertyFileName": "EvaluationReport",
        }
    ]
    assert steps["accuracy-check"]["Arguments"]["Conditions"] == [
        {
            "Type": "GreaterThanOrEqualTo",
            "LeftValue": _json_get(f"multiclass_classification_metrics.{metric}.value"),
            "RightValue": {"Get": "Parameters.MetricThreshold"},
        },
        {
            "Type": "GreaterThanOrEqualTo",
            "LeftValue": _json_get(f"baseline_comparison.{metric}.margin"),
            "RightValue": {"Get": "Parameters.BaselineMargin"},
        },
        {
            "Type": "LessThanOrEqualTo",
            "LeftValue": _json_get("champion.shortfall"),
            "RightValue": {"Get": "Parameters.ChampionTolerance"},
        },
    ]
    evaluate = steps["evaluate-model"]["Arguments"]["AppSpecification"]["ContainerArguments"]
    assert evaluate[evaluate.index("--metric") + 1] == metric


def test_every_image_is_the_digest_pinned_training_image(definition: dict[str, Any]) -> None:
    found = images(definition)
    # 4 processing/training jobs + the registered inference container
    assert len(found) == 5
    assert set(found) == {TRAINING_IMAGE}


def test_register_attaches_metrics_to_the_stack_group(
    definition: dict[str, Any], config: PipelineConfig
) -> None:
    register = steps_by_name(definition)["register-model"]["Arguments"]
    assert register["ModelPackageGroupName"] == config.model_package_group
    # Left to the service default (PendingManualApproval); approve-model approves.
    assert "ModelApprovalStatus" not in register
    statistics = register["ModelMetrics"]["ModelQuality"]["Statistics"]
    assert statistics["ContentType"] == "application/json"
    assert statistics["S3Uri"]["Std:Join"]["Values"][-1] == "evaluation.json"
    (container,) = register["InferenceSpecification"]["Containers"]
    assert container["ModelDataUrl"] == {"Get": "Steps.train-model.ModelArtifacts.S3ModelArtifacts"}
    # Why the package was (not) approved, in words, and the run's lineage, from the report.
    assert register["ModelPackageDescription"] == _json_get("summary")
    assert register["CustomerMetadataProperties"] == {
        key: _json_get(f"lineage.{key}") for key in METADATA_KEYS
    }
    drift = register["DriftCheckBaselines"]["ModelDataQuality"]["Statistics"]
    assert drift["ContentType"] == "application/json"
    assert drift["S3Uri"] == {
        "Std:Join": {
            "On": "/",
            "Values": [
                {
                    "Get": "Steps.evaluate-model.ProcessingOutputConfig.Outputs['evaluation']"
                    ".S3Output.S3Uri"
                },
                "drift_baseline.json",
            ],
        }
    }


def test_code_comes_from_the_content_addressed_uris(
    definition: dict[str, Any], config: PipelineConfig
) -> None:
    bucket = config.artifacts_bucket
    for script in BUNDLES:
        assert re.fullmatch(
            f"s3://{bucket}/pipeline-code/[0-9a-f]{{64}}/", config.code_uris[script]
        )
        assert bundle_objects(script) == {
            f"{config.code_uris[script].removeprefix(f's3://{bucket}/')}{name}": path
            for name, path in BUNDLES[script].items()
        }
    assert BUNDLES["evaluate.py"].keys() == {
        "limits.py",
        "evaluate.py",
        "champions.py",
        "drift_baseline.py",
        "run_record.py",
        "scoring.py",
        "tracking.py",
        "tracking_worker.py",
    }
    assert BUNDLES["preprocess.py"].keys() == {"preprocess.py", "notes_csv.py", "limits.py"}
    assert len(set(config.code_uris.values())) == len(BUNDLES)
    bundled = {name for files in BUNDLES.values() for name in files}
    steps = {p.name for p in (REPO / "ml" / "steps").glob("[!_]*.py")}
    assert bundled == steps | set(SHARED_MODULES)  # limits.py: the stack's own defaults
    for script in ("preprocess.py", "train.py", "evaluate.py"):
        assert BUNDLES[script]["limits.py"] == REPO / "ml" / "limits.py"
    steps = steps_by_name(definition)
    for step, script in (
        ("preprocess-data", "preprocess.py"),
        ("evaluate-model", "evaluate.py"),
        ("approve-model", "approve.py"),
    ):
        arguments = steps[step]["Arguments"]
        code = next(i for i in arguments["ProcessingInputs"] if i["InputName"] == "code")
        assert code["S3Input"]["S3Uri"] == config.code_uris[script]
        assert arguments["AppSpecification"]["ContainerEntrypoint"] == [
            "python3",
            f"/opt/ml/processing/input/code/{script}",
        ]
    channels = {
        c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"]
        for c in steps["train-model"]["Arguments"]["InputDataConfig"]
    }
    assert channels["code"] == config.code_uris["train.py"]


def test_a_bundle_hash_follows_every_file_it_holds(tmp_path: Path) -> None:
    script, module = tmp_path / "step.py", tmp_path / "tracking.py"
    script.write_text("import tracking\n")
    module.write_text("A = 1\n")
    files = {"step.py": script, "tracking.py": module}
    before = content_hash(files)
    assert content_hash(dict(reversed(files.items()))) == before  # order does not matter
    module.write_text("A = 2\n")
    assert content_hash(files) != before  # a module's change is a new bundle
    assert content_hash({"step.py": script}) != content_hash(files)
    assert content_hash({"other.py": script, "tracking.py": module}) != content_hash(files)


def test_preprocess_is_never_cached(definition: dict[str, Any]) -> None:
    # Its input is the fixed InputDataUri prefix: a cache hit would hide a data change.
    preprocess = steps_by_name(definition)["preprocess-data"]
    assert preprocess.get("CacheConfig", {"Enabled": False})["Enabled"] is False


def test_cache_and_kms(definition: dict[str, Any], config: PipelineConfig) -> None:
    steps = steps_by_name(definition)
    for name in ("train-model", "evaluate-model"):
        assert steps[name]["CacheConfig"] == {"Enabled": True, "ExpireAfter": "P30D"}
    assert "CacheConfig" not in steps["preprocess-data"]
    assert steps["train-model"]["Arguments"]["OutputDataConfig"]["KmsKeyId"] == config.kms_key_arn
    assert (
        steps["train-model"]["Arguments"]["ResourceConfig"]["VolumeKmsKeyId"] == config.kms_key_arn
    )
    for name in ("preprocess-data", "evaluate-model"):
        arguments = steps[name]["Arguments"]
        assert arguments["ProcessingOutputConfig"]["KmsKeyId"] == config.kms_key_arn
        assert (
            arguments["ProcessingResources"]["ClusterConfig"]["VolumeKmsKeyId"]
            == config.kms_key_arn
        )


def test_outputs_are_scoped_per_execution(
    definition: dict[str, Any], config: PipelineConfig
) -> None:
    outputs = steps_by_name(definition)["preprocess-data"]["Arguments"]["ProcessingOutputConfig"]
    uri = outputs["Outputs"][0]["S3Output"]["S3Uri"]["Std:Join"]["Values"]
    assert uri[:4] == ["s3:/", config.artifacts_bucket, "pipelines", config.name]
    assert {"Get": "Execution.PipelineExecutionId"} in uri


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        (
            "training_image_uri",
            "111111111111.dkr.ecr.eu-west-1.amazonaws.com/x:latest",
            "pinned by digest",
        ),
        ("role_arn", "my-role", "IAM role ARN"),
        ("code_uris", {}, "code_uris lacks"),
        ("cache_expire_after", "30 days", "ISO 8601"),
        ("metric_threshold", 1.5, "metric_threshold"),
        ("baseline_margin", -0.1, "baseline_margin"),
        ("champion_tolerance", 1.5, "champion_tolerance must be 0-1"),
        ("approval_metric", "auc", "approval_metric must be one of"),
        ("conflicts", "first", "conflicts must be one of"),
        ("trainer", TrainerConfig(hash_bits=30), "trainer.hash_bits must be 10-24"),
        ("trainer", TrainerConfig(class_weight="auto"), "trainer.class_weight"),
        ("mlflow_tracking_arn", "http://127.0.0.1:5000", "tracking server ARN"),
        (
            "mlflow_tracking_arn",
            "arn:aws:sagemaker:eu-west-1:222222222222:mlflow-tracking-server/t",
            "mlflow_experiment is required",
        ),
        ("commit", "main", "40-hex git commit"),
        ("training_instance_type", "m5.large", "ml.m5.large"),
    ],
)
def test_config_rejects_bad_values(field: str, value: Any, message: str) -> None:
    with pytest.raises(PipelineConfigError, match=message):
        make_config(**{field: value})


def test_mermaid_renders_every_step_and_edge(definition: dict[str, Any]) -> None:
    chart = mermaid(definition)
    assert chart.startswith("flowchart TD\n")
    for name in STEP_NAMES:
        assert f'"{name}<br/>' in chart
    ids = {
        name: line.split('"')[0].strip().rstrip("[{")
        for name in STEP_NAMES
        for line in chart.splitlines()
        if f'"{name}<br/>' in line
    }
    assert f"{ids['train-model']} --> {ids['evaluate-model']}" in chart
    assert f"{ids['accuracy-check']} -- if --> {ids['approve-model']}" in chart
    edges = sum(len(upstream) for upstream in step_dependencies(definition).values())
    assert edges == 9
    assert chart.count("-->") == edges + 1  # plus the condition's "if" edge


def test_canonical_definition_drops_only_defaults_and_nulls() -> None:
    raw: dict[str, Any] = {
        "Version": "2020-12-01",
        "MlflowConfig": None,
        "Steps": [
            {
                "Name": "register",
                "Type": "RegisterModel",
                "Arguments": {
                    "ModelApprovalStatus": "PendingManualApproval",
                    "SkipModelValidation": "None",
                    "InferenceSpecification": {"Containers": [{"Image": "i", "Environment": {}}]},
                },
            },
            {
                "Name": "register-approved",
                "Type": "RegisterModel",
                "Arguments": {
                    "ModelApprovalStatus": "Approved",
                    "InferenceSpecification": {
                        "Containers": [{"Image": "i", "Environment": {"A": "1"}}]
                    },
                },
            },
            {
                "Name": "train",
                "Type": "Training",
                "Arguments": {
                    "OutputDataConfig": {"S3OutputPath": "s3://b/p", "CompressionType": "GZIP"}
                },
            },
        ],
    }
    result = canonical_definition(raw)
    assert "MlflowConfig" not in result
    first, second, train = result["Steps"]
    assert first["Arguments"] == {"InferenceSpecification": {"Containers": [{"Image": "i"}]}}
    assert second["Arguments"]["ModelApprovalStatus"] == "Approved"
    assert second["Arguments"]["InferenceSpecification"]["Containers"][0]["Environment"] == {
        "A": "1"
    }
    assert train["Arguments"]["OutputDataConfig"] == {"S3OutputPath": "s3://b/p"}
