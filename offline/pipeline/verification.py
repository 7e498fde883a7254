"""Staging's verification in the local run: the checks of `ml.verify`, against moto.

After the local pipeline run and its deployment, `verify_locally` runs the same
`ml.verify.verify` the staging promotion job runs: the pipeline's package must be
approved, the (moto) endpoint must serve exactly that package, the package must run the
commit's training image, and a smoke test must pass. Only the two things moto cannot
do are local: the pipeline already ran (its result is handed in), and the smoke
requests go to the real inference code loaded with the package's model artifact from
local S3, instead of a SageMaker endpoint container.
"""

from __future__ import annotations

import io
import json
import tarfile
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ml.serving import inference
from ml.verify.checks import Record, verify
from ml.verify.inputs import SAMPLE_CSV, Budget, CheckFailedError, Target, sample_notes
from ml.verify.smoke import Invoke
from offline.aws import LocalAws
from offline.pipeline.interface import RECORD_FILE
from offline.pipeline.runner import RunResult


def _model_invoker(aws: LocalAws, package_arn: str, scratch: Path) -> Invoke:
    """The serving code with the package's own model artifact, as the endpoint would load it."""
    sm, s3 = aws.client("sagemaker"), aws.client("s3")
    package = sm.describe_model_package(ModelPackageName=package_arn)
    (container,) = package["InferenceSpecification"]["Containers"]
    bucket, _, key = str(container["ModelDataUrl"]).removeprefix("s3://").partition("/")
    archive = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        tar.extractall(scratch, filter="data")
    model = inference.model_fn(scratch)

    def invoke(body: bytes, content_type: str) -> tuple[int, bytes]:
        try:
            notes = inference.input_fn(body, content_type)
            answer, _ = inference.output_fn(inference.predict_fn(notes, model), "application/json")
        except inference.InferenceError as error:
            return 400, str(error).encode()
        return 200, answer.encode()

    return invoke


def _no_model(_body: bytes, _content_type: str) -> tuple[int, bytes]:
    return 503, b"no model package"


def verify_locally(
    stack: str,
    outputs: Mapping[str, Any],
    result: RunResult,
    aws: LocalAws,
    workdir: Path,
) -> Record:
    """Run staging's checks on this local run; write `<workdir>/verification.json`."""
    commit = str(outputs.get("deployed_commit"))
    target = Target.from_outputs(stack, commit, outputs)
    budget = Budget(pipeline_seconds=0, endpoint_seconds=30, poll_seconds=0.5)

    def pipeline() -> tuple[str, str]:
        if result.model_package_arn is None:
            raise CheckFailedError("the local run registered no model package")
        if result.approval_status != "Approved":
            raise CheckFailedError(
                f"the local run left {result.model_package_arn} {result.approval_status}: the "
                "model did not pass the pipeline's quality condition"
            )
        return "local-execution", result.model_package_arn

    with tempfile.TemporaryDirectory(dir=workdir) as scratch:
        invoke = (
            _model_invoker(aws, result.model_package_arn, Path(scratch))
            if result.model_package_arn
            else _no_model
        )
        record = verify(
            target,
            sm=aws.client("sagemaker"),
            invoke=invoke,
            budget=budget,
            notes=sample_notes(SAMPLE_CSV, budget.smoke_requests),
            pipeline=pipeline,
        )
    document = {**record.document(), "local": True}
    (workdir / RECORD_FILE).write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
    return record
