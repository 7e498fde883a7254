"""Fixtures of the ml tests: a realistic PipelineConfig, its definition, network guards."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import botocore.session
import pytest

from ml.data.synthetic import DEFAULT_CSV
from ml.pipeline.code import code_uris
from ml.pipeline.contract import PipelineConfig
from ml.pipeline.definition import definition_json
from offline.aws import LocalAws, local_aws
from offline.pipeline.runner import StackOutputs

OPS_ACCOUNT = "111111111111"
DEV_ACCOUNT = "222222222222"
TRAINING_IMAGE = (
    f"{OPS_ACCOUNT}.dkr.ecr.eu-west-1.amazonaws.com/promote-code/training@sha256:" + "ab" * 32
)
ARTIFACTS = "promote-code-dev-artifacts-0a1b2c"


def make_config(**overrides: Any) -> PipelineConfig:
    config = PipelineConfig(
        name="promote-code-dev-training",
        role_arn=f"arn:aws:iam::{DEV_ACCOUNT}:role/promote-code-dev-sagemaker-execution",
        region="eu-west-1",
        data_bucket="promote-code-dev-data-0a1b2c",
        artifacts_bucket=ARTIFACTS,
        training_image_uri=TRAINING_IMAGE,
        code_uris=code_uris(ARTIFACTS),
        model_package_group="promote-code-dev-models",
        processing_instance_type="ml.m5.large",
        training_instance_type="ml.m5.xlarge",
        metric_threshold=0.2,
        baseline_margin=0.1,
        cache_expire_after="P30D",
        kms_key_arn=f"arn:aws:kms:eu-west-1:{DEV_ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    )
    return replace(config, **overrides)


@pytest.fixture(scope="session")
def config() -> PipelineConfig:
    return make_config()


@pytest.fixture(scope="session")
def definition_text(config: PipelineConfig) -> str:
    return definition_json(config)


@pytest.fixture(scope="session")
def definition(definition_text: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(definition_text)
    return document


@pytest.fixture
def outputs(config: PipelineConfig) -> StackOutputs:
    return StackOutputs(
        data_bucket=config.data_bucket,
        artifacts_bucket=config.artifacts_bucket,
        role_arn=config.role_arn,
        model_package_group=config.model_package_group,
        region=config.region,
    )


@pytest.fixture(scope="module")
def aws() -> Iterator[LocalAws]:
    with local_aws("eu-west-1", DEV_ACCOUNT) as server:
        yield server


class NetworkAttempts(list[str]):
    """What tried to leave the process while guarded (AWS requests and socket connects)."""


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> NetworkAttempts:
    """Record-and-refuse every botocore request and every outbound socket connection.

    AWS credentials are removed from the environment so a stray credential-chain
    lookup would reach for the instance metadata service and be caught here
    (botocore swallows that failure, so the record, not an exception, is the proof).
    """
    attempts = NetworkAttempts()
    for key in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_DEFAULT_REGION",
        "AWS_REGION",
        "AWS_ENDPOINT_URL",
        "AWS_EC2_METADATA_DISABLED",
    ):
        monkeypatch.delenv(key, raising=False)

    def refuse_request(request: Any, **_: Any) -> None:
        attempts.append(f"AWS {request.method} {request.url}")
        raise RuntimeError(f"AWS API call while building offline: {request.url}")

    original_init = botocore.session.Session.__init__

    def init_with_hook(self: botocore.session.Session, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        self.register("before-send", refuse_request)

    monkeypatch.setattr(botocore.session.Session, "__init__", init_with_hook)

    def refuse_connect(sock: socket.socket, address: Any) -> None:
        attempts.append(f"connect {address}")
        raise OSError(f"network connection while building offline: {address}")

    def refuse_resolve(host: Any, *args: Any, **kwargs: Any) -> Any:
        attempts.append(f"resolve {host}")
        raise OSError(f"DNS lookup while building offline: {host}")

    monkeypatch.setattr(socket.socket, "connect", refuse_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse_connect)
    monkeypatch.setattr(socket, "getaddrinfo", refuse_resolve)
    return attempts


@pytest.fixture
def synthetic_csv() -> Path:
    return DEFAULT_CSV
