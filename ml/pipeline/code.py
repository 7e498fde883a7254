"""The step code the pipeline runs.

`STEP_SCRIPTS` (the scripts `ml.pipeline.contract.STEPS` names, in ml/steps/)
is what the Pulumi component uploads (one content-addressed S3
object per script, see `content_key`) and what the local runner executes. Each
script is self-contained: it imports only the standard library and the
packages of the training image, so one uploaded file is all a job needs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

from ml.pipeline.contract import SCRIPT_NAMES

_STEPS_DIR = Path(__file__).resolve().parent.parent / "steps"

STEP_SCRIPTS: Mapping[str, Path] = MappingProxyType(
    {name: _STEPS_DIR / name for name in SCRIPT_NAMES}
)
"""Script name (the file name inside the job's code directory) -> local file to upload."""

CODE_PREFIX = "pipeline-code"


def content_hash(path: Path) -> str:
    """SHA-256 of a script's bytes (hex)."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def content_key(name: str, path: Path | None = None) -> str:
    """Content-addressed S3 key of one step script: `pipeline-code/<sha256>/<name>`.

    The job downloads the object to `<code dir>/<name>`, so the file name must
    stay last; the hash before it changes whenever the content does, which is
    what makes Pulumi (and pipeline step caching) see a code change.
    """
    source = path if path is not None else STEP_SCRIPTS[name]
    return f"{CODE_PREFIX}/{content_hash(source)}/{name}"


def code_uris(bucket: str) -> dict[str, str]:
    """The `s3://` URI of every step script in `bucket`, as `PipelineConfig.code_uris` wants."""
    return {name: f"s3://{bucket}/{content_key(name)}" for name in sorted(STEP_SCRIPTS)}
