"""A small typed builder for IAM policy documents.

Documents are rendered with sorted keys by `pulumi.Output.json_dumps`, so the
same statements always give the same JSON (no diff on an unchanged commit) and
Output values (ARNs of resources not created yet) can be used directly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pulumi

ECR_PULL_ACTIONS: tuple[str, ...] = (
    "ecr:BatchCheckLayerAvailability",
    "ecr:BatchGetImage",
    "ecr:GetDownloadUrlForLayer",
)
"""What pulling an image takes, for roles of SageMaker jobs and endpoints."""

Condition = Mapping[str, Mapping[str, "pulumi.Input[str] | Sequence[pulumi.Input[str]]"]]


@dataclass(frozen=True)
class Statement:
    sid: str
    actions: Sequence[str]
    resources: Sequence[pulumi.Input[str]] = ()
    effect: Literal["Allow", "Deny"] = "Allow"
    principals: Mapping[str, Sequence[pulumi.Input[str]]] = field(default_factory=dict)
    conditions: Condition = field(default_factory=dict)

    def render(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "Sid": self.sid,
            "Effect": self.effect,
            "Action": list(self.actions),
        }
        if self.resources:
            body["Resource"] = list(self.resources)
        if self.principals:
            body["Principal"] = {kind: list(ids) for kind, ids in self.principals.items()}
        if self.conditions:
            body["Condition"] = {
                operator: dict(values) for operator, values in self.conditions.items()
            }
        return body


def in_account(account: pulumi.Input[str]) -> Condition:
    """S3 ARNs carry no account: this condition pins a statement to buckets of `account`."""
    return {"StringEquals": {"aws:ResourceAccount": account}}


def policy_json(*statements: Statement) -> pulumi.Output[str]:
    """The policy document as a JSON string (an Output, since ARNs may be unknown yet)."""
    sids = [s.sid for s in statements]
    if len(set(sids)) != len(sids):
        raise ValueError(f"duplicate statement ids in policy: {sids}")
    document = {"Version": "2012-10-17", "Statement": [s.render() for s in statements]}
    return pulumi.Output.json_dumps(document, sort_keys=True)


def service_trust(service: str, account: pulumi.Input[str]) -> pulumi.Output[str]:
    """Trust policy for an AWS service principal, limited to calls made for `account`."""
    return policy_json(
        Statement(
            sid="AssumedByService",
            actions=["sts:AssumeRole"],
            principals={"Service": [service]},
            conditions={"StringEquals": {"aws:SourceAccount": account}},
        )
    )
