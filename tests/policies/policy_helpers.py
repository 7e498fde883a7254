"""Builders of hand-made plans for the policy tests (imported by the test modules)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from offline.plan.capture import CapturedResource, StackPlan

OPS = "111111111111"
REGION = "eu-west-1"
DIGEST = "0123456789abcdef" * 4
REGISTRY = f"{OPS}.dkr.ecr.{REGION}.amazonaws.com"
TRAINING = f"{REGISTRY}/promote-code/training@sha256:{DIGEST}"
DEPLOYER = f"{REGISTRY}/promote-code/deployer@sha256:{DIGEST}"
REPOSITORY = "my-org/promote-code"
PROD_ACCOUNT = "444444444444"
PACKAGE = f"arn:aws:sagemaker:{REGION}:{PROD_ACCOUNT}:model-package/promote-code/3"
GITHUB = "token.actions.githubusercontent.com"

PROD_IMAGE_CONFIG: dict[str, object] = {
    "opsAccountId": OPS,
    "region": REGION,
    "allowedRepositories": ["promote-code/training", "promote-code/deployer"],
    "unknownIsViolation": True,
    "stackAccountId": PROD_ACCOUNT,
}


def tags_for(stack: str) -> dict[str, str]:
    return {"project": "promote-code", "environment": stack, "managed-by": "pulumi"}


def urn(stack: str, type_: str, name: str) -> str:
    return f"urn:pulumi:{stack}::promote-code::{type_}::{name}"


def resource(
    type_: str,
    name: str,
    inputs: Mapping[str, Any],
    *,
    stack: str = "prod",
    dependencies: tuple[str, ...] = (),
    provider: str | None = None,
) -> CapturedResource:
    return CapturedResource(
        urn=urn(stack, type_, name),
        type=type_,
        name=name,
        parent=None,
        custom=True,
        provider=provider,
        inputs=dict(inputs),
        dependencies=dependencies,
    )


def trust_policy(
    sub: object = f"repo:{REPOSITORY}:ref:refs/heads/main",
    *,
    aud: object = "sts.amazonaws.com",
    operator: str = "StringEquals",
    sub_operator: str | None = None,
    principal: object = None,
) -> str:
    conditions: dict[str, dict[str, object]] = {operator: {f"{GITHUB}:aud": aud}}
    conditions.setdefault(sub_operator or operator, {})[f"{GITHUB}:sub"] = sub
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": "sts:AssumeRoleWithWebIdentity",
                    "Principal": principal
                    or {"Federated": f"arn:aws:iam::{OPS}:oidc-provider/{GITHUB}"},
                    "Condition": conditions,
                }
            ],
        }
    )


def policy_document(*statements: Mapping[str, object]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def hardened_bucket(stack: str, name: str, bucket_name: str) -> list[CapturedResource]:
    """A bucket with all four companion resources of infra.components.secure_bucket."""
    bucket = resource(
        "aws:s3/bucket:Bucket", name, {"bucket": bucket_name, "tags": tags_for(stack)}, stack=stack
    )
    deps = (bucket.urn,)
    arn = f"arn:aws:s3:::{bucket_name}"
    return [
        bucket,
        resource(
            "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
            f"{name}-pab",
            {
                "bucket": bucket_name,
                "blockPublicAcls": True,
                "blockPublicPolicy": True,
                "ignorePublicAcls": True,
                "restrictPublicBuckets": True,
            },
            stack=stack,
            dependencies=deps,
        ),
        resource(
            "aws:s3/bucketVersioning:BucketVersioning",
            f"{name}-versioning",
            {"bucket": bucket_name, "versioningConfiguration": {"status": "Enabled"}},
            stack=stack,
            dependencies=deps,
        ),
        resource(
            "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
            f"{name}-sse",
            {
                "bucket": bucket_name,
                "rules": [
                    {
                        "applyServerSideEncryptionByDefault": {
                            "sseAlgorithm": "aws:kms",
                            "kmsMasterKeyId": "arn:aws:kms:eu-west-1:444444444444:key/k",
                        },
                        "bucketKeyEnabled": True,
                    }
                ],
            },
            stack=stack,
            dependencies=deps,
        ),
        resource(
            "aws:s3/bucketPolicy:BucketPolicy",
            f"{name}-tls-only",
            {
                "bucket": bucket_name,
                "policy": policy_document(
                    {
                        "Sid": "DenyInsecureTransport",
                        "Effect": "Deny",
                        "Principal": {"AWS": ["*"]},
                        "Action": ["s3:*"],
                        "Resource": [arn, f"{arn}/*"],
                        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                    }
                ),
            },
            stack=stack,
            dependencies=deps,
        ),
    ]


def plan_of(stack: str, resources: list[CapturedResource]) -> StackPlan:
    return StackPlan(project="promote-code", stack=stack, resources=tuple(resources))
