"""The ops stack: ECR registry, this commit's images, GitHub OIDC in all four accounts."""

from __future__ import annotations

import os

import pulumi
import pulumi_aws as aws
import pulumi_docker as docker

from infra.components.container_registry import ContainerRegistry, ContainerRegistryArgs
from infra.components.github_oidc import (
    PREVIEW_ROLE,
    GithubOidc,
    GithubOidcArgs,
    deploy_subject,
    preview_subject,
)
from infra.context import IMAGE_NAMES, REPO_ROOT, StackContext
from infra.deploy_permissions import (
    AccountScope,
    boundary_arn,
    environment_deploy_statements,
    ops_deploy_statements,
    preview_statements,
    workload_boundary_statements,
)
from infra.iam import Statement, policy_json
from infra.settings import ENVIRONMENTS, STACKS, AccountAccess, OpsSettings


def preview_role_arn(ctx: StackContext, account: str) -> str:
    return f"arn:aws:iam::{account}:role/{ctx.project}-{PREVIEW_ROLE}"


def account_provider(settings: OpsSettings, ctx: StackContext, stack: str) -> aws.Provider:
    account = settings.accounts.for_stack(stack)
    access = settings.access_for(stack)
    if ctx.preview_access and access is not None:
        access = AccountAccess(role_arn=preview_role_arn(ctx, account))
    return aws.Provider(
        f"{ctx.prefix}-{stack}-account",
        region=settings.region,
        allowed_account_ids=[account],
        assume_roles=[{"role_arn": access.role_arn, "session_name": f"{ctx.project}-ops"}]
        if access is not None and access.role_arn is not None
        else None,
        profile=access.profile if access is not None else None,
    )


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
    providers = {stack: account_provider(settings, ctx, stack) for stack in STACKS}
    registry = ContainerRegistry(
        f"{ctx.prefix}-registry",
        ContainerRegistryArgs(
            repositories={image: ctx.repository_name(image) for image in IMAGE_NAMES},
            pull_accounts=settings.accounts.environment_accounts,
            region=settings.region,
            untagged_expiry_days=settings.untagged_image_expiry_days,
            tags=ctx.tags,
        ),
        opts=pulumi.ResourceOptions(provider=providers["ops"]),
    )
    digests = build_images(ctx, registry, providers["ops"])

    assume_roles = [
        access.role_arn
        for stack in STACKS
        if (access := settings.access_for(stack)) is not None and access.role_arn is not None
    ]
    identities: dict[str, GithubOidc] = {}
    # ops first: the other accounts' preview roles trust its preview role by ARN.
    for stack in STACKS:
        scope = AccountScope(
            project=ctx.project,
            stack=stack,
            account=settings.accounts.for_stack(stack),
            region=settings.region,
            ops_account=settings.accounts.ops,
            state_bucket=settings.state_bucket,
            state_secrets_key_arn=settings.state_secrets_key_arn,
        )
        if stack == "ops":
            deploy = ops_deploy_statements(scope, assume_roles)
            others = [preview_role_arn(ctx, settings.accounts.for_stack(s)) for s in ENVIRONMENTS]
            preview = [
                *preview_statements(scope),
                Statement(sid="ChainToPreviewRoles", actions=["sts:AssumeRole"], resources=others),
            ]
            chained_from: list[pulumi.Input[str]] = []
        else:
            deploy = environment_deploy_statements(scope)
            preview = preview_statements(scope)
            chained_from = [identities["ops"].preview_role.arn]
            # Made here, not by the environment stack, so its deploy role cannot loosen it.
            aws.iam.Policy(
                f"{ctx.prefix}-{stack}-workload-boundary",
                name=boundary_arn(ctx.project, stack, scope.account).rsplit("/", 1)[-1],
                description=f"Ceiling of every role the {stack} stack creates",
                policy=policy_json(*workload_boundary_statements(scope)),
                tags={**ctx.tags, "account-role": stack},
                opts=pulumi.ResourceOptions(provider=providers[stack]),
            )
        identities[stack] = GithubOidc(
            f"{ctx.prefix}-{stack}-identity",
            GithubOidcArgs(
                role_prefix=ctx.project,
                deploy_subject=deploy_subject(settings.github.repository, stack),
                preview_subject=preview_subject(settings.github.repository),
                deploy_statements=deploy,
                preview_statements=preview,
                tags={**ctx.tags, "account-role": stack},
                preview_chained_from=chained_from,
            ),
            opts=pulumi.ResourceOptions(provider=providers[stack]),
        )
    return {
        "image_tag": ctx.image_tag,
        "repository_urls": {k: r.repository_url for k, r in registry.repositories.items()},
        "image_digests": digests,
        "deploy_role_arns": {s: i.deploy_role.arn for s, i in identities.items()},
        "preview_role_arns": {s: i.preview_role.arn for s, i in identities.items()},
    }
