"""s3-bucket-hardening: SSE-S3 only for a bucket that just receives server access logs."""

from __future__ import annotations

import dataclasses
import json

import pytest

from offline.plan.capture import StackPlan
from policies.rules.s3 import StackResource, bucket_violations


def resources(plan: StackPlan) -> list[StackResource]:
    return [
        StackResource(r.type, r.urn, r.name, dict(r.inputs), tuple(r.dependencies))
        for r in plan.resources
    ]


def test_the_stack_log_bucket_passes(stack_plans: dict[str, StackPlan]) -> None:
    assert bucket_violations(resources(stack_plans["prod"])) == []


def test_an_sse_s3_bucket_that_is_no_log_target_fails(stack_plans: dict[str, StackPlan]) -> None:
    found = [r for r in resources(stack_plans["prod"]) if "bucketLogging" not in r.type]
    messages = [m for _, m in bucket_violations(found)]
    assert any("access-logs" in m and "not SSE-KMS" in m for m in messages)


@pytest.mark.parametrize("principal", [{"AWS": ["arn:aws:iam::999999999999:root"]}, "*"])
def test_a_log_target_that_admits_anyone_else_fails(
    stack_plans: dict[str, StackPlan], principal: object
) -> None:
    changed = []
    for original in resources(stack_plans["prod"]):
        r = original
        if r.type == "aws:s3/bucketPolicy:BucketPolicy" and "access-logs" in str(r.props["bucket"]):
            document = json.loads(str(r.props["policy"]))
            document["Statement"].append(
                {
                    "Sid": "More",
                    "Effect": "Allow",
                    "Principal": principal,
                    "Action": "s3:GetObject",
                    "Resource": "*",
                }
            )
            r = dataclasses.replace(r, props={**r.props, "policy": json.dumps(document)})
        changed.append(r)
    messages = [m for _, m in bucket_violations(changed)]
    assert any("access-logs" in m and "not SSE-KMS" in m for m in messages)
