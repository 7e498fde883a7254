"""The ops stack: the ECR registry and this commit's images, built once and pushed by digest.

CI's `pulumi up --stack ops` only pushes new tags (its role has no registry-changing
action); the registry itself (repositories, their key, lifecycle and pull policy) is
created by an administrator's first `pulumi up --stack ops`, after the identity bootstrap.
"""

from __future__ import annotations

import os

import pulumi
import pulumi_aws as aws
import pulumi_docker as docker

from infra.components.container_registry import ContainerRegistry, ContainerRegistryArgs
from infra.context import IMAGE_NAMES, REPO_ROOT, StackContext
from infra.settings import OpsSettings


def build_images(
    ctx: StackContext, registry: ContainerRegistry, provider: aws.Provider
) -> dict[str, pulumi.Output[str]]:
    """Build and push each image tagged with the commit; return the pushed repo digests."""
    # Relative to the working directory (the project directory under Pulumi), so the inputs
    # do not depend on where the repository is cloned.
    context = os.path.relpath(REPO_ROOT)
    digests: dict[str, pulumi.Output[str]] = {}
    for image in IMAGE_NAMES:
        repo = registry.repositories[image]
        token = aws.ecr.get_authorization_token_output(
            registry_id=repo.registry_id, opts=pulumi.InvokeOptions(provider=provider)
        )
        built = docker.Image(
            f"{ctx.prefix}-{image}-image",
            build=docker.DockerBuildArgs(
                context=context,
                dockerfile=f"{context}/ml/images/{image}/Dockerfile",
                platform="linux/amd64",
            ),
            image_name=pulumi.Output.concat(repo.repository_url, ":", ctx.image_tag),
            registry=docker.RegistryArgs(
                server=repo.repository_url,
                username=token.user_name,
                password=pulumi.Output.secret(token.password),
            ),
            opts=pulumi.ResourceOptions(parent=registry),
        )
        digests[image] = built.repo_digest
    return digests


def build_ops(settings: OpsSettings, ctx: StackContext) -> dict[str, pulumi.Input[object]]:
    provider = aws.Provider(
        f"{ctx.prefix}-ops-account",
        region=settings.region,
        allowed_account_ids=[settings.accounts.ops],
    )
    registry = ContainerRegistry(
        f"{ctx.prefix}-registry",
        ContainerRegistryArgs(
            repositories={image: ctx.repository_name(image) for image in IMAGE_NAMES},
            pull_accounts=settings.accounts.environment_accounts,
            region=settings.region,
            untagged_expiry_days=settings.untagged_image_expiry_days,
            tags=ctx.tags,
        ),
        opts=pulumi.ResourceOptions(provider=provider),
    )
    digests = build_images(ctx, registry, provider)
    return {
        "image_tag": ctx.image_tag,
        "repository_urls": {k: r.repository_url for k, r in registry.repositories.items()},
        "image_digests": digests,
    }
