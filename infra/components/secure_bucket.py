"""An S3 bucket that cannot be made public, keeps versions, encrypts with the
stack's KMS key and refuses plain-HTTP access.

Every bucket also gets a lifecycle configuration (incomplete multipart uploads
are aborted after `ABORT_INCOMPLETE_UPLOAD_DAYS`, Security Hub S3.13) plus the
caller's prefix rules, and, given an `AccessLogTarget`, server access logging
into the stack's log bucket (S3.9).

The artifacts bucket's own rules, `ARTIFACTS_LIFECYCLE_RULES`, are fixed rather
than settings, and chosen so that nothing a later step or a deployed model still
reads can expire:
- `data-capture/` (what endpoints capture, including request payloads): current
  objects expire after `DATA_CAPTURE_RETENTION_DAYS`, the drift monitor only reads
  recent hours; the expired versions are gone a day later.
- `pipelines/` (per-execution step outputs and, under `pipelines/<name>/models/`,
  the model artifacts registered packages point to): only noncurrent versions
  expire, after `NONCURRENT_RETENTION_DAYS`. Current objects stay, because an
  approved package's model and a cached step's outputs must outlive any fixed age.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.iam import Statement, policy_json

ABORT_INCOMPLETE_UPLOAD_DAYS = 7
"""Parts of a multipart upload never completed are billed until aborted."""
DATA_CAPTURE_RETENTION_DAYS = 90
NONCURRENT_RETENTION_DAYS = 30
"""How long an overwritten or deleted object stays recoverable where versions expire."""
DATA_CAPTURE_PREFIX = "data-capture/"
"""Where endpoints write captured requests and responses (the deployer's capture URI)."""
PIPELINE_OUTPUT_PREFIX = "pipelines/"
"""Where the training pipeline writes step outputs and model artifacts (ml/pipeline/wiring.py)."""


@dataclass(frozen=True)
class LifecycleRule:
    """One prefix rule of a bucket's lifecycle configuration."""

    id: str
    prefix: str
    expire_days: int | None = None
    """Current objects expire this many days after creation (a delete marker if versioned)."""
    noncurrent_expire_days: int | None = None
    """Noncurrent versions are deleted this many days after they stop being current."""

    def __post_init__(self) -> None:
        if self.prefix and not self.prefix.endswith("/"):
            raise ValueError(f"lifecycle rule {self.id}: prefix {self.prefix!r} must end in '/'")
        if self.expire_days is None and self.noncurrent_expire_days is None:
            raise ValueError(f"lifecycle rule {self.id}: set expire_days or noncurrent_expire_days")

    def render(self) -> aws.s3.BucketLifecycleConfigurationRuleArgsDict:
        rule: aws.s3.BucketLifecycleConfigurationRuleArgsDict = {
            "id": self.id,
            "status": "Enabled",
            "filter": {"prefix": self.prefix},
        }
        if self.expire_days is not None:
            rule["expiration"] = {"days": self.expire_days}
        if self.noncurrent_expire_days is not None:
            rule["noncurrent_version_expiration"] = {"noncurrent_days": self.noncurrent_expire_days}
        return rule


ABORT_INCOMPLETE_UPLOADS: aws.s3.BucketLifecycleConfigurationRuleArgsDict = {
    "id": "abort-incomplete-multipart-uploads",
    "status": "Enabled",
    "filter": {"prefix": ""},
    "abort_incomplete_multipart_upload": {"days_after_initiation": ABORT_INCOMPLETE_UPLOAD_DAYS},
}

ARTIFACTS_LIFECYCLE_RULES: tuple[LifecycleRule, ...] = (
    LifecycleRule(
        id="expire-data-capture",
        prefix=DATA_CAPTURE_PREFIX,
        expire_days=DATA_CAPTURE_RETENTION_DAYS,
        noncurrent_expire_days=1,
    ),
    LifecycleRule(
        id="expire-replaced-pipeline-outputs",
        prefix=PIPELINE_OUTPUT_PREFIX,
        noncurrent_expire_days=NONCURRENT_RETENTION_DAYS,
    ),
)


@dataclass(frozen=True)
class AccessLogTarget:
    """Where a bucket's server access logs go: the stack's log bucket, under `prefix`."""

    bucket: pulumi.Input[str]
    prefix: str
    ready: Sequence[pulumi.Resource] = ()
    """Resources logging waits for (the log bucket's policy that lets S3 deliver)."""


@dataclass(frozen=True)
class SecureBucketArgs:
    bucket_name: str
    kms_key_arn: pulumi.Input[str]
    tags: Mapping[str, str]
    access_log: AccessLogTarget | None = None
    lifecycle_rules: Sequence[LifecycleRule] = ()


def tls_only_statement(bucket_arn: pulumi.Input[str]) -> Statement:
    return Statement(
        sid="DenyInsecureTransport",
        effect="Deny",
        actions=["s3:*"],
        principals={"AWS": ["*"]},
        resources=[bucket_arn, pulumi.Output.concat(bucket_arn, "/*")],
        conditions={"Bool": {"aws:SecureTransport": "false"}},
    )


def tls_only_policy(bucket_arn: pulumi.Input[str]) -> pulumi.Output[str]:
    return policy_json(tls_only_statement(bucket_arn))


def lifecycle_rules(
    rules: Sequence[LifecycleRule],
) -> list[aws.s3.BucketLifecycleConfigurationRuleArgsDict]:
    """The bucket-wide abort rule first, then `rules`; ids must be unique."""
    ids = [ABORT_INCOMPLETE_UPLOADS["id"], *(rule.id for rule in rules)]
    if len(set(ids)) != len(ids):
        raise ValueError(f"duplicate lifecycle rule ids: {ids}")
    return [ABORT_INCOMPLETE_UPLOADS, *(rule.render() for rule in rules)]


def private_bucket(
    name: str, bucket: aws.s3.Bucket, opts: pulumi.ResourceOptions
) -> aws.s3.BucketPublicAccessBlock:
    """No public access and no ACLs: the bucket owner owns every object, policies decide."""
    aws.s3.BucketOwnershipControls(
        f"{name}-ownership",
        bucket=bucket.bucket,
        rule={"object_ownership": "BucketOwnerEnforced"},
        opts=opts,
    )
    return aws.s3.BucketPublicAccessBlock(
        f"{name}-public-access-block",
        bucket=bucket.bucket,
        block_public_acls=True,
        block_public_policy=True,
        ignore_public_acls=True,
        restrict_public_buckets=True,
        opts=opts,
    )


def private_versioned_bucket(
    name: str, bucket_name: str, tags: Mapping[str, str], child: pulumi.ResourceOptions
) -> tuple[aws.s3.Bucket, aws.s3.BucketPublicAccessBlock, aws.s3.BucketVersioning]:
    """The bucket, its public access block and versioning: what every bucket here starts with."""
    bucket = aws.s3.Bucket(f"{name}-bucket", bucket=bucket_name, tags=dict(tags), opts=child)
    block = private_bucket(name, bucket, child)
    versioning = aws.s3.BucketVersioning(
        f"{name}-versioning",
        bucket=bucket.bucket,
        versioning_configuration={"status": "Enabled"},
        opts=child,
    )
    return bucket, block, versioning


class SecureBucket(pulumi.ComponentResource):
    bucket: aws.s3.Bucket

    def __init__(
        self, name: str, args: SecureBucketArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("promote:aws:SecureBucket", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.bucket, block, versioning = private_versioned_bucket(
            name, args.bucket_name, args.tags, child
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
        # Noncurrent-version rules need versioning to be on first.
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-lifecycle",
            bucket=self.bucket.bucket,
            rules=lifecycle_rules(args.lifecycle_rules),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[versioning]),
        )
        # S3 rejects a bucket policy while the public access block is still being applied.
        aws.s3.BucketPolicy(
            f"{name}-tls-only",
            bucket=self.bucket.bucket,
            policy=tls_only_policy(self.bucket.arn),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[block]),
        )
        if (target := args.access_log) is not None:
            aws.s3.BucketLogging(
                f"{name}-access-logging",
                bucket=self.bucket.bucket,
                target_bucket=target.bucket,
                target_prefix=target.prefix,
                # <prefix><account>/<region>/<bucket>/YYYY/MM/DD/..., what Athena partitions on.
                target_object_key_format={
                    "partitioned_prefix": {"partition_date_source": "EventTime"}
                },
                opts=pulumi.ResourceOptions(parent=self, depends_on=list(target.ready)),
            )
        self.register_outputs({"bucket": self.bucket.bucket, "arn": self.bucket.arn})
