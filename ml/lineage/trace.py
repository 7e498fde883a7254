"""Following a served model's lineage through SageMaker and MLflow: `chain` and `mlflow_run`.

`chain` follows the links SageMaker records, one Describe call per link:
DescribeEndpoint.EndpointConfigName -> DescribeEndpointConfig.ProductionVariants
[].ModelName (every variant) -> the model's tag `model-package-arn` (ListTags;
the deployer writes it) or its container's ModelPackageName ->
DescribeModelPackage.CustomerMetadataProperties and ModelApprovalStatus ->
optionally MlflowClient(tracking URI).get_run(mlflow_run_id). A link that is
missing raises `LineageError` with one line saying what to do; an MLflow server
that cannot be reached is recorded in the chain ("not reachable"), not raised.

It takes a boto3 SageMaker client from the caller and imports `mlflow` only when it
looks a run up: at module level, only the standard library.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from typing import Any, Final

from ml.lineage.keys import MLFLOW_RUN_ID, MLFLOW_TRACKING_ARN, PACKAGE_ARN_TAG, REQUIRED_KEYS
from ml.lineage.record import Lineage, MlflowRun, ModelPackage, Variant

_NOT_FOUND = ("could not find", "not found", "does not exist")
# An unreachable server answers within seconds instead of after MLflow's default
# 7 retries with backoff and 120 s timeouts; a user's own settings win.
_MLFLOW_HTTP_BOUNDS: Final = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "15",
}

SageMakerClient = Any
"""A boto3 SageMaker client (boto3 ships no type stubs in this project)."""


class LineageError(Exception):
    """A link of the chain is missing; the message is one line saying what to do."""


def chain(
    sagemaker_client: SageMakerClient,
    endpoint_name: str,
    *,
    tracking_uri: str | None = None,
    stack: str | None = None,
) -> Lineage:
    """Follow `endpoint_name` down to the sources of every model it serves.

    The MLflow run is looked up on the server the package names (`mlflow_tracking_arn`),
    else on `tracking_uri` (a local store, or the stack's server); with neither, it is not
    looked up. `stack` only makes the messages name the stack. Raises `LineageError`.
    """
    sm = sagemaker_client
    where = f"stack {stack}'s endpoint {endpoint_name}" if stack else f"endpoint {endpoint_name}"
    endpoint = _describe(sm.describe_endpoint, EndpointName=endpoint_name)
    if endpoint is None:
        deploy = f"python -m ml.deployer.manual --stack {stack or '<stack>'}"
        raise LineageError(
            f"{where} does not exist: nothing was deployed yet (approve a model package, "
            f"or deploy the latest approved one with `{deploy}`)"
        )
    config_name = str(endpoint.get("EndpointConfigName", ""))
    config = _describe(sm.describe_endpoint_config, EndpointConfigName=config_name)
    if config is None:
        raise LineageError(f"{where} uses endpoint config {config_name}, which no longer exists")
    config_arn = str(config.get("EndpointConfigArn", ""))
    variants = tuple(
        _variant(sm, config_name, variant, tracking_uri)
        for variant in config.get("ProductionVariants", [])
    )
    if not variants:
        raise LineageError(f"endpoint config {config_name} of {where} has no production variant")
    pending = (endpoint.get("PendingDeploymentSummary") or {}).get("EndpointConfigName")
    return Lineage(
        endpoint_name=endpoint_name,
        endpoint_arn=str(endpoint.get("EndpointArn", "")),
        endpoint_status=str(endpoint.get("EndpointStatus", "")),
        endpoint_config_name=config_name,
        endpoint_config_arn=config_arn,
        endpoint_config_tags=_tags(sm, config_arn),
        variants=variants,
        pending_endpoint_config_name=str(pending or ""),
    )


def _variant(
    sm: SageMakerClient, config_name: str, variant: Mapping[str, Any], tracking_uri: str | None
) -> Variant:
    variant_name = str(variant.get("VariantName", ""))
    model_name = str(variant.get("ModelName", ""))
    of = f"variant {variant_name} of endpoint config {config_name}"
    model = _describe(sm.describe_model, ModelName=model_name)
    if model is None:
        raise LineageError(f"model {model_name} ({of}) no longer exists")
    model_arn = str(model.get("ModelArn", ""))
    tags = _tags(sm, model_arn)
    served = (model.get("PrimaryContainer") or {}).get("ModelPackageName")
    tagged = tags.get(PACKAGE_ARN_TAG)
    package_arn = tagged or served
    if not package_arn:
        raise LineageError(
            f"model {model_name} ({of}) has no tag {PACKAGE_ARN_TAG} and no ModelPackageName "
            "container: it was not created by the promote deployer from a registered package; "
            "redeploy with `python -m ml.deployer.manual --stack <stack>`"
        )
    if tagged and served and _package_id(tagged) != _package_id(served):
        raise LineageError(
            f"model {model_name} ({of}) is tagged {PACKAGE_ARN_TAG}={tagged} but serves "
            f"{served}: it was not created by the promote deployer; delete it and redeploy"
        )
    package = _package(sm, str(package_arn), f"model {model_name}")
    run_id = package.fact(MLFLOW_RUN_ID)
    uri = package.fact(MLFLOW_TRACKING_ARN) or tracking_uri
    run = mlflow_run(run_id, uri) if run_id and uri else None
    return Variant(variant_name, model_name, model_arn, tags, package, run)


def _package(sm: SageMakerClient, package_arn: str, used_by: str) -> ModelPackage:
    described = _describe(sm.describe_model_package, ModelPackageName=package_arn)
    if described is None:
        raise LineageError(f"model package {package_arn} (of {used_by}) no longer exists")
    arn = str(described.get("ModelPackageArn", package_arn))
    metadata = {
        str(k): str(v) for k, v in (described.get("CustomerMetadataProperties") or {}).items()
    }
    missing = [key for key in REQUIRED_KEYS if not metadata.get(key)]
    if missing:
        raise LineageError(
            f"model package {arn} has no lineage metadata (CustomerMetadataProperties "
            f"{', '.join(missing)}): it was registered by an older pipeline; retrain with "
            "the current pipeline to get a traceable model"
        )
    version = described.get("ModelPackageVersion")
    containers = (described.get("InferenceSpecification") or {}).get("Containers") or []
    return ModelPackage(
        arn=arn,
        group=str(described.get("ModelPackageGroupName", "")),
        version=int(version) if version is not None else None,
        approval_status=str(described.get("ModelApprovalStatus", "")),
        metadata=dict(sorted(metadata.items())),
        container_images=tuple(str(c["Image"]) for c in containers if c.get("Image")),
    )


def _package_id(arn_or_name: str) -> str:
    # ModelPackageName may hold the ARN or "<group>/<version>"; compare what both end in.
    return arn_or_name.rsplit(":model-package/", maxsplit=1)[-1]


def _describe(call: Any, **name: str) -> dict[str, Any] | None:
    """The Describe* response, None when SageMaker says the resource does not exist."""
    try:
        response: dict[str, Any] = call(**name)
    except Exception as error:
        # botocore's ClientError, matched by shape: this module imports no botocore.
        details = (getattr(error, "response", None) or {}).get("Error") or {}
        message = str(details.get("Message", "")).lower()
        if details.get("Code") in {"ValidationException", "ResourceNotFound"} and any(
            phrase in message for phrase in _NOT_FOUND
        ):
            return None
        raise
    return response


def _tags(sm: SageMakerClient, arn: str) -> dict[str, str]:
    if not arn:
        return {}
    found: dict[str, str] = {}
    for page in sm.get_paginator("list_tags").paginate(ResourceArn=arn):
        found.update({str(t["Key"]): str(t["Value"]) for t in page.get("Tags", [])})
    return dict(sorted(found.items()))


@contextlib.contextmanager
def _bounded_mlflow_http() -> Iterator[None]:
    added = [key for key in _MLFLOW_HTTP_BOUNDS if key not in os.environ]
    os.environ.update({key: _MLFLOW_HTTP_BOUNDS[key] for key in added})
    try:
        yield
    finally:
        for key in added:
            os.environ.pop(key, None)


def mlflow_run(run_id: str, tracking_uri: str) -> MlflowRun:
    """`MlflowClient(tracking_uri).get_run(run_id)`; a failure is recorded, never raised."""
    try:
        import mlflow  # noqa: PLC0415 - optional: the deployer image and the pipeline lack it
    except ImportError:
        return MlflowRun(run_id, tracking_uri, "not reachable: the mlflow package is not installed")
    try:
        with _bounded_mlflow_http():
            run = mlflow.MlflowClient(tracking_uri).get_run(run_id)
    except Exception as error:  # whatever the store or the plugin raise: report it
        if getattr(error, "error_code", "") == "RESOURCE_DOES_NOT_EXIST":
            return MlflowRun(run_id, tracking_uri, "not found")
        line = (str(error).strip().splitlines() or [type(error).__name__])[0]
        # MLflow's "API request to <url> failed with exception <urllib3 repr...>": the head says it.
        line = line.split(" with exception ", 1)[0][:200]
        return MlflowRun(run_id, tracking_uri, f"not reachable: {line}")
    return MlflowRun(
        run_id=run_id,
        tracking_uri=tracking_uri,
        state="found",
        status=str(run.info.status),
        experiment_id=str(run.info.experiment_id),
        run_name=str(run.info.run_name or ""),
        artifact_uri=str(run.info.artifact_uri or ""),
        metrics=dict(sorted(run.data.metrics.items())),
        tags={k: v for k, v in sorted(run.data.tags.items()) if not k.startswith("mlflow.")},
    )
