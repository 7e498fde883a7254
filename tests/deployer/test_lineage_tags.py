"""The deployer tags what it creates with the package's commit, read from its lineage metadata."""

from __future__ import annotations

from typing import Any

from ml.deployer.handler import handle_event
from ml.lineage.keys import COMMIT_TAG, PACKAGE_ARN_TAG
from tests.deployer.support import (
    COMMIT,
    ENDPOINT,
    GROUP,
    LINEAGE,
    Registry,
    approval_event,
    deployer_config,
)


def deploy(registry: Registry, metadata: dict[str, str] | None) -> Any:
    registry.group()
    # Registered approved: moto's UpdateModelPackage drops CustomerMetadataProperties it is
    # not given (AWS keeps them), so approving afterwards would lose the lineage.
    arn = registry.register(status="Approved", metadata=metadata)
    return handle_event(approval_event(arn, GROUP, 1), registry.sagemaker, deployer_config())


def tags_of(registry: Registry, kind: str, name: str) -> dict[str, str]:
    sm = registry.sagemaker
    if kind == "model":
        arn = sm.describe_model(ModelName=name)["ModelArn"]
    else:
        arn = sm.describe_endpoint_config(EndpointConfigName=name)["EndpointConfigArn"]
    return {t["Key"]: t["Value"] for t in sm.list_tags(ResourceArn=arn)["Tags"]}


def test_model_and_endpoint_config_carry_the_package_arn_and_its_commit(
    registry: Registry,
) -> None:
    result = deploy(registry, LINEAGE)

    assert result.action == "created"
    for kind, name in (("model", result.model_name), ("config", result.endpoint_config_name)):
        tags = tags_of(registry, kind, name)
        assert tags[COMMIT_TAG] == COMMIT, kind
        assert tags[PACKAGE_ARN_TAG] == result.package_arn, kind
    # The endpoint outlives its configs: a commit tag there would go stale with the next update.
    endpoint_arn = registry.sagemaker.describe_endpoint(EndpointName=ENDPOINT)["EndpointArn"]
    endpoint_tags = registry.sagemaker.list_tags(ResourceArn=endpoint_arn)["Tags"]
    assert COMMIT_TAG not in {t["Key"] for t in endpoint_tags}


def test_a_package_without_a_commit_gets_no_commit_tag(registry: Registry) -> None:
    result = deploy(registry, None)

    assert result.action == "created"
    assert COMMIT_TAG not in tags_of(registry, "model", result.model_name)
    assert COMMIT_TAG not in tags_of(registry, "config", result.endpoint_config_name)


def test_a_malformed_commit_is_not_tagged_and_does_not_block_the_deployment(
    registry: Registry,
) -> None:
    # A value SageMaker might refuse as a tag must not stop a deployment of an approved model.
    result = deploy(registry, {**LINEAGE, "commit": "not a commit #1"})

    assert result.action == "created"
    assert COMMIT_TAG not in tags_of(registry, "model", result.model_name)
