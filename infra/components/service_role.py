"""An IAM role assumed by one AWS service for one account, with one inline policy."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.iam import Statement, policy_json, service_trust


@dataclass(frozen=True)
class ServiceRole:
    role: aws.iam.Role
    policy: aws.iam.RolePolicy


def service_role(
    name: str,
    *,
    service: str,
    account: str,
    statements: Sequence[Statement],
    tags: Mapping[str, str],
    opts: pulumi.ResourceOptions,
    role_name: str | None = None,
    description: str | None = None,
    permissions_boundary: str | None = None,
) -> ServiceRole:
    """`<name>-role` trusting `service` on behalf of `account` only, and `<name>-policy`."""
    role = aws.iam.Role(
        f"{name}-role",
        name=role_name,
        description=description,
        permissions_boundary=permissions_boundary,
        assume_role_policy=service_trust(service, account),
        tags=dict(tags),
        opts=opts,
    )
    policy = aws.iam.RolePolicy(
        f"{name}-policy", role=role.name, policy=policy_json(*statements), opts=opts
    )
    return ServiceRole(role, policy)
