"""approve-model: set the registered model package to Approved.

Runs only on the `accuracy-check` condition's true branch. Approval is what the
stack's EventBridge rule (model package group + `Approved`) turns into a
deployment, so this is the single place the pipeline promotes a model.

Runs as a processing job on the training image: boto3 with the job's execution
role (needs `sagemaker:UpdateModelPackage` on the group's packages). Honours
`AWS_ENDPOINT_URL` like any boto3 client, which is how the local run points it
at moto.

Self-contained (stdlib + boto3): uploaded and run as is.
"""

from __future__ import annotations

import argparse
import re
import sys
from typing import Any

import boto3

APPROVED = "Approved"
_PACKAGE_ARN = re.compile(r"^arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:\d{12}:model-package/.+/\d+$")


class ApprovalError(ValueError):
    """The model package cannot be approved; the message says why."""


def approve(client: Any, model_package_arn: str, description: str) -> str:
    """Approve a versioned model package; returns its status as read back from SageMaker."""
    if not _PACKAGE_ARN.match(model_package_arn):
        raise ApprovalError(
            f"not a versioned model package ARN: {model_package_arn!r} "
            "(expected arn:aws:sagemaker:<region>:<account>:model-package/<group>/<version>)"
        )
    client.update_model_package(
        ModelPackageArn=model_package_arn,
        ModelApprovalStatus=APPROVED,
        ApprovalDescription=description[:1024],
    )
    status: str = client.describe_model_package(ModelPackageName=model_package_arn)[
        "ModelApprovalStatus"
    ]
    if status != APPROVED:
        raise ApprovalError(f"{model_package_arn} is {status!r} after the update, not Approved")
    return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-package-arn", required=True)
    parser.add_argument("--evaluation-report", default="", help="S3 URI of evaluation.json")
    args = parser.parse_args(argv)
    description = "Approved by the training pipeline: accuracy met the threshold."
    if args.evaluation_report:
        description += f" Evaluation: {args.evaluation_report}"
    try:
        status = approve(boto3.client("sagemaker"), args.model_package_arn, description)
    except ApprovalError as error:
        print(f"approve-model failed: {error}", file=sys.stderr)
        return 1
    print(f"{args.model_package_arn} {status}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
