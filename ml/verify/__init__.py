"""Prove a promoted commit in staging: it trains, it is served, and it answers.

    python -m ml.verify --outputs staging-outputs.json --commit <sha> --out verification.json

The staging promotion job runs this after `pulumi up --stack staging` and the data
upload; the local run (`promote pipeline run --local --verify`) runs the same checks
against moto. By concern:

- `inputs`: what the checks are given (`Target` from the stack's outputs, `Budget`, the
  sample notes) and how a check fails (`CheckFailedError`);
- `deployment`: the checks against SageMaker: the pipeline's approved package, the
  endpoint serving it, the package's images;
- `smoke`: the smoke test, and `Invoke`, how it sends a request (`endpoint_invoker`);
- `checks`: `CHECKS`, the checks in order, and `verify`, which runs them into a `Record`;
- `cli`: the command above and its exit codes.

What its modules offer callers is importable from `ml.verify` itself.
"""

from ml.verify.checks import CHECKS, Record, verify
from ml.verify.cli import EXIT_FAILED, EXIT_RETRY, EXIT_USAGE, main
from ml.verify.deployment import (
    check_images,
    package_images,
    registered_package,
    run_pipeline,
    served_package,
    wait_for_endpoint,
)
from ml.verify.inputs import SAMPLE_CSV, Budget, CheckFailedError, Target, sample_notes
from ml.verify.smoke import Invoke, endpoint_invoker, smoke_test

__all__ = [
    "CHECKS",
    "EXIT_FAILED",
    "EXIT_RETRY",
    "EXIT_USAGE",
    "SAMPLE_CSV",
    "Budget",
    "CheckFailedError",
    "Invoke",
    "Record",
    "Target",
    "check_images",
    "endpoint_invoker",
    "main",
    "package_images",
    "registered_package",
    "run_pipeline",
    "sample_notes",
    "served_package",
    "smoke_test",
    "verify",
    "wait_for_endpoint",
]
