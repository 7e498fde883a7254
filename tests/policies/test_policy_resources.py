"""s3-bucket-hardening (stack), SageMaker endpoint and retraining rules, required-tags."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from policy_helpers import hardened_bucket, policy_document, tags_for
from rules._props import props_of
from rules.s3 import StackResource, bucket_violations
from rules.sagemaker import (
    ENDPOINT_CONFIGURATION,
    SCHEDULE,
    encryption_and_capture_violations,
    min_instance_violations,
    retraining_violations,
)
from rules.taggable import TAGGABLE_TYPES
from rules.taggable_gen import installed_pulumi_aws_dir, scan_pulumi_aws
from rules.tags import tag_violations

from offline.plan.capture import UNKNOWN, CapturedResource


def _stack(resources: list[CapturedResource]) -> list[StackResource]:
    return [
        StackResource(r.type, r.urn, r.name, props_of(r.inputs), r.dependencies) for r in resources
    ]


def test_hardened_bucket_passes() -> None:
    assert (
        bucket_violations(_stack(hardened_bucket("prod", "data", "promote-code-prod-data"))) == []
    )


def _without(kind: str) -> Callable[[list[CapturedResource]], list[CapturedResource]]:
    return lambda resources: [r for r in resources if kind not in r.type]


def _changed(
    kind: str, **inputs: object
) -> Callable[[list[CapturedResource]], list[CapturedResource]]:
    def change(resources: list[CapturedResource]) -> list[CapturedResource]:
        return [
            CapturedResource(**{**r.__dict__, "inputs": {**r.inputs, **inputs}})
            if kind in r.type
            else r
            for r in resources
        ]

    return change


NO_TLS = policy_document(
    {"Effect": "Deny", "Principal": "*", "Action": "s3:DeleteBucket", "Resource": "*"}
)


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (_without("PublicAccessBlock"), "no public access block"),
        (_changed("PublicAccessBlock", restrictPublicBuckets=False), "restrictPublicBuckets"),
        (_changed("PublicAccessBlock", blockPublicAcls=None), "blockPublicAcls"),
        (_without("Versioning"), "no versioning"),
        (_changed("Versioning", versioningConfiguration={"status": "Suspended"}), "Suspended"),
        (_without("ServerSideEncryption"), "no default encryption"),
        (
            _changed(
                "ServerSideEncryption",
                rules=[{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}],
            ),
            "AES256",
        ),
        (_without("bucketPolicy"), "no bucket policy"),
        (_changed("bucketPolicy", policy=NO_TLS), "SecureTransport"),
        (_changed("PublicAccessBlock", bucket="another-bucket"), "no public access block"),
    ],
)
def test_bucket_missing_a_setting_fails(
    mutate: Callable[[list[CapturedResource]], list[CapturedResource]], expected: str
) -> None:
    resources = mutate(hardened_bucket("prod", "data", "promote-code-prod-data"))
    violations = bucket_violations(_stack(resources))
    assert len(violations) == 1, violations
    urn, message = violations[0]
    assert urn.endswith("::data")
    assert expected in message


def test_sub_resources_match_by_dependency_when_the_bucket_name_is_unknown() -> None:
    resources = _changed("aws:s3/", bucket=UNKNOWN)(hardened_bucket("prod", "data", "n"))
    assert bucket_violations(_stack(resources)) == []
    unrelated = [CapturedResource(**{**r.__dict__, "dependencies": ()}) for r in resources]
    assert len(bucket_violations(_stack(unrelated))) == 4


def test_each_bucket_needs_its_own_settings() -> None:
    first = hardened_bucket("prod", "data", "promote-code-prod-data")
    second = hardened_bucket("prod", "artifacts", "promote-code-prod-artifacts")[:1]
    violations = bucket_violations(_stack(first + second))
    assert {urn.rsplit("::", 1)[1] for urn, _ in violations} == {"artifacts"}
    assert len(violations) == 4


GOOD_ENDPOINT: dict[str, object] = {
    "kmsKeyArn": "arn:aws:kms:eu-west-1:444444444444:key/k",
    "dataCaptureConfig": {
        "enableCapture": True,
        "initialSamplingPercentage": 100,
        "destinationS3Uri": "s3://promote-code-prod-artifacts/capture",
        "captureOptions": [{"captureMode": "Input"}, {"captureMode": "Output"}],
    },
    "productionVariants": [
        {"variantName": "AllTraffic", "initialInstanceCount": 2, "instanceType": "ml.m5.large"}
    ],
}


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({}, None),
        ({"kmsKeyArn": UNKNOWN}, None),
        ({"kmsKeyArn": None}, "kmsKeyArn"),
        ({"dataCaptureConfig": None}, "enableCapture"),
        (
            {"dataCaptureConfig": {"enableCapture": False, "destinationS3Uri": "s3://b/c"}},
            "enableCapture",
        ),
        ({"dataCaptureConfig": {"enableCapture": True}}, "destinationS3Uri"),
    ],
)
def test_endpoint_encryption_and_capture(change: dict[str, object], expected: str | None) -> None:
    props = props_of({k: v for k, v in {**GOOD_ENDPOINT, **change}.items() if v is not None})
    violations = encryption_and_capture_violations(ENDPOINT_CONFIGURATION, props)
    if expected is None:
        assert violations == []
    else:
        assert len(violations) == 1
        assert expected in violations[0]


@pytest.mark.parametrize(
    ("variants", "minimum", "violations"),
    [
        ([{"initialInstanceCount": 2}], 2, 0),
        ([{"initialInstanceCount": 3}], 2, 0),
        ([{"initialInstanceCount": 1}], 2, 1),
        ([{"initialInstanceCount": 1}], 1, 0),
        ([{"initialInstanceCount": 2}, {"initialInstanceCount": 1}], 2, 1),
        ([{"serverlessConfig": {"maxConcurrency": 5, "memorySizeInMb": 2048}}], 2, 1),
        ([{"instanceType": "ml.m5.large"}], 2, 1),
        ([{"initialInstanceCount": UNKNOWN}], 2, 0),
    ],
)
def test_endpoint_minimum_instances(variants: list[object], minimum: int, violations: int) -> None:
    props = props_of({**GOOD_ENDPOINT, "productionVariants": variants})
    assert len(min_instance_violations(ENDPOINT_CONFIGURATION, props, minimum)) == violations


RETRAIN = {
    "name": "promote-code-prod-retraining",
    "scheduleExpression": "cron(0 3 ? * SUN *)",
    "target": {
        "arn": "arn:aws:sagemaker:eu-west-1:444444444444:pipeline/promote-code-prod-training",
        "roleArn": "arn:aws:iam::444444444444:role/scheduler",
        "sagemakerPipelineParameters": {"pipelineParameters": []},
    },
}


@pytest.mark.parametrize(
    ("props", "allowed", "violations"),
    [
        (RETRAIN, True, 0),
        (RETRAIN, False, 1),
        ({**RETRAIN, "state": "DISABLED"}, False, 0),
        ({**RETRAIN, "state": "ENABLED"}, False, 1),
        ({**RETRAIN, "name": "nightly", "target": {"arn": "arn:aws:lambda:x"}}, False, 0),
        (
            {
                "name": "x",
                "target": {"arn": "arn:aws:scheduler:::aws-sdk:sagemaker:startPipelineExecution"},
            },
            False,
            1,
        ),
    ],
)
def test_retraining_schedule_only_where_allowed(
    props: dict[str, object], allowed: bool, violations: int
) -> None:
    found = retraining_violations(SCHEDULE, props_of(props), "schedule", allowed)
    assert len(found) == violations


PROD_TAGS = tags_for("prod")


@pytest.mark.parametrize(
    ("resource_type", "props", "provider", "expected"),
    [
        ("aws:s3/bucket:Bucket", {"tags": PROD_TAGS}, None, []),
        ("aws:s3/bucket:Bucket", {}, {"defaultTags": {"tags": PROD_TAGS}}, []),
        (
            "aws:s3/bucket:Bucket",
            {"tags": {"environment": "prod"}},
            {"defaultTags": {"tags": PROD_TAGS}},
            [],
        ),
        ("aws:s3/bucket:Bucket", {}, {"defaultTags": json.dumps({"tags": PROD_TAGS})}, []),
        ("aws:s3/bucket:Bucket", {}, {"defaultTags": "{"}, ["missing tags"]),
        ("aws:s3/bucket:Bucket", {}, None, ["missing tags: project, environment, managed-by"]),
        (
            "aws:iam/role:Role",
            {"tags": {"project": "promote-code"}},
            None,
            ["missing tags: environment"],
        ),
        ("aws:iam/role:Role", {"tags": {**PROD_TAGS, "environment": "dev"}}, None, ["wrong tags"]),
        ("aws:s3/bucketVersioning:BucketVersioning", {}, None, []),
        ("promote:aws:SecureBucket", {}, None, []),
        ("pulumi:providers:aws", {}, None, []),
        ("aws:s3/bucket:Bucket", {"tags": UNKNOWN}, None, []),
    ],
)
def test_required_tags(
    resource_type: str,
    props: dict[str, object],
    provider: dict[str, object] | None,
    expected: list[str],
) -> None:
    found = tag_violations(
        resource_type, props_of(props), props_of(provider) if provider else None, PROD_TAGS
    )
    assert len(found) == len(expected), found
    for message, text in zip(found, expected, strict=True):
        assert text in message


def test_taggable_type_list_matches_the_installed_pulumi_aws() -> None:
    assert scan_pulumi_aws(installed_pulumi_aws_dir()) == TAGGABLE_TYPES, (
        "pulumi-aws changed: cd policies && uv run python -m rules.taggable_gen --write"
    )
    assert "aws:s3/bucket:Bucket" in TAGGABLE_TYPES
    assert "aws:s3/bucketVersioning:BucketVersioning" not in TAGGABLE_TYPES
