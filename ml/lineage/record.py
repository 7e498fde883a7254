"""The lineage chain as data: endpoint -> config -> variants -> package -> MLflow run.

`Lineage` is what `ml.lineage.trace.chain` returns; `as_dict`/`from_dict` are its JSON
form (`python -m ml.lineage --json`, a local run's lineage.json) and `format_chain` its
text form, one link per line.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from ml.lineage.keys import (
    ABSENT,
    CHAMPION_METRIC_VALUE,
    COMMIT,
    DATA_SHA256,
    METRIC,
    METRIC_VALUE,
    MLFLOW_RUN_ID,
    TRAINING_IMAGE,
)


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
    """Every CustomerMetadataProperties entry (the `ml.lineage.keys` ones and any others)."""
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
