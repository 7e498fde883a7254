"""What AWSGuard and Security Hub FSBP check, on the offline plans of the environment stacks.

S3.9 (server access logging), S3.13 (lifecycle), EC2.2 (default security group
closed), EC2.6 (VPC flow logs) and log groups encrypted with the stack key. Each
fails on the plans before the log bucket, lifecycle rules and flow logs were wired in.
"""

from __future__ import annotations

import pytest

from offline.plan.capture import StackPlan

ENVIRONMENTS = {"dev": "222222222222", "staging": "333333333333", "prod": "444444444444"}
LOGGING = "aws:s3/bucketLogging:BucketLogging"
LIFECYCLE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"


def buckets(plan: StackPlan) -> set[str]:
    return {r.inputs["bucket"] for r in plan.of_type("aws:s3/bucket:Bucket")}


@pytest.mark.parametrize("stack", ENVIRONMENTS)
def test_every_bucket_but_the_log_bucket_logs_into_it(
    stack_plans: dict[str, StackPlan], stack: str
) -> None:
    plan = stack_plans[stack]
    log_bucket = f"promote-code-{stack}-access-logs-{ENVIRONMENTS[stack]}"
    assert log_bucket in buckets(plan)
    logged = {r.inputs["bucket"]: r.inputs["targetBucket"] for r in plan.of_type(LOGGING)}
    # The log bucket does not log itself: every delivery would be logged again, forever.
    assert logged == dict.fromkeys(buckets(plan) - {log_bucket}, log_bucket)


@pytest.mark.parametrize("stack", ENVIRONMENTS)
def test_every_bucket_has_a_lifecycle_configuration(
    stack_plans: dict[str, StackPlan], stack: str
) -> None:
    plan = stack_plans[stack]
    configured = {r.inputs["bucket"] for r in plan.of_type(LIFECYCLE)}
    assert configured == buckets(plan)
    (artifacts,) = [
        r
        for r in plan.of_type(LIFECYCLE)
        if r.inputs["bucket"].startswith(f"promote-code-{stack}-artifacts-")
    ]
    prefixes = {rule["filter"]["prefix"] for rule in artifacts.inputs["rules"]}
    assert {"", "data-capture/", "pipelines/"} <= prefixes


def test_the_dev_vpc_has_a_closed_default_group_and_flow_logs(
    stack_plans: dict[str, StackPlan],
) -> None:
    plan = stack_plans["dev"]
    (vpc,) = plan.of_type("aws:ec2/vpc:Vpc")
    (default,) = plan.of_type("aws:ec2/defaultSecurityGroup:DefaultSecurityGroup")
    assert not default.inputs.get("ingress") and not default.inputs.get("egress")
    (flow_log,) = plan.of_type("aws:ec2/flowLog:FlowLog")
    assert vpc.urn in flow_log.dependencies
    assert flow_log.inputs["trafficType"] == "ALL"


@pytest.mark.parametrize("stack", ENVIRONMENTS)
def test_every_log_group_is_encrypted_with_the_stack_key(
    stack_plans: dict[str, StackPlan], stack: str
) -> None:
    groups = stack_plans[stack].of_type("aws:cloudwatch/logGroup:LogGroup")
    assert groups
    key = f"arn:aws:kms:eu-west-1:{ENVIRONMENTS[stack]}:key/"
    unencrypted = [
        g.inputs["name"] for g in groups if not str(g.inputs.get("kmsKeyId", "")).startswith(key)
    ]
    assert not unencrypted
