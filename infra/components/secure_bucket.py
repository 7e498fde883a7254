"""An S3 bucket that cannot be made public, keeps versions, encrypts with the
stack's KMS key and refuses plain-HTTP access."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.iam import Statement, policy_json


@dataclass(frozen=True)
class SecureBucketArgs:
    bucket_name: str
    kms_key_arn: pulumi.Input[str]
    tags: Mapping[str, str]


def tls_only_policy(bucket_arn: pulumi.Input[str]) -> pulumi.Output[str]:
    return policy_json(
        Statement(
            sid="DenyInsecureTransport",
            effect="Deny",
            actions=["s3:*"],
            principals={"AWS": ["*"]},
            resources=[bucket_arn, pulumi.Output.concat(bucket_arn, "/*")],
            conditions={"Bool": {"aws:SecureTransport": "false"}},
        )
    )


class SecureBucket(pulumi.ComponentResource):
    bucket: aws.s3.Bucket

    def __init__(
        self, name: str, args: SecureBucketArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("promote:aws:SecureBucket", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.bucket = aws.s3.Bucket(
            f"{name}-bucket", bucket=args.bucket_name, tags=dict(args.tags), opts=child
        )
        block = aws.s3.BucketPublicAccessBlock(
            f"{name}-public-access-block",
            bucket=self.bucket.bucket,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=child,
        )
        aws.s3.BucketVersioning(
            f"{name}-versioning",
            bucket=self.bucket.bucket,
            versioning_configuration={"status": "Enabled"},
            opts=child,
        )
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption",
            bucket=self.bucket.bucket,
            rules=[
                {
                    "apply_server_side_encryption_by_default": {
                        "sse_algorithm": "aws:kms",
                        "kms_master_key_id": args.kms_key_arn,
                    },
                    "bucket_key_enabled": True,
                }
            ],
            opts=child,
        )
        # S3 rejects a bucket policy while the public access block is still being applied.
        aws.s3.BucketPolicy(
            f"{name}-tls-only",
            bucket=self.bucket.bucket,
            policy=tls_only_policy(self.bucket.arn),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[block]),
        )
        self.register_outputs({"bucket": self.bucket.bucket, "arn": self.bucket.arn})
