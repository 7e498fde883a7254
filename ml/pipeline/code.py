"""The step code the pipeline runs, as content-addressed bundles.

Each step script (`ml.pipeline.contract.STEPS`, in ml/steps/) travels with the modules it
imports (`Step.modules`, e.g. tracking.py): its *bundle*. The Pulumi component uploads
every file of a bundle under one content-addressed prefix, `pipeline-code/<sha256>/`,
and the job's "code" input downloads that prefix, so the script finds its modules beside
it. The hash covers every file's name and bytes: any change to the script or to a module
it imports gives a new prefix, which is what makes Pulumi (and pipeline step caching)
see the change. The local runner uploads and checks the same bundles.

A bundle imports only the standard library and the packages of the training image.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

from ml.pipeline.contract import SCRIPT_MODULES

_ML_DIR = Path(__file__).resolve().parent.parent
_STEPS_DIR = _ML_DIR / "steps"
SHARED_MODULES: Mapping[str, Path] = MappingProxyType({"limits.py": _ML_DIR / "limits.py"})
"""Modules a bundle takes from outside ml/steps/: the limits the settings validate with
(standard library only), so a job's defaults and ranges are the stack's."""


def _source(name: str) -> Path:
    return SHARED_MODULES.get(name, _STEPS_DIR / name)


CODE_PREFIX = "pipeline-code"

BUNDLES: Mapping[str, Mapping[str, Path]] = MappingProxyType(
    {
        script: MappingProxyType({name: _source(name) for name in sorted({script, *modules})})
        for script, modules in SCRIPT_MODULES.items()
    }
)
"""Script name -> {file name in the job's code directory: local file}, the script included."""


def content_hash(files: Mapping[str, Path]) -> str:
    """SHA-256 (hex) over the bundle's file names and bytes, in name order."""
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(f"{name}\0{hashlib.sha256(files[name].read_bytes()).hexdigest()}\n".encode())
    return digest.hexdigest()


def bundle_prefix(files: Mapping[str, Path]) -> str:
    """`pipeline-code/<sha256>/`: where a bundle (file name -> local file) is uploaded."""
    return f"{CODE_PREFIX}/{content_hash(files)}/"


def bundle_objects(script: str) -> dict[str, Path]:
    """S3 key -> local file, for every file of the bundle of `script`."""
    prefix = bundle_prefix(BUNDLES[script])
    return {f"{prefix}{name}": path for name, path in BUNDLES[script].items()}


def code_uris(bucket: str) -> dict[str, str]:
    """The `s3://` prefix of every script's bundle in `bucket` (`PipelineConfig.code_uris`)."""
    return {script: f"s3://{bucket}/{bundle_prefix(BUNDLES[script])}" for script in sorted(BUNDLES)}
