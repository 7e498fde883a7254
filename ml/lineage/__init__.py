"""Lineage of a served model: endpoint -> config -> model -> package -> MLflow run -> sources.

    python -m ml.lineage --stack prod          # the chain of prod's endpoint
    python -m ml.lineage --stack prod --json   # the same, as JSON

The key names of the facts a registered model package carries in its
`CustomerMetadataProperties` are defined once, in `keys`: the pipeline's register
step writes them, the deployer copies the commit onto what it creates, and `chain`
reads them back. By concern:

- `keys`: those key names and the deployer's tags (the pipeline definition and the
  deployer Lambda import them);
- `record`: the chain as data (`Lineage`), its JSON form and its text form (`format_chain`);
- `trace`: `chain`, which follows the links with a boto3 SageMaker client from the
  caller, and `mlflow_run`, which looks the run up (importing `mlflow` only then);
- `cli`: the command above, from the stack's outputs, and its exit codes.

The package imports only the standard library at module level. What its modules offer
callers is importable from `ml.lineage` itself.
"""

from ml.lineage.cli import (
    ENDPOINT_OUTPUT,
    EXIT_BROKEN,
    EXIT_INTERNAL,
    EXIT_USAGE,
    REGION_OUTPUT,
    TRACKING_OUTPUT,
    LineageConfigError,
    main,
    parser,
    run,
)
from ml.lineage.keys import (
    ABSENT,
    CHAMPION_METRIC_VALUE,
    COMMIT,
    COMMIT_TAG,
    DATA_SHA256,
    METADATA_KEYS,
    METRIC,
    METRIC_VALUE,
    MLFLOW_RUN_ID,
    MLFLOW_TRACKING_ARN,
    PACKAGE_ARN_TAG,
    REQUIRED_KEYS,
    TRAINING_IMAGE,
    package_commit,
)
from ml.lineage.record import Lineage, MlflowRun, ModelPackage, Variant, format_chain
from ml.lineage.trace import LineageError, SageMakerClient, chain, mlflow_run

__all__ = [
    "ABSENT",
    "CHAMPION_METRIC_VALUE",
    "COMMIT",
    "COMMIT_TAG",
    "DATA_SHA256",
    "ENDPOINT_OUTPUT",
    "EXIT_BROKEN",
    "EXIT_INTERNAL",
    "EXIT_USAGE",
    "METADATA_KEYS",
    "METRIC",
    "METRIC_VALUE",
    "MLFLOW_RUN_ID",
    "MLFLOW_TRACKING_ARN",
    "PACKAGE_ARN_TAG",
    "REGION_OUTPUT",
    "REQUIRED_KEYS",
    "TRACKING_OUTPUT",
    "TRAINING_IMAGE",
    "Lineage",
    "LineageConfigError",
    "LineageError",
    "MlflowRun",
    "ModelPackage",
    "SageMakerClient",
    "Variant",
    "chain",
    "format_chain",
    "main",
    "mlflow_run",
    "package_commit",
    "parser",
    "run",
]
