"""The SDK behaviours `ml.pipeline.sdk_isolation` works around are still there, and still fixed.

Each test pins one assumption; when a sagemaker upgrade breaks one, this file
says which workaround to revisit (and which may simply be deleted).
"""

from __future__ import annotations

import inspect
import os
from importlib.metadata import version
from typing import Any

import boto3
import jsonschema
import pytest

from ml.pipeline import sdk_isolation
from ml.pipeline.definition import definition_json
from ml.pipeline.sdk_isolation import (
    SESSION_CONFIG,
    TESTED_SDK_VERSIONS,
    isolated_boto_session,
    isolated_sdk,
    pipeline_session,
)
from tests.ml.conftest import make_config

# Importing the SDK outside isolated_sdk is exactly what workaround 1 exists for.
with isolated_sdk("eu-west-1"):
    from sagemaker.ai_registry import air_hub
    from sagemaker.core.common_utils import resolve_value_from_config
    from sagemaker.core.config.config_manager import SageMakerConfig
    from sagemaker.core.config.config_schema import TELEMETRY_OPT_OUT_PATH
    from sagemaker.core.helper import iam_role_resolver, session_helper
    from sagemaker.core.local.local_session import LocalSagemakerClient
    from sagemaker.mlops.workflow import steps


def test_installed_sdk_is_a_tested_version() -> None:
    installed = version("sagemaker")
    assert installed in TESTED_SDK_VERSIONS, (
        f"sagemaker {installed} is installed but the offline workarounds were checked against "
        f"{sorted(TESTED_SDK_VERSIONS)}: run tests/ml, re-read ml/pipeline/sdk_isolation.py and "
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
        assert callable(getattr(sdk_isolation._LocalClientNames, name))


def test_isolated_sdk_patches_and_restores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_PROFILE", "no-such-profile")
    monkeypatch.delenv("SAGEMAKER_VALIDATE_ROLE", raising=False)
    before_default = boto3.DEFAULT_SESSION
    before_validate = SageMakerConfig.__dict__["validate_sagemaker_config"]
    before_session_validate = session_helper.validate_sagemaker_config
    with isolated_sdk("eu-west-1") as session:
        assert boto3.DEFAULT_SESSION is session
        assert session.region_name == "eu-west-1"
        assert steps.LocalSagemakerClient is sdk_isolation._LocalClientNames
        assert os.environ["SAGEMAKER_VALIDATE_ROLE"] == "false"
        assert "AWS_PROFILE" not in os.environ
        # Sessions made inside ignore the machine's AWS config entirely.
        assert boto3.session.Session().region_name is None
    assert os.environ["AWS_PROFILE"] == "no-such-profile"
    assert "SAGEMAKER_VALIDATE_ROLE" not in os.environ
    assert boto3.DEFAULT_SESSION is before_default
    assert SageMakerConfig.__dict__["validate_sagemaker_config"] is before_validate
    assert session_helper.validate_sagemaker_config is before_session_validate


def test_role_validation_is_still_switched_by_the_environment() -> None:
    # Workaround 3: SAGEMAKER_VALIDATE_ROLE=false during the build.

    source = inspect.getsource(iam_role_resolver.resolve_and_validate_role)
    assert 'os.getenv("SAGEMAKER_VALIDATE_ROLE"' in source


def test_session_config_is_valid_and_opts_out_of_telemetry() -> None:
    # Workaround 4: telemetry off via the session's config.

    SageMakerConfig.validate_sagemaker_config(SESSION_CONFIG)
    with isolated_sdk("eu-west-1") as boto_session:
        session = pipeline_session(boto_session, "some-bucket")
        assert session.sagemaker_config is SESSION_CONFIG
        opted_out = resolve_value_from_config(
            direct_input=None,
            config_path=TELEMETRY_OPT_OUT_PATH,
            default_value=False,
            sagemaker_session=session,
        )
    assert opted_out is True


@pytest.mark.parametrize("owner", [SageMakerConfig, session_helper], ids=["lookups", "sessions"])
def test_other_configs_are_still_validated(owner: object) -> None:
    with isolated_sdk("eu-west-1"), pytest.raises(jsonschema.ValidationError, match="Bogus"):
        # Looked up inside the context, where the skip-if-known wrapper is installed.
        owner.validate_sagemaker_config({"SchemaVersion": "1.0", "Bogus": 1})


def test_a_new_session_still_validates_its_config() -> None:
    # Speed: session_helper validates the config of every new Session (each build makes one).
    source = inspect.getsource(session_helper.Session._initialize)
    assert "validate_sagemaker_config(sagemaker_config)" in source


def test_a_build_does_not_revalidate_the_session_config(monkeypatch: pytest.MonkeyPatch) -> None:
    definition_json(make_config(name="promote-code-warm-up"))
    calls: list[object] = []
    original = jsonschema.validate

    def counting(*args: Any, **kwargs: Any) -> None:
        calls.append(args[0] if args else kwargs)
        original(*args, **kwargs)

    monkeypatch.setattr(jsonschema, "validate", counting)
    definition_json(make_config(name="promote-code-counted"))
    assert calls == []


def test_isolated_sessions_share_one_service_model_loader() -> None:
    # Speed: each build's eight clients would otherwise parse the service models again.
    first, second = isolated_boto_session("eu-west-1"), isolated_boto_session("us-east-1")
    loader = first._session.get_component("data_loader")
    assert second._session.get_component("data_loader") is loader
    assert first.region_name == "eu-west-1" and second.region_name == "us-east-1"
    assert first.get_credentials().access_key == "offline"
