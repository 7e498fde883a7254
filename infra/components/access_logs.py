"""The stack's log bucket: where S3 delivers the server access logs of the stack's buckets.

AWS's constraints on a server-access-log target decide its shape
(https://docs.aws.amazon.com/AmazonS3/latest/userguide/enable-server-access-logging.html):
- default encryption must be SSE-S3 (AES-256); SSE-KMS is not supported for log
  delivery, so this is the one bucket of the stack not encrypted with the stack key;
- same account and region as the source buckets, no Object Lock, no default retention;
- with Object Ownership `BucketOwnerEnforced` (no ACLs) delivery is granted by a
  bucket policy to `logging.s3.amazonaws.com`, limited with `aws:SourceArn` (the
  source buckets) and `aws:SourceAccount` (this account) against confused deputies.

Logs are kept `ACCESS_LOG_RETENTION_DAYS` (a year of audit trail), then expire.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.components.secure_bucket import (
    NONCURRENT_RETENTION_DAYS,
    AccessLogTarget,
    LifecycleRule,
    lifecycle_rules,
    private_versioned_bucket,
    tls_only_statement,
)
from infra.iam import Statement, policy_json

ACCESS_LOG_RETENTION_DAYS = 365
ACCESS_LOG_PREFIX = "s3-access-logs/"
"""Under it, the partitioned key format adds `<account>/<region>/<source bucket>/<date>/`."""
LOG_DELIVERY_SERVICE = "logging.s3.amazonaws.com"


@dataclass(frozen=True)
class AccessLogBucketArgs:
    bucket_name: str
    account: str
    source_buckets: Sequence[str]
    """Names of the buckets that log here; only their logs are accepted."""
    tags: Mapping[str, str]


def log_delivery_statement(
    log_bucket_arn: pulumi.Input[str], account: str, source_buckets: Sequence[str]
) -> Statement:
    """The bucket-policy grant AWS documents for server access log delivery."""
    return Statement(
        sid="ServerAccessLogsOfStackBuckets",
        actions=["s3:PutObject"],
        principals={"Service": [LOG_DELIVERY_SERVICE]},
        resources=[pulumi.Output.concat(log_bucket_arn, "/", ACCESS_LOG_PREFIX, "*")],
        conditions={
            "ArnLike": {"aws:SourceArn": [f"arn:aws:s3:::{b}" for b in source_buckets]},
            "StringEquals": {"aws:SourceAccount": account},
        },
    )


class AccessLogBucket(pulumi.ComponentResource):
    bucket: aws.s3.Bucket
    policy: aws.s3.BucketPolicy

    def __init__(
        self, name: str, args: AccessLogBucketArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("promote:aws:AccessLogBucket", name, None, opts)
        if not args.source_buckets:
            raise ValueError(f"{name}: an access log bucket needs at least one source bucket")
        self._sources = frozenset(args.source_buckets)
        child = pulumi.ResourceOptions(parent=self)
        self.bucket, block, versioning = private_versioned_bucket(
            name, args.bucket_name, args.tags, child
        )
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption",
            bucket=self.bucket.bucket,
            rules=[{"apply_server_side_encryption_by_default": {"sse_algorithm": "AES256"}}],
            opts=child,
        )
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-lifecycle",
            bucket=self.bucket.bucket,
            rules=lifecycle_rules(
                [
                    LifecycleRule(
                        id="expire-access-logs",
                        prefix="",
                        expire_days=ACCESS_LOG_RETENTION_DAYS,
                        noncurrent_expire_days=NONCURRENT_RETENTION_DAYS,
                    )
                ]
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[versioning]),
        )
        # The ARN from the fixed name, so the policy (and the pack's check of it) is known at
        # a first preview.
        arn = f"arn:aws:s3:::{args.bucket_name}"
        self.policy = aws.s3.BucketPolicy(
            f"{name}-policy",
            bucket=self.bucket.bucket,
            policy=policy_json(
                tls_only_statement(arn),
                log_delivery_statement(arn, args.account, args.source_buckets),
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[block]),
        )
        self.register_outputs({"bucket": self.bucket.bucket, "arn": self.bucket.arn})

    def target(self, source_bucket: str) -> AccessLogTarget:
        """Where `source_bucket` logs to; it must be one of the buckets the policy admits."""
        if source_bucket not in self._sources:
            raise ValueError(
                f"{source_bucket} is not a source of this access log bucket (its policy admits "
                f"{sorted(self._sources)}): add it to AccessLogBucketArgs.source_buckets"
            )
        return AccessLogTarget(
            bucket=self.bucket.bucket, prefix=ACCESS_LOG_PREFIX, ready=[self.policy]
        )
