"""Lineage of a served model: endpoint -> config -> model -> package -> MLflow run -> sources.

    python -m ml.lineage --stack prod          # the chain of prod's endpoint
    python -m ml.lineage --stack prod --json   # the same, as JSON

The key names of the facts a registered model package carries in its
`CustomerMetadataProperties` are defined here, once: the pipeline's register
step writes them, the deployer copies the commit onto what it creates, and
`chain` reads them back. This module imports only the standard library at
module level (the pipeline definition and the deployer Lambda import the
constants); `chain` takes a boto3 SageMaker client from the caller and
imports `mlflow` only when it looks a run up.

`chain` follows the links SageMaker records, one Describe call per link:
DescribeEndpoint.EndpointConfigName -> DescribeEndpointConfig.ProductionVariants
[].ModelName (every variant) -> the model's tag `model-package-arn` (ListTags;
the deployer writes it) or its container's ModelPackageName ->
DescribeModelPackage.CustomerMetadataProperties and ModelApprovalStatus ->
optionally MlflowClient(tracking URI).get_run(mlflow_run_id). A link that is
missing raises `LineageError` with one line saying what to do; an MLflow server
that cannot be reached is recorded in the chain ("not reachable"), not raised.

The command reads `endpoint_name`, `region` and, when exported,
`mlflow_tracking_arn` from `pulumi stack output --json --stack <stack>`
(ml.deployer.manual.stack_outputs). Exit codes: 0 printed; 1 the chain is
broken (no endpoint, a model without its package, a package without lineage);
2 usage or configuration (missing output, no pulumi CLI, no credentials);
3 internal error; 75 retry later (throttling, pulumi backend timeout).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

# CustomerMetadataProperties keys of a registered model package (values are strings;
# SageMaker rejects an empty value, so "none" is an absent key).
COMMIT: Final = "commit"
"""40-hex git commit the stack was deployed from."""
TRAINING_IMAGE: Final = "training_image"
"""Ops ECR image URI pinned by digest that trained and serves the model."""
DATA_SHA256: Final = "data_sha256"
"""Content hash of the dataset the run used."""
MLFLOW_RUN_ID: Final = "mlflow_run_id"
MLFLOW_TRACKING_ARN: Final = "mlflow_tracking_arn"
"""arn:aws:sagemaker:<region>:<account>:mlflow-tracking-server/<name>; absent if not tracked."""
METRIC: Final = "metric"
"""Name of the approval metric, e.g. macro_f1."""
METRIC_VALUE: Final = "metric_value"
CHAMPION_METRIC_VALUE: Final = "champion_metric_value"
"""The approved champion's score on the same split; absent when there was no champion."""

ABSENT: Final = "none"
"""The value of a key whose fact the run did not have."""

METADATA_KEYS: Final = (
    COMMIT,
    TRAINING_IMAGE,
    DATA_SHA256,
    MLFLOW_RUN_ID,
    MLFLOW_TRACKING_ARN,
    METRIC,
    METRIC_VALUE,
    CHAMPION_METRIC_VALUE,
)
REQUIRED_KEYS: Final = (COMMIT, TRAINING_IMAGE, DATA_SHA256)
"""Without these a package cannot be traced to its sources."""

# Tags the deployer puts on the models and endpoint configs it creates.
PACKAGE_ARN_TAG: Final = "model-package-arn"
COMMIT_TAG: Final = "promote:commit"

ENDPOINT_OUTPUT: Final = "endpoint_name"
REGION_OUTPUT: Final = "region"
TRACKING_OUTPUT: Final = "mlflow_tracking_arn"

EXIT_BROKEN: Final = 1
EXIT_USAGE: Final = 2
EXIT_INTERNAL: Final = 3

_COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")
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


class LineageConfigError(Exception):
    """The command cannot start: a stack output it needs is missing (exit 2)."""


def package_commit(package: Mapping[str, Any]) -> str | None:
    """The 40-hex commit of a DescribeModelPackage response, None if absent or malformed.

    A malformed value is not tagged (a tag SageMaker rejects would stop a deployment);
    `chain` still reports what the package says.
    """
    value = (package.get("CustomerMetadataProperties") or {}).get(COMMIT)
    return value if isinstance(value, str) and _COMMIT_RE.match(value) else None


@dataclass(frozen=True)
class MlflowRun:
    """The MLflow run a package names, as far as its tracking server answered."""

    run_id: str
    tracking_uri: str
    state: str
    """'found', 'not found' (the server has no such run) or 'not reachable: <why>'."""
    status: str = ""
    experiment_id: str = ""
    run_name: str = ""
    artifact_uri: str = ""
    metrics: Mapping[str, float] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelPackage:
    """A registered model package and the lineage facts it carries."""

    arn: str
    group: str
    version: int | None
    approval_status: str
    metadata: Mapping[str, str]
    """Every CustomerMetadataProperties entry (the keys above and any others)."""
    container_images: tuple[str, ...]
    """InferenceSpecification.Containers[].Image: what the endpoint serves."""

    def fact(self, key: str) -> str:
        """The package's value of `key`; "" when absent or "none" (what the pipeline writes
        for a fact it does not have: SageMaker refuses empty values)."""
        value = self.metadata.get(key, "")
        return "" if value == ABSENT else value


@dataclass(frozen=True)
class Variant:
    """One production variant of the endpoint config, down to its run."""

    variant_name: str
    model_name: str
    model_arn: str
    model_tags: Mapping[str, str]
    package: ModelPackage
    run: MlflowRun | None
    """None when the package names no run or no tracking server is known."""


@dataclass(frozen=True)
class Lineage:
    """The chain of one endpoint, as SageMaker and MLflow record it."""

    endpoint_name: str
    endpoint_arn: str
    endpoint_status: str
    endpoint_config_name: str
    endpoint_config_arn: str
    endpoint_config_tags: Mapping[str, str]
    variants: tuple[Variant, ...]
    pending_endpoint_config_name: str = ""
    """The config a blue/green update is rolling out, if one is."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, document: Mapping[str, Any]) -> Lineage:
        """The inverse of `as_dict` (a lineage.json written earlier); KeyError/TypeError if not."""
        variants = []
        for raw in document["variants"]:
            package = {
                **raw["package"],
                "container_images": tuple(raw["package"]["container_images"]),
            }
            run = raw["run"]
            variants.append(
                Variant(
                    **{k: v for k, v in raw.items() if k not in {"package", "run"}},
                    package=ModelPackage(**package),
                    run=MlflowRun(**run) if run is not None else None,
                )
            )
        fields = {k: v for k, v in document.items() if k != "variants"}
        return cls(**fields, variants=tuple(variants))


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


def format_chain(lineage: Lineage) -> str:
    """The chain as indented lines, one link per line, deepest last."""
    status = lineage.endpoint_status or "status unknown"
    lines = [f"endpoint {lineage.endpoint_name} ({status})"]
    config = f"  -> endpoint config {lineage.endpoint_config_name}"
    if lineage.pending_endpoint_config_name:
        config += f" (rolling out {lineage.pending_endpoint_config_name})"
    lines.append(config)
    for variant in lineage.variants:
        package = variant.package
        version = f"version {package.version}, " if package.version is not None else ""
        lines += [
            f"    -> model {variant.model_name} (variant {variant.variant_name})",
            f"      -> model package {package.arn} ({version}{package.approval_status})",
            f"        -> MLflow run {_run_line(package, variant.run)}",
            f"          -> commit {package.fact(COMMIT)}",
            f"          -> training image {package.fact(TRAINING_IMAGE)}",
        ]
        lines += [f"          -> serving image {image}" for image in package.container_images]
        lines.append(f"          -> data sha256 {package.fact(DATA_SHA256)}")
        if package.fact(METRIC):
            champion = package.fact(CHAMPION_METRIC_VALUE)
            lines.append(
                f"          -> {package.fact(METRIC)} {package.fact(METRIC_VALUE) or '?'} "
                f"(champion: {champion or 'none'})"
            )
    return "\n".join(lines)


def _run_line(package: ModelPackage, run: MlflowRun | None) -> str:
    run_id = package.fact(MLFLOW_RUN_ID)
    if not run_id:
        return "none (the run was not tracked)"
    if run is None:
        return f"{run_id}: not looked up (no tracking server known)"
    if run.state != "found":
        return f"{run_id} on {run.tracking_uri}: {run.state}"
    name = f" {run.run_name}" if run.run_name else ""
    return f"{run_id}{name} on {run.tracking_uri}: {run.status}, experiment {run.experiment_id}"


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="python -m ml.lineage",
        description="Print the lineage chain of a stack's endpoint: endpoint -> endpoint "
        "config -> model -> model package -> MLflow run -> commit / image digests / data hash.",
        epilog="Exit codes: 0 printed, 1 the chain is broken, 2 usage/configuration, "
        "3 internal, 75 retry later.",
    )
    root.add_argument("--stack", required=True, help="environment stack: dev, staging or prod")
    root.add_argument(
        "--cwd", type=Path, default=Path(), help="Pulumi project directory (default: .)"
    )
    root.add_argument("--region", help="AWS region (default: the stack's region output)")
    root.add_argument("--endpoint-url", help="SageMaker API URL, e.g. a local moto server")
    root.add_argument(
        "--tracking-uri",
        help="MLflow tracking URI for packages that name none (default: the stack's "
        f"{TRACKING_OUTPUT} output, if exported)",
    )
    root.add_argument("--json", action="store_true", help="print the chain as JSON")
    return root


def _output(outputs: Mapping[str, Any], key: str, stack: str) -> str:
    value = outputs.get(key)
    if not isinstance(value, str) or not value:
        raise LineageConfigError(
            f"stack {stack} has no output {key} (pulumi stack output --stack {stack}); "
            f"run `pulumi up --stack {stack}` first"
        )
    return value


def run(args: argparse.Namespace) -> Lineage:
    """The chain of the stack's endpoint, from its outputs and the ambient AWS credentials."""
    # Imported on use: the constants above stay importable without botocore or pulumi.
    import boto3  # noqa: PLC0415

    from ml.deployer.manual import stack_outputs  # noqa: PLC0415

    outputs = stack_outputs(args.stack, args.cwd)
    endpoint_name = _output(outputs, ENDPOINT_OUTPUT, args.stack)
    region = args.region or _output(outputs, REGION_OUTPUT, args.stack)
    tracking = args.tracking_uri or outputs.get(TRACKING_OUTPUT) or None
    session = boto3.session.Session(region_name=region)
    sagemaker = session.client("sagemaker", endpoint_url=args.endpoint_url)
    return chain(
        sagemaker,
        endpoint_name,
        tracking_uri=str(tracking) if tracking else None,
        stack=args.stack,
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        lineage = run(args)
    except KeyboardInterrupt:
        return 130
    except LineageError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BROKEN
    except LineageConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as error:  # one line, whatever failed
        from ml.deployer.manual import failure  # noqa: PLC0415

        code, line = failure(error, args.stack)
        print(line, file=sys.stderr)
        return code
    if args.json:
        print(json.dumps(lineage.as_dict(), indent=2, sort_keys=True))
    else:
        print(format_chain(lineage))
    return 0


if __name__ == "__main__":
    sys.exit(main())
