"""Reads the deployer makes: the model registry, the served endpoint, the model artifacts."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, Final

from botocore.exceptions import ClientError

from ml.deployer.errors import DeployError, error_code, error_message

SageMakerClient = Any
"""A boto3 SageMaker client (boto3 ships no type stubs in this project)."""
S3Client = Any

_PACKAGE_ARN_RE = re.compile(
    r"^arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:\d{12}:model-package/(?P<group>[^/]+)/(?P<version>\d+)$"
)
_S3_URL_RE = re.compile(r"^s3://(?P<bucket>[^/]+)/(?P<key>.+)$")
_S3_MISSING: Final = frozenset({"404", "NoSuchKey", "NotFound", "NoSuchBucket"})


def package_version_from_arn(package_arn: str) -> int | None:
    match = _PACKAGE_ARN_RE.match(package_arn)
    return int(match["version"]) if match else None


def not_found(error: ClientError) -> bool:
    # SageMaker reports a missing resource as a ValidationException "Could not find ...".
    message = error_message(error).lower()
    return error_code(error) in {"ValidationException", "ResourceNotFound"} and (
        "could not find" in message or "not found" in message or "does not exist" in message
    )


def describe_or_none(call: Callable[..., dict[str, Any]], **kwargs: str) -> dict[str, Any] | None:
    try:
        return call(**kwargs)
    except ClientError as error:
        if not_found(error):
            return None
        raise


def latest_approved_version(sm: SageMakerClient, group_name: str) -> tuple[int, str] | None:
    """Highest approved version of the group and its ARN, or None if nothing is approved."""
    best: tuple[int, str] | None = None
    paginator = sm.get_paginator("list_model_packages")
    for page in paginator.paginate(
        ModelPackageGroupName=group_name, ModelApprovalStatus="Approved"
    ):
        for summary in page.get("ModelPackageSummaryList", []):
            arn = summary["ModelPackageArn"]
            version = summary.get("ModelPackageVersion") or package_version_from_arn(arn)
            if version is not None and (best is None or int(version) > best[0]):
                best = (int(version), arn)
    return best


def resolve_package_arn(sm: SageMakerClient, group_name: str, version: int | None) -> str:
    """ARN of a given version of the group, or of its latest approved version."""
    if version is None:
        latest = latest_approved_version(sm, group_name)
        if latest is None:
            raise DeployError(f"model package group {group_name} has no approved version")
        return latest[1]
    paginator = sm.get_paginator("list_model_packages")
    for page in paginator.paginate(ModelPackageGroupName=group_name):
        for summary in page.get("ModelPackageSummaryList", []):
            arn = str(summary["ModelPackageArn"])
            found = summary.get("ModelPackageVersion") or package_version_from_arn(arn)
            if found is not None and int(found) == version:
                return arn
    raise DeployError(f"model package group {group_name} has no version {version}")


def served_package_arns(sm: SageMakerClient, endpoint_name: str) -> set[str]:
    """Model packages the endpoint's current config serves (empty if there is no endpoint)."""
    endpoint = describe_or_none(sm.describe_endpoint, EndpointName=endpoint_name)
    config_name = (endpoint or {}).get("EndpointConfigName")
    if not config_name:
        return set()
    config = describe_or_none(sm.describe_endpoint_config, EndpointConfigName=str(config_name))
    served: set[str] = set()
    for variant in (config or {}).get("ProductionVariants", []):
        model = describe_or_none(sm.describe_model, ModelName=str(variant.get("ModelName", "")))
        package = ((model or {}).get("PrimaryContainer") or {}).get("ModelPackageName")
        if package:
            served.add(str(package))
    return served


def model_data_urls(package: Mapping[str, Any]) -> list[str]:
    """The ModelDataUrl of every container of a DescribeModelPackage response."""
    containers = (package.get("InferenceSpecification") or {}).get("Containers") or []
    return [str(c["ModelDataUrl"]) for c in containers if c.get("ModelDataUrl")]


def check_model_artifacts(s3: S3Client, package_arn: str, urls: list[str]) -> None:
    """HeadObject on every model artifact; a missing one needs an operator."""
    for url in urls:
        match = _S3_URL_RE.match(url)
        if match is None:
            raise DeployError(f"package {package_arn}: ModelDataUrl {url!r} is not an s3:// object")
        try:
            s3.head_object(Bucket=match["bucket"], Key=match["key"])
        except ClientError as error:
            code = error_code(error)
            if code in _S3_MISSING:
                raise DeployError(
                    f"model artifact {url} of package {package_arn} does not exist; nothing "
                    "was created. Re-run the pipeline, or reject the package"
                ) from error
            if code in {"403", "AccessDenied", "Forbidden"}:
                raise DeployError(
                    f"the deployer may not read model artifact {url} (HeadObject: {code}); "
                    "grant its role s3:GetObject on the artifacts, then redeploy"
                ) from error
            raise
