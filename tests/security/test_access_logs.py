"""S3.9 and S3.13: stack buckets log every request to the log bucket and expire what they may."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.components.access_logs import (
    ACCESS_LOG_PREFIX,
    ACCESS_LOG_RETENTION_DAYS,
    AccessLogBucket,
    AccessLogBucketArgs,
)
from infra.components.secure_bucket import (
    ABORT_INCOMPLETE_UPLOAD_DAYS,
    DATA_CAPTURE_PREFIX,
    PIPELINE_OUTPUT_PREFIX,
    LifecycleRule,
)
from offline.plan.capture import CapturedResource, StackPlan
from tests.plan_helpers import statements
from tests.security.support import (
    ACCOUNT,
    ARTIFACTS,
    DATA,
    LOGS,
    TAGS,
    capture,
    stack_buckets,
)


@pytest.fixture(scope="module")
def plan() -> StackPlan:
    return stack_buckets()


def of_bucket(plan: StackPlan, type_token: str, bucket: str) -> CapturedResource:
    (match,) = [r for r in plan.of_type(type_token) if r.inputs["bucket"] == bucket]
    return match


def test_data_and_artifacts_log_into_the_log_bucket(plan: StackPlan) -> None:
    logging = {r.inputs["bucket"]: r for r in plan.of_type("aws:s3/bucketLogging:BucketLogging")}
    assert sorted(logging) == [ARTIFACTS, DATA]
    log_policy = of_bucket(plan, "aws:s3/bucketPolicy:BucketPolicy", LOGS)
    for source in (DATA, ARTIFACTS):
        inputs = logging[source].inputs
        assert inputs["targetBucket"] == LOGS
        assert inputs["targetPrefix"] == ACCESS_LOG_PREFIX
        assert inputs["targetObjectKeyFormat"] == {
            "partitionedPrefix": {"partitionDateSource": "EventTime"}
        }
        # Logging is switched on only once the log bucket accepts the deliveries.
        assert log_policy.urn in logging[source].dependencies
    assert not [
        r for r in plan.of_type("aws:s3/bucketLogging:BucketLogging") if r.inputs["bucket"] == LOGS
    ]


def test_log_bucket_is_sse_s3_private_owner_enforced_and_expires_logs(plan: StackPlan) -> None:
    sse = of_bucket(
        plan,
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        LOGS,
    )
    # SSE-KMS is not supported for server access log delivery (AWS S3 user guide).
    assert sse.inputs["rules"] == [
        {"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}
    ]
    block = of_bucket(plan, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", LOGS)
    assert all(
        block.inputs[flag] is True
        for flag in (
            "blockPublicAcls",
            "blockPublicPolicy",
            "ignorePublicAcls",
            "restrictPublicBuckets",
        )
    )
    ownership = of_bucket(plan, "aws:s3/bucketOwnershipControls:BucketOwnershipControls", LOGS)
    assert ownership.inputs["rule"] == {"objectOwnership": "BucketOwnerEnforced"}
    lifecycle = of_bucket(
        plan, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", LOGS
    )
    by_id = {rule["id"]: rule for rule in lifecycle.inputs["rules"]}
    assert by_id["expire-access-logs"]["expiration"] == {"days": ACCESS_LOG_RETENTION_DAYS}
    assert by_id["expire-access-logs"]["filter"] == {"prefix": ""}
    assert "noncurrentVersionExpiration" in by_id["expire-access-logs"]


def test_log_bucket_policy_is_tls_only_and_admits_only_the_stack_buckets(plan: StackPlan) -> None:
    policy = of_bucket(plan, "aws:s3/bucketPolicy:BucketPolicy", LOGS)
    by_sid = {s["Sid"]: s for s in statements(json.loads(policy.inputs["policy"]))}
    assert by_sid["DenyInsecureTransport"]["Condition"] == {
        "Bool": {"aws:SecureTransport": "false"}
    }
    assert by_sid["DenyInsecureTransport"]["Resource"] == [
        f"arn:aws:s3:::{LOGS}",
        f"arn:aws:s3:::{LOGS}/*",
    ]
    delivery = by_sid["ServerAccessLogsOfStackBuckets"]
    assert delivery == {
        "Sid": "ServerAccessLogsOfStackBuckets",
        "Effect": "Allow",
        "Principal": {"Service": ["logging.s3.amazonaws.com"]},
        "Action": ["s3:PutObject"],
        "Resource": [f"arn:aws:s3:::{LOGS}/{ACCESS_LOG_PREFIX}*"],
        "Condition": {
            "ArnLike": {"aws:SourceArn": [f"arn:aws:s3:::{DATA}", f"arn:aws:s3:::{ARTIFACTS}"]},
            "StringEquals": {"aws:SourceAccount": ACCOUNT},
        },
    }


def test_a_bucket_the_log_policy_does_not_admit_cannot_log_there() -> None:
    def declare() -> None:
        logs = AccessLogBucket(
            "logs",
            AccessLogBucketArgs(
                bucket_name=LOGS, account=ACCOUNT, source_buckets=[DATA], tags=TAGS
            ),
        )
        logs.target(ARTIFACTS)

    with pytest.raises(Exception, match=f"{ARTIFACTS} is not a source of this access log bucket"):
        capture(declare)


def rules_of(plan: StackPlan, bucket: str) -> dict[str, dict[str, Any]]:
    lifecycle = of_bucket(
        plan, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", bucket
    )
    return {rule["id"]: rule for rule in lifecycle.inputs["rules"]}


def test_every_bucket_aborts_incomplete_uploads(plan: StackPlan) -> None:
    for bucket in (LOGS, DATA, ARTIFACTS):
        abort = rules_of(plan, bucket)["abort-incomplete-multipart-uploads"]
        assert abort["filter"] == {"prefix": ""}
        assert abort["abortIncompleteMultipartUpload"] == {
            "daysAfterInitiation": ABORT_INCOMPLETE_UPLOAD_DAYS
        }


def test_artifacts_expire_capture_data_and_replaced_pipeline_outputs_only(plan: StackPlan) -> None:
    rules = rules_of(plan, ARTIFACTS)
    capture_rule = rules["expire-data-capture"]
    assert capture_rule["filter"] == {"prefix": DATA_CAPTURE_PREFIX}
    assert capture_rule["expiration"] == {"days": 90}
    pipelines = rules["expire-replaced-pipeline-outputs"]
    assert pipelines["filter"] == {"prefix": PIPELINE_OUTPUT_PREFIX}
    # Model artifacts of registered packages live under pipelines/: current objects never expire.
    assert "expiration" not in pipelines
    assert pipelines["noncurrentVersionExpiration"] == {"noncurrentDays": 30}
    # Training data stays: its versions are the lineage of every model.
    assert sorted(rules_of(plan, DATA)) == ["abort-incomplete-multipart-uploads"]


def test_lifecycle_runs_after_versioning_is_on(plan: StackPlan) -> None:
    for bucket in (LOGS, DATA, ARTIFACTS):
        lifecycle = of_bucket(
            plan, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", bucket
        )
        versioning = of_bucket(plan, "aws:s3/bucketVersioning:BucketVersioning", bucket)
        assert versioning.urn in lifecycle.dependencies


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        (lambda: LifecycleRule(id="x", prefix="data-capture"), "must end in '/'"),
        (lambda: LifecycleRule(id="x", prefix="a/"), "set expire_days or noncurrent_expire_days"),
    ],
)
def test_a_lifecycle_rule_that_would_match_too_much_or_do_nothing_is_refused(
    rule: Any, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        rule()
