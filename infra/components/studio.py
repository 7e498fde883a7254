"""SageMaker Studio for notebooks, inside the stack's private subnets (VpcOnly)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws


@dataclass(frozen=True)
class StudioArgs:
    domain_name: str
    vpc_id: pulumi.Input[str]
    subnet_ids: Sequence[pulumi.Input[str]]
    security_group_id: pulumi.Input[str]
    execution_role_arn: pulumi.Input[str]
    kms_key_arn: pulumi.Input[str]
    user_profiles: Sequence[str]
    tags: Mapping[str, str]


class Studio(pulumi.ComponentResource):
    domain: aws.sagemaker.Domain

    def __init__(
        self, name: str, args: StudioArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("promote:sagemaker:Studio", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.domain = aws.sagemaker.Domain(
            f"{name}-domain",
            domain_name=args.domain_name,
            auth_mode="IAM",
            app_network_access_type="VpcOnly",
            vpc_id=args.vpc_id,
            subnet_ids=list(args.subnet_ids),
            kms_key_id=args.kms_key_arn,
            default_user_settings={
                "execution_role": args.execution_role_arn,
                "security_groups": [args.security_group_id],
            },
            tags=dict(args.tags),
            opts=child,
        )
        for profile in args.user_profiles:
            aws.sagemaker.UserProfile(
                f"{name}-{profile}",
                domain_id=self.domain.id,
                user_profile_name=profile,
                tags=dict(args.tags),
                opts=child,
            )
        self.register_outputs({"domain_id": self.domain.id})
