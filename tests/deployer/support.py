"""Shared values and helpers of the deployer tests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ml.deployer.config import DeployerConfig, RolloutConfig
from ml.deployer.events import DETAIL_TYPE, SOURCE

ACCOUNT = "123456789012"  # moto's default account
REGION = "eu-west-1"
GROUP = "promote-code-dev-models"
ENDPOINT = "promote-code-dev-endpoint"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/promote-code-dev-sagemaker-execution"
KMS_KEY_ARN = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
CAPTURE_URI = f"s3://promote-code-dev-artifacts-{ACCOUNT}/data-capture"
ARTIFACTS_BUCKET = f"promote-code-dev-artifacts-{ACCOUNT}"
IMAGE = "111111111111.dkr.ecr.eu-west-1.amazonaws.com/promote-code/training@sha256:" + "a" * 64
COMMIT = "0123456789abcdef0123456789abcdef01234567"
LINEAGE = {
    "commit": COMMIT,
    "training_image": IMAGE,
    "data_sha256": "5" * 64,
    "mlflow_run_id": "0f1e2d3c4b5a69788796a5b4c3d2e1f0",
    "metric": "macro_f1",
    "metric_value": "0.8125",
}
"""CustomerMetadataProperties as the pipeline's register step records them."""


def deployer_config(**changes: Any) -> DeployerConfig:
    values: dict[str, Any] = {
        "endpoint_name": ENDPOINT,
        "model_package_group_name": GROUP,
        "execution_role_arn": ROLE_ARN,
        "data_capture_s3_uri": CAPTURE_URI,
        "instance_type": "ml.m5.large",
        "instance_count": 2,
        "rollout": RolloutConfig(mode="canary", canary_percent=10),
        "data_capture_sampling_percent": 25,
        "kms_key_arn": KMS_KEY_ARN,
        "rollback_alarm_names": (f"{ENDPOINT}-invocation-5xx", f"{ENDPOINT}-model-latency"),
    }
    values.update(changes)
    return DeployerConfig(**values)


def approval_event(
    package_arn: str, group: str, version: int, status: str = "Approved"
) -> dict[str, Any]:
    """An event shaped like the sample in the SageMaker developer guide."""
    return {
        "version": "0",
        "id": f"844e2571-85d4-695f-b930-0153b71dc{version:03d}",
        "detail-type": DETAIL_TYPE,
        "source": SOURCE,
        "account": ACCOUNT,
        "time": "2026-11-26T03:00:00Z",
        "region": REGION,
        "resources": [package_arn],
        "detail": {
            "ModelPackageGroupName": group,
            "ModelPackageVersion": version,
            "ModelPackageArn": package_arn,
            "CreationTime": "2026-11-26T02:59:00Z",
            "InferenceSpecification": {
                "Containers": [{"Image": IMAGE, "ModelDataUrl": "s3://bucket/model.tar.gz"}],
                "SupportedContentTypes": ["text/csv"],
                "SupportedResponseMIMETypes": ["text/csv"],
            },
            "ModelPackageStatus": "Completed",
            "ModelPackageStatusDetails": {"ValidationStatuses": [], "ImageScanStatuses": []},
            "CertifyForMarketplace": False,
            "ModelApprovalStatus": status,
            "LastModifiedTime": "2026-11-26T03:00:00Z",
        },
    }


@dataclass
class Registry:
    """The moto model registry of one test, with helpers to register and approve."""

    sagemaker: Any
    url: str
    s3: Any = None

    def group(self, name: str = GROUP) -> str:
        self.sagemaker.create_model_package_group(ModelPackageGroupName=name)
        return name

    def register(
        self,
        group: str = GROUP,
        status: str = "PendingManualApproval",
        *,
        upload: bool = True,
        metadata: dict[str, str] | None = None,
    ) -> str:
        """A new package version; its model artifact is uploaded unless `upload` is False.

        `metadata` becomes its CustomerMetadataProperties (the lineage the pipeline records).
        """
        self.count = getattr(self, "count", 0) + 1
        key = f"pipelines/{group}/models/{self.count}/model.tar.gz"
        if upload and self.s3 is not None:
            self.s3.put_object(Bucket=ARTIFACTS_BUCKET, Key=key, Body=b"model")
        response = self.sagemaker.create_model_package(
            ModelPackageGroupName=group,
            ModelApprovalStatus=status,
            InferenceSpecification={
                "Containers": [{"Image": IMAGE, "ModelDataUrl": f"s3://{ARTIFACTS_BUCKET}/{key}"}],
                "SupportedContentTypes": ["text/csv"],
                "SupportedResponseMIMETypes": ["text/csv"],
            },
            **({"CustomerMetadataProperties": metadata} if metadata else {}),
        )
        return str(response["ModelPackageArn"])

    def approve(self, package_arn: str) -> None:
        self.sagemaker.update_model_package(
            ModelPackageArn=package_arn, ModelApprovalStatus="Approved"
        )
