"""The stack's resources in local AWS, and the events SageMaker emits about them.

`provision` creates what the stack's Pulumi program would have created for a
run (buckets, the model package group) and uploads the dataset;
`approval_event` is the EventBridge event of an approval, as delivered.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ml.data.upload import upload_dataset
from ml.steps.notes_csv import DataError
from offline.aws import LocalAws
from offline.pipeline.errors import LocalRunError

Echo = Callable[[str], None]


@dataclass(frozen=True)
class StackOutputs:
    """What the local run needs from a stack (the offline plan's outputs)."""

    data_bucket: str
    artifacts_bucket: str
    role_arn: str
    model_package_group: str
    region: str

    @property
    def account_id(self) -> str:
        """The stack's account, read from the execution role ARN."""
        return self.role_arn.split(":")[4]


def provision(outputs: StackOutputs, aws: LocalAws, dataset_csv: Path, echo: Echo) -> None:
    s3 = aws.client("s3")
    for bucket in (outputs.data_bucket, outputs.artifacts_bucket):
        location = {} if outputs.region == "us-east-1" else {"LocationConstraint": outputs.region}
        with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
            s3.create_bucket(Bucket=bucket, CreateBucketConfiguration=location)
    registry = aws.client("sagemaker")
    groups = registry.list_model_package_groups(NameContains=outputs.model_package_group)
    if outputs.model_package_group not in {
        g["ModelPackageGroupName"] for g in groups["ModelPackageGroupSummaryList"]
    }:
        registry.create_model_package_group(ModelPackageGroupName=outputs.model_package_group)
    try:
        uris = upload_dataset(dataset_csv, outputs.data_bucket, s3)
    except DataError as error:
        raise LocalRunError(f"dataset upload failed: {error}", "upload-dataset") from error
    except OSError as error:
        raise LocalRunError(
            f"cannot read dataset {dataset_csv}: {error.strerror}", "upload-dataset", exit_code=2
        ) from None
    server = f" (server pid {aws.pid})" if aws.pid is not None else ""
    echo(f"local AWS at {aws.endpoint_url}{server}: buckets, model package group, dataset ready")
    for split, uri in uris.items():
        echo(f"  {split:<10} {uri}")


def approval_event(aws: LocalAws, model_package_arn: str) -> dict[str, Any]:
    """The "SageMaker Model Package State Change" event EventBridge would deliver."""
    package = aws.client("sagemaker").describe_model_package(ModelPackageName=model_package_arn)
    detail = json.loads(json.dumps(package, default=str))
    detail.pop("ResponseMetadata", None)
    return {
        "version": "0",
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, model_package_arn)),
        "detail-type": "SageMaker Model Package State Change",
        "source": "aws.sagemaker",
        "account": model_package_arn.split(":")[4],
        "time": detail.get("LastModifiedTime") or detail.get("CreationTime"),
        "region": aws.region,
        "resources": [model_package_arn],
        "detail": detail,
    }
