"""The SDK behaviours `ml.pipeline.sdk_offline` works around are still there, and still fixed.

Each test pins one assumption; when a sagemaker upgrade breaks one, this file
says which workaround to revisit (and which may simply be deleted).
"""

from __future__ import annotations

import inspect
import os
from importlib.metadata import version
from typing import Any

import boto3
import pytest

from ml.pipeline import sdk_offline
from ml.pipeline.sdk_offline import (
    SESSION_CONFIG,
    TESTED_SDK_VERSIONS,
    canonical_definition,
    offline_sdk,
    pipeline_session,
)

# Importing the SDK outside offline_sdk is exactly what workaround 1 exists for.
with offline_sdk("eu-west-1"):
    from sagemaker.ai_registry import air_hub
    from sagemaker.core.common_utils import resolve_value_from_config
    from sagemaker.core.config.config_manager import SageMakerConfig
    from sagemaker.core.config.config_schema import TELEMETRY_OPT_OUT_PATH
    from sagemaker.core.helper import iam_role_resolver
    from sagemaker.core.local.local_session import LocalSagemakerClient
    from sagemaker.mlops.workflow import steps


def test_installed_sdk_is_a_tested_version() -> None:
    installed = version("sagemaker")
    assert installed in TESTED_SDK_VERSIONS, (
        f"sagemaker {installed} is installed but the offline workarounds were checked against "
        f"{sorted(TESTED_SDK_VERSIONS)}: run tests/ml, re-read ml/pipeline/sdk_offline.py and "
        "add the version to TESTED_SDK_VERSIONS"
    )


def test_air_hub_still_creates_a_client_at_import() -> None:
    # Workaround 1: the default boto3 session during import.

    body = inspect.getsource(air_hub.AIRHub)
    assert 'boto3.client("sagemaker")' in body


def test_processing_step_still_reads_local_client_method_names() -> None:
    # Workaround 2: the stand-in must offer every name the steps read.

    for cls in (steps.ProcessingStep, steps.TransformStep):
        assert "LocalSagemakerClient()." in inspect.getsource(cls.__init__)
    for name in ("create_processing_job", "create_transform_job"):
        assert callable(getattr(LocalSagemakerClient, name))
        assert callable(getattr(sdk_offline._LocalClientNames, name))


def test_offline_sdk_patches_and_restores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_PROFILE", "no-such-profile")
    monkeypatch.delenv("SAGEMAKER_VALIDATE_ROLE", raising=False)
    before_default = boto3.DEFAULT_SESSION
    before_validate = SageMakerConfig.__dict__["validate_sagemaker_config"]
    with offline_sdk("eu-west-1") as session:
        assert boto3.DEFAULT_SESSION is session
        assert session.region_name == "eu-west-1"
        assert steps.LocalSagemakerClient is sdk_offline._LocalClientNames
        assert os.environ["SAGEMAKER_VALIDATE_ROLE"] == "false"
        assert "AWS_PROFILE" not in os.environ
        # Sessions made inside ignore the machine's AWS config entirely.
        assert boto3.session.Session().region_name is None
    assert os.environ["AWS_PROFILE"] == "no-such-profile"
    assert "SAGEMAKER_VALIDATE_ROLE" not in os.environ
    assert boto3.DEFAULT_SESSION is before_default
    assert SageMakerConfig.__dict__["validate_sagemaker_config"] is before_validate


def test_role_validation_is_still_switched_by_the_environment() -> None:
    # Workaround 3: SAGEMAKER_VALIDATE_ROLE=false during the build.

    source = inspect.getsource(iam_role_resolver.resolve_and_validate_role)
    assert 'os.getenv("SAGEMAKER_VALIDATE_ROLE"' in source


def test_session_config_is_valid_and_opts_out_of_telemetry() -> None:
    # Workaround 4: telemetry off via the session's config.

    SageMakerConfig.validate_sagemaker_config(SESSION_CONFIG)
    with offline_sdk("eu-west-1") as boto_session:
        session = pipeline_session(boto_session, "some-bucket")
        assert session.sagemaker_config is SESSION_CONFIG
        opted_out = resolve_value_from_config(
            direct_input=None,
            config_path=TELEMETRY_OPT_OUT_PATH,
            default_value=False,
            sagemaker_session=session,
        )
    assert opted_out is True


def test_other_configs_are_still_validated() -> None:

    with offline_sdk("eu-west-1"):
        try:
            SageMakerConfig.validate_sagemaker_config({"SchemaVersion": "1.0", "Bogus": 1})
        except Exception as error:  # jsonschema's ValidationError
            assert "Bogus" in str(error)
        else:
            raise AssertionError("an invalid SDK config was accepted")


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
