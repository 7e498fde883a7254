"""EC2.2 and EC2.6: the dev VPC's default security group is closed and its traffic is logged."""

from __future__ import annotations

import json

import pytest

from infra.components.private_network import (
    FLOW_LOG_RETENTION_DAYS,
    FlowLogsArgs,
    flow_log_group_name,
)
from offline.plan.capture import StackPlan
from tests.plan_helpers import statements
from tests.security.support import (
    ACCOUNT,
    BOUNDARY,
    KEY_ARN,
    NETWORK,
    REGION,
    network,
)

GROUP = flow_log_group_name(NETWORK)
GROUP_ARN = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{GROUP}"


@pytest.fixture(scope="module")
def plan() -> StackPlan:
    return network(
        FlowLogsArgs(account=ACCOUNT, kms_key_arn=KEY_ARN, permissions_boundary=BOUNDARY)
    )


def test_the_default_security_group_is_adopted_with_no_rules(plan: StackPlan) -> None:
    (default,) = plan.of_type("aws:ec2/defaultSecurityGroup:DefaultSecurityGroup")
    (vpc,) = plan.of_type("aws:ec2/vpc:Vpc")
    assert vpc.urn in default.dependencies
    # No ingress and no egress: adopting the group removes every rule it has.
    assert not default.inputs.get("ingress")
    assert not default.inputs.get("egress")


def test_all_traffic_is_logged_to_a_log_group_encrypted_with_the_stack_key(
    plan: StackPlan,
) -> None:
    (flow_log,) = plan.of_type("aws:ec2/flowLog:FlowLog")
    (vpc,) = plan.of_type("aws:ec2/vpc:Vpc")
    (group,) = plan.of_type("aws:cloudwatch/logGroup:LogGroup")
    (role,) = plan.of_type("aws:iam/role:Role")
    assert flow_log.inputs["trafficType"] == "ALL"
    assert flow_log.inputs["logDestinationType"] == "cloud-watch-logs"
    assert flow_log.inputs["logDestination"] == GROUP_ARN
    assert flow_log.inputs["iamRoleArn"] == f"arn:aws:iam::{ACCOUNT}:role/{role.name}"
    assert vpc.urn in flow_log.dependencies and group.urn in flow_log.dependencies
    assert group.inputs["name"] == GROUP
    assert group.inputs["kmsKeyId"] == KEY_ARN
    assert group.inputs["retentionInDays"] == FLOW_LOG_RETENTION_DAYS


def test_flow_logs_role_is_least_privilege_and_bounded(plan: StackPlan) -> None:
    (role,) = plan.of_type("aws:iam/role:Role")
    assert role.inputs["permissionsBoundary"] == BOUNDARY
    (trust,) = statements(json.loads(role.inputs["assumeRolePolicy"]))
    assert trust["Principal"] == {"Service": ["vpc-flow-logs.amazonaws.com"]}
    assert trust["Action"] == ["sts:AssumeRole"]
    assert trust["Condition"] == {
        "StringEquals": {"aws:SourceAccount": ACCOUNT},
        "ArnLike": {"aws:SourceArn": f"arn:aws:ec2:{REGION}:{ACCOUNT}:vpc-flow-log/*"},
    }
    (policy,) = plan.of_type("aws:iam/rolePolicy:RolePolicy")
    by_sid = {s["Sid"]: s for s in statements(json.loads(policy.inputs["policy"]))}
    assert by_sid["WriteFlowLogStreams"]["Resource"] == [GROUP_ARN, f"{GROUP_ARN}:log-stream:*"]
    assert sorted(by_sid["WriteFlowLogStreams"]["Action"]) == [
        "logs:CreateLogStream",
        "logs:DescribeLogStreams",
        "logs:PutLogEvents",
    ]
    assert by_sid["FindLogGroup"]["Action"] == ["logs:DescribeLogGroups"]
    actions = [a for s in by_sid.values() for a in s["Action"]]
    assert not [a for a in actions if "*" in a or not a.startswith("logs:")]


def test_without_flow_log_args_the_default_group_is_still_closed() -> None:
    bare = network(None)
    assert len(bare.of_type("aws:ec2/defaultSecurityGroup:DefaultSecurityGroup")) == 1
    assert not bare.of_type("aws:ec2/flowLog:FlowLog")
    assert not bare.of_type("aws:iam/role:Role")
