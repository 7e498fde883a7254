"""The approval hook of the local pipeline run, against moto: the demo ends with an endpoint."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import boto3

from offline.deployer import LocalDeployer, local_config
from tests.deployer.support import ENDPOINT, GROUP, REGION, ROLE_ARN, Registry, approval_event


@dataclass(frozen=True)
class FakeLocalAws:
    """Stands in for offline.aws.LocalAws: clients bound to the local moto server."""

    endpoint_url: str

    def client(self, service: str) -> Any:
        return boto3.client(service, region_name=REGION, endpoint_url=self.endpoint_url)


def test_approval_hook_deploys_the_approved_package(registry: Registry) -> None:
    registry.group()
    arn = registry.register()
    registry.approve(arn)
    said: list[str] = []
    config = local_config(
        endpoint_name=ENDPOINT,
        model_package_group_name=GROUP,
        execution_role_arn=ROLE_ARN,
        artifacts_bucket="promote-code-dev-artifacts-123456789012",
    )
    deployer = LocalDeployer(config, echo=said.append)

    deployer(approval_event(arn, GROUP, 1), FakeLocalAws(registry.url))
    deployer(approval_event(arn, GROUP, 1), FakeLocalAws(registry.url))

    assert [r.action for r in deployer.results] == ["created", "noop"]
    endpoint = registry.sagemaker.describe_endpoint(EndpointName=ENDPOINT)
    assert endpoint["EndpointStatus"] == "InService"
    capture = registry.sagemaker.describe_endpoint_config(
        EndpointConfigName=endpoint["EndpointConfigName"]
    )["DataCaptureConfig"]
    assert capture["DestinationS3Uri"] == (
        f"s3://promote-code-dev-artifacts-123456789012/data-capture/{ENDPOINT}"
    )
    assert said[0].startswith(f"deployer: created endpoint {ENDPOINT} ({ENDPOINT}-v1-")
