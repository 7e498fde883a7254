"""The deployer in the local pipeline run: the same decision as the Lambda, against moto.

    deployer = LocalDeployer(local_config(endpoint_name=..., ...), echo=print)
    run_pipeline(..., on_approved=deployer)   # called with (event, local_aws)
    deployer.results                          # what it did

moto has no UpdateEndpoint: a local run deploys the first approved model
(CreateEndpoint); a later approval against the same moto state would fail there.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from ml.deployer import naming
from ml.deployer.config import DeployerConfig
from ml.deployer.deploy import DeployResult
from ml.deployer.handler import handle_event


class ClientFactory(Protocol):
    """What the local run's AWS handle offers (offline.aws.LocalAws)."""

    def client(self, service: str) -> Any: ...


def local_config(
    *,
    endpoint_name: str,
    model_package_group_name: str,
    execution_role_arn: str,
    artifacts_bucket: str,
    instance_type: str = "ml.m5.large",
    kms_key_arn: str | None = None,
) -> DeployerConfig:
    """A single-instance configuration with data capture into the artifacts bucket."""
    return DeployerConfig(
        endpoint_name=endpoint_name,
        model_package_group_name=model_package_group_name,
        execution_role_arn=execution_role_arn,
        data_capture_s3_uri=f"s3://{artifacts_bucket}/data-capture/{endpoint_name}",
        instance_type=instance_type,
        instance_count=1,
        kms_key_arn=kms_key_arn,
        rollback_alarm_names=naming.rollback_alarm_names(endpoint_name),
    )


class LocalDeployer:
    """An approval hook for the local run: handles the event as the Lambda would."""

    def __init__(self, config: DeployerConfig, echo: Callable[[str], None] | None = None):
        self.config = config
        self.echo = echo
        self.results: list[DeployResult] = []

    def __call__(self, event: Mapping[str, Any], aws: ClientFactory) -> None:
        result = handle_event(event, aws.client("sagemaker"), self.config)
        self.results.append(result)
        if self.echo is not None:
            self.echo(
                f"deployer: {result.action} endpoint {result.endpoint_name} "
                f"({result.endpoint_config_name or 'no change'}): {result.reason}"
            )
