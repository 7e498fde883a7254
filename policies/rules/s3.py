"""s3-bucket-hardening (stack policy): every bucket is private, versioned, KMS-encrypted, TLS-only.

One exception, because AWS allows no other: a bucket that only receives S3 server access
logs of this stack's buckets (a `targetBucket`, whose policy admits only the log delivery
service) may use SSE-S3, the only default encryption log delivery supports.

With pulumi-aws v7 these settings are separate resources whose `bucket` input
is the bucket's name, so the rule relates resources across the whole stack:
a sub-resource belongs to a bucket when its `bucket` equals the bucket's name
or, when that name is unknown at preview, when it depends on the bucket.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from pulumi_policy import (
    EnforcementLevel,
    ReportViolation,
    StackValidationArgs,
    StackValidationPolicy,
)

from ._props import (
    UNKNOWN,
    DocumentError,
    as_list,
    get_path,
    is_everyone,
    is_unknown,
    json_document,
    props_of,
    statements,
)

NAME = "s3-bucket-hardening"

BUCKET_TYPES = ("aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2")
PUBLIC_ACCESS_BLOCK = ("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",)
VERSIONING = (
    "aws:s3/bucketVersioning:BucketVersioning",
    "aws:s3/bucketVersioningV2:BucketVersioningV2",
)
ENCRYPTION = (
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2",
)
BUCKET_POLICY = ("aws:s3/bucketPolicy:BucketPolicy",)
BUCKET_LOGGING = ("aws:s3/bucketLogging:BucketLogging", "aws:s3/bucketLoggingV2:BucketLoggingV2")
LOG_DELIVERY = "logging.s3.amazonaws.com"
SSE_S3 = "AES256"
PUBLIC_ACCESS_FLAGS = (
    "blockPublicAcls",
    "blockPublicPolicy",
    "ignorePublicAcls",
    "restrictPublicBuckets",
)
KMS_ALGORITHMS = ("aws:kms", "aws:kms:dsse")


@dataclass(frozen=True)
class StackResource:
    """What the rule needs of a resource: type, URN, name, plain inputs, dependency URNs."""

    type: str
    urn: str
    name: str
    props: Mapping[str, object]
    dependencies: Sequence[str] = field(default_factory=tuple)


def _bucket_name(bucket: StackResource) -> object:
    return bucket.props.get("bucket")


def _belongs(child: StackResource, bucket: StackResource) -> bool:
    target = child.props.get("bucket")
    name = _bucket_name(bucket)
    if isinstance(target, str) and not is_unknown(target) and isinstance(name, str):
        return target == name
    return bucket.urn in child.dependencies


def _public_access_problem(blocks: list[StackResource]) -> str | None:
    if not blocks:
        return "has no public access block (aws.s3.BucketPublicAccessBlock)"
    for block in blocks:
        off = [
            flag
            for flag in PUBLIC_ACCESS_FLAGS
            if block.props.get(flag) is not True and block.props.get(flag) is not UNKNOWN
        ]
        if off:
            return f"public access block {block.name!r} does not set {', '.join(off)} to true"
    return None


def _versioning_problem(configs: list[StackResource]) -> str | None:
    if not configs:
        return "has no versioning (aws.s3.BucketVersioning with status Enabled)"
    for config in configs:
        status = get_path(config.props, "versioningConfiguration", "status")
        if status != "Enabled" and status is not UNKNOWN:
            return f"versioning {config.name!r} has status {status!r}, not 'Enabled'"
    return None


def is_access_log_target(
    bucket: StackResource, logging: list[StackResource], policies: list[StackResource]
) -> bool:
    """A bucket that only receives S3 server access logs, which AWS delivers to SSE-S3 only.

    It must be the `targetBucket` of a logging configuration of this stack, and its bucket
    policy may allow nobody but the log delivery service.
    """
    name = _bucket_name(bucket)
    if is_unknown(name) or name not in [r.props.get("targetBucket") for r in logging]:
        return False
    if not policies:
        return False
    for policy in policies:
        try:
            allows = [
                s
                for s in statements(json_document(policy.props.get("policy")))
                if s.effect == "Allow"
            ]
        except DocumentError:
            return False
        for statement in allows:
            services = get_path(statement.principal, "Service")
            if as_list(services) != [LOG_DELIVERY] or is_everyone(statement.principal):
                return False
    return True


def _encryption_problem(configs: list[StackResource], *, log_target: bool = False) -> str | None:
    if not configs:
        return "has no default encryption (SSE-KMS)"
    allowed = (*KMS_ALGORITHMS, SSE_S3) if log_target else KMS_ALGORITHMS
    for config in configs:
        rules = config.props.get("rules")
        if rules is UNKNOWN:
            continue
        algorithms = [
            get_path(rule, "applyServerSideEncryptionByDefault", "sseAlgorithm")
            for rule in as_list(rules)
        ]
        if not algorithms or any(
            algorithm not in allowed and algorithm is not UNKNOWN for algorithm in algorithms
        ):
            return f"encryption {config.name!r} uses {algorithms!r}, not SSE-KMS (aws:kms)"
    return None


def _denies_insecure_transport(document: object) -> bool:
    for statement in statements(document):
        if statement.effect != "Deny" or not is_everyone(statement.principal):
            continue
        if not any(isinstance(a, str) and a.lower() in ("s3:*", "*") for a in statement.actions):
            continue
        secure = get_path(dict(statement.conditions), "Bool", "aws:SecureTransport")
        if any(str(value).lower() == "false" for value in as_list(secure)):
            return True
    return False


def _tls_problem(policies: list[StackResource]) -> str | None:
    if not policies:
        return "has no bucket policy denying requests without TLS (aws:SecureTransport)"
    for policy in policies:
        try:
            document = json_document(policy.props.get("policy"))
            if document is UNKNOWN or _denies_insecure_transport(document):
                return None
        except DocumentError as error:
            return f"bucket policy {policy.name!r} is not a readable IAM document: {error}"
    return "bucket policy does not deny s3:* to '*' when aws:SecureTransport is false (TLS-only)"


def bucket_violations(resources: Sequence[StackResource]) -> list[tuple[str, str]]:
    """(bucket URN, message) for every hardening setting a bucket lacks."""
    buckets = [r for r in resources if r.type in BUCKET_TYPES]
    found: list[tuple[str, str]] = []
    for bucket in buckets:

        def related(types: tuple[str, ...], bucket: StackResource = bucket) -> list[StackResource]:
            return [r for r in resources if r.type in types and _belongs(r, bucket)]

        problems = (
            _public_access_problem(related(PUBLIC_ACCESS_BLOCK)),
            _versioning_problem(related(VERSIONING)),
            _encryption_problem(
                related(ENCRYPTION),
                log_target=is_access_log_target(
                    bucket,
                    [r for r in resources if r.type in BUCKET_LOGGING],
                    related(BUCKET_POLICY),
                ),
            ),
            _tls_problem(related(BUCKET_POLICY)),
        )
        label = _bucket_name(bucket)
        shown = label if isinstance(label, str) and not is_unknown(label) else bucket.name
        found.extend((bucket.urn, f"bucket {shown!r} {problem}") for problem in problems if problem)
    return found


def s3_bucket_hardening_validator(
    args: StackValidationArgs, report_violation: ReportViolation
) -> None:
    resources = [
        StackResource(
            type=r.resource_type,
            urn=r.urn,
            name=r.name,
            props=props_of(r.props),
            dependencies=tuple(d.urn for d in r.dependencies),
        )
        for r in args.resources
    ]
    for urn, message in bucket_violations(resources):
        report_violation(message, urn)


POLICY = StackValidationPolicy(
    name=NAME,
    description=(
        "Every S3 bucket has a public access block with all four flags, versioning, SSE-KMS "
        "and a bucket policy that denies non-TLS requests."
    ),
    validate=s3_bucket_hardening_validator,
    enforcement_level=EnforcementLevel.MANDATORY,
)
