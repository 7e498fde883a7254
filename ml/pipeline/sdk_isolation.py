"""Isolate the sagemaker SDK (v3) from AWS while it builds a pipeline definition.

The definition is built inside a Pulumi `apply` (in `pulumi preview` and `up`,
on CI and on laptops alike) and in tests, where there may be no AWS account and
must be no network: building a definition needs none. The SDK, as of 3.27, reaches for AWS in
four places while *building* (not running) a pipeline; each is neutralised here
and nowhere else, and `tests/ml/test_sdk_isolation.py` fails when the SDK changes
under one of them:

1. `sagemaker.ai_registry.air_hub.AIRHub` creates `boto3.client("sagemaker")` in
   its class body, at import time. With no region that raises; with no
   credentials in the environment botocore walks the credential chain, which
   ends at the EC2 instance metadata service (a network call). We import the
   SDK with `boto3.DEFAULT_SESSION` set to an isolated session (static dummy
   credentials, explicit region) and restore it afterwards.
2. `ProcessingStep.__init__` instantiates `LocalSagemakerClient()` only to read
   the name of its `create_processing_job` method; that builds a `LocalSession`
   from `boto3.Session()` (credential chain again) and reads the user's
   SageMaker config files. We give `sagemaker.mlops.workflow.steps` a stand-in
   exposing the same method names.
3. `ModelTrainer` validates its role with `iam:SimulatePrincipalPolicy` unless
   `SAGEMAKER_VALIDATE_ROLE=false`. The role is a Pulumi output here; it is set
   for the duration of the build only, as is an environment without the
   machine's AWS profile and config files (`sagemaker.core.jumpstart.constants`
   opens a plain `boto3.session.Session()` at import, which fails on a stale
   `AWS_PROFILE`).
4. Telemetry (`_telemetry_emitter`) posts to AWS from a thread unless the
   session's config opts out; `SESSION_CONFIG` opts out and also keeps machine
   specific SageMaker config files out of the definition (determinism).

And two for speed, neither of which changes a byte of the definition:
- with a non-empty config, every config lookup (about a hundred per build) and
  every new `Session` re-validate it with `jsonschema.validate`, which re-checks
  the SDK's large schema each time (seconds in total). `SESSION_CONFIG` is
  validated once with the SDK's own validator; validations of that same object
  (in `SageMakerConfig` and in `session_helper`) skip the repeat. Any other
  config is still validated.
- every build makes a new botocore session, and each would parse the service
  models of its eight clients again; isolated sessions share one botocore
  loader (the same files, read once per process).

A session made by `isolated_boto_session` has static credentials and an explicit
region, so even a call we missed would fail on the socket guard in the tests
instead of silently reaching AWS.
"""

from __future__ import annotations

import logging
import os
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import boto3
import botocore.loaders
import botocore.session

TESTED_SDK_VERSIONS = frozenset({"3.27.0"})
"""sagemaker releases these workarounds were checked against (tests/ml/test_sdk_isolation.py)."""

STATIC_CREDENTIALS = {"aws_access_key_id": "offline", "aws_secret_access_key": "offline"}
"""Static dummy credentials: botocore never walks the credential chain for this session."""

SESSION_CONFIG: dict[str, Any] = {
    "SchemaVersion": "1.0",
    "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}},
}
"""SageMaker SDK defaults config of the build session: telemetry off, nothing else."""

_ENVIRONMENT: dict[str, str | None] = {
    "SAGEMAKER_VALIDATE_ROLE": "false",
    # The SDK also builds plain boto3 sessions at import (jumpstart.constants reads the
    # default region): keep the machine's AWS profile and config files out of the build.
    "AWS_PROFILE": None,
    "AWS_DEFAULT_PROFILE": None,
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}
"""Environment during the build (None: unset); restored afterwards."""

_LOCK = threading.RLock()


_ISOLATED_SESSION_VARIABLES = {
    # (config file key, environment variables, default, converter), as in botocore: the
    # profile, config and credentials files of the machine never reach the build (a stale
    # AWS_PROFILE would otherwise fail it with ProfileNotFound).
    "profile": (None, None, None, None),
    "config_file": (None, None, os.devnull, None),
    "credentials_file": (None, None, os.devnull, None),
}


_LOADERS: dict[str | None, botocore.loaders.Loader] = {}


def isolated_boto_session(region: str) -> boto3.Session:
    """A boto3 session that needs no credential chain, no region lookup, no AWS config files."""
    core = botocore.session.Session(session_vars=_ISOLATED_SESSION_VARIABLES)
    data_path = core.get_config_variable("data_path")
    with _LOCK:
        if data_path not in _LOADERS:
            _LOADERS[data_path] = botocore.loaders.create_loader(data_path)
        core.register_component("data_loader", _LOADERS[data_path])
    return boto3.Session(botocore_session=core, region_name=region, **STATIC_CREDENTIALS)


class _LocalClientNames:
    """Stand-in for `LocalSagemakerClient`: steps only read these method names."""

    def create_processing_job(self) -> None:
        """Name-only stand-in."""

    def create_transform_job(self) -> None:
        """Name-only stand-in."""


@contextmanager
def isolated_sdk(region: str) -> Iterator[boto3.Session]:
    """Import and use the SageMaker SDK without touching AWS; yields the boto session to use.

    Holds a process-wide lock: the environment and `boto3.DEFAULT_SESSION` are
    process state, restored on exit.
    """
    with _LOCK, warnings.catch_warnings():
        # "No job being started" warnings and INFO chatter are expected while building;
        # the SDK sets its own logger levels, so only a global threshold quiets it.
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        previous_disable = logging.root.manager.disable
        logging.disable(logging.WARNING)
        session = isolated_boto_session(region)
        previous_default = boto3.DEFAULT_SESSION
        previous_environment = {key: os.environ.get(key) for key in _ENVIRONMENT}
        boto3.DEFAULT_SESSION = session
        for key, value in _ENVIRONMENT.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        try:
            import sagemaker.mlops.workflow.steps as steps_module  # noqa: PLC0415
            from sagemaker.core.config.config_manager import SageMakerConfig  # noqa: PLC0415
            from sagemaker.core.helper import session_helper  # noqa: PLC0415

            steps_module.LocalSagemakerClient = _LocalClientNames
            original_validate = SageMakerConfig.__dict__["validate_sagemaker_config"]
            original_session_validate = session_helper.validate_sagemaker_config
            _validate_session_config_once(original_validate.__func__)
            SageMakerConfig.validate_sagemaker_config = staticmethod(
                _skip_validated(original_validate.__func__)
            )
            session_helper.validate_sagemaker_config = _skip_validated(original_session_validate)
            try:
                yield session
            finally:
                SageMakerConfig.validate_sagemaker_config = original_validate
                session_helper.validate_sagemaker_config = original_session_validate
        finally:
            logging.disable(previous_disable)
            boto3.DEFAULT_SESSION = previous_default
            for key, previous in previous_environment.items():
                if previous is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = previous


_validated: list[bool] = []


def _validate_session_config_once(validate: Callable[[dict[str, Any]], None]) -> None:
    if not _validated:
        validate(SESSION_CONFIG)
        _validated.append(True)


def _skip_validated(
    validate: Callable[[dict[str, Any] | None], None],
) -> Callable[[dict[str, Any] | None], None]:
    def validate_unless_known(config: dict[str, Any] | None = None) -> None:
        if config is not SESSION_CONFIG:
            validate(config)

    return validate_unless_known


def pipeline_session(session: boto3.Session, default_bucket: str) -> Any:
    """A `PipelineSession` on the isolated boto session, with telemetry off.

    `default_bucket` is set so the SDK never derives one from the account
    (`sts:GetCallerIdentity`); the builder passes explicit S3 URIs everywhere, so
    the SDK never needs to check that the bucket exists.
    """
    from sagemaker.core.workflow.pipeline_context import PipelineSession  # noqa: PLC0415

    return PipelineSession(
        boto_session=session, default_bucket=default_bucket, sagemaker_config=SESSION_CONFIG
    )
