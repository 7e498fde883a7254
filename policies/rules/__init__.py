"""The rules of the promote-code policy pack, one module per area."""

from __future__ import annotations

from pulumi_policy import Policy

from . import ecr, iam, images, oidc, promotion, s3, sagemaker, tags

ALL_POLICIES: tuple[Policy, ...] = (
    images.POLICY,
    ecr.HARDENING_POLICY,
    ecr.NO_WILDCARD_PRINCIPAL_POLICY,
    oidc.POLICY,
    promotion.POLICY,
    iam.BROAD_MANAGED_POLICY,
    iam.WILDCARD_STATEMENTS_POLICY,
    s3.POLICY,
    sagemaker.ENCRYPTION_AND_CAPTURE_POLICY,
    sagemaker.MIN_INSTANCES_POLICY,
    sagemaker.RETRAINING_POLICY,
    tags.POLICY,
)

__all__ = ["ALL_POLICIES"]
