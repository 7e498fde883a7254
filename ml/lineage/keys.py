"""The names of the lineage facts a registered model package carries, and the deployer's tags.

The pipeline's register step writes these `CustomerMetadataProperties` keys, the deployer
copies the commit onto the models and endpoint configs it creates (`COMMIT_TAG`, with the
package's ARN as `PACKAGE_ARN_TAG`), and `ml.lineage.trace` reads them back. Standard
library only: the pipeline definition and the deployer Lambda import it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
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


_COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")


def package_commit(package: Mapping[str, Any]) -> str | None:
    """The 40-hex commit of a DescribeModelPackage response, None if absent or malformed.

    A malformed value is not tagged (a tag SageMaker rejects would stop a deployment);
    `chain` still reports what the package says.
    """
    value = (package.get("CustomerMetadataProperties") or {}).get(COMMIT)
    return value if isinstance(value, str) and _COMMIT_RE.match(value) else None
