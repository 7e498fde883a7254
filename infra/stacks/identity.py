"""The identity bootstrap: GitHub OIDC, deploy and preview roles and boundaries of all accounts.

Applied by an administrator, by hand and rarely (`pulumi up --stack identity` with
administrator credentials, like CDK's bootstrap): it is the only place CI permissions
are defined, and no GitHub role it creates may change it. Each account gets

- the GitHub OIDC provider, a deploy role trusted by exactly that stack's workflow job
  and a read-only preview role trusted by pull requests (`GithubOidc`);
- for an environment account, `<project>-<stack>-workload-boundary`, the permissions
  boundary every role that stack creates must carry, and the stack's data key
  (`alias/<project>-<stack>`): made here so its ARN is known when the stack is first
  previewed (prod's pipeline definition must be fully known, see the policy pack) and so
  no CI role can schedule its deletion;
- with a self-managed state backend, the account's `awskms://` secrets key (alias
  `<project>-state`), usable by that account's roles only, and in the state account a
  bucket policy that lets each role reach its own stack's state objects only.
"""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from infra.components.github_oidc import GithubOidc, GithubOidcArgs, deploy_subject, preview_subject
from infra.context import StackContext
from infra.deploy_permissions import (
    AccountScope,
    StateBackend,
    boundary_arn,
    environment_deploy_statements,
    ops_deploy_statements,
    preview_statements,
    state_statements,
    workload_boundary_statements,
)
from infra.iam import Statement, policy_json
from infra.settings import ENVIRONMENTS, STACKS, IdentitySettings, source_in_order


def account_provider(settings: IdentitySettings, ctx: StackContext, stack: str) -> aws.Provider:
    """The administrator's way into one account (a role to assume, or a profile)."""
    access = settings.access_for(stack)
    return aws.Provider(
        f"{ctx.prefix}-{stack}-account",
        region=settings.region,
        allowed_account_ids=[settings.accounts.for_stack(stack)],
        assume_roles=[{"role_arn": access.role_arn, "session_name": f"{ctx.project}-bootstrap"}]
        if access is not None and access.role_arn is not None
        else None,
        profile=access.profile if access is not None else None,
    )


def state_backend(settings: IdentitySettings, ctx: StackContext) -> StateBackend | None:
    if settings.state is None:
        return None
    return StateBackend(
        bucket=settings.state.bucket,
        account=settings.accounts.for_stack(settings.state.account),
        key_alias=f"alias/{ctx.project}-state",
    )


def scope_of(settings: IdentitySettings, ctx: StackContext, stack: str) -> AccountScope:
    return AccountScope(
        project=ctx.project,
        stack=stack,
        account=settings.accounts.for_stack(stack),
        region=settings.region,
        ops_account=settings.accounts.ops,
        state=state_backend(settings, ctx),
        source_stack=source_in_order(stack),
    )


def state_key(ctx: StackContext, stack: str, backend: StateBackend, provider: aws.Provider) -> None:
    """The account's secrets-provider key; the key policy delegates to this account's IAM."""
    key = aws.kms.Key(
        f"{ctx.prefix}-{stack}-state-key",
        description=f"Secrets provider of the {ctx.project} {stack} stack (awskms://)",
        enable_key_rotation=True,
        deletion_window_in_days=30,
        tags={**ctx.tags, "account-role": stack},
        opts=pulumi.ResourceOptions(provider=provider),
    )
    aws.kms.Alias(
        f"{ctx.prefix}-{stack}-state-key-alias",
        name=backend.key_alias,
        target_key_id=key.key_id,
        opts=pulumi.ResourceOptions(provider=provider),
    )


def data_key_alias(project: str, stack: str) -> str:
    return f"alias/{project}-{stack}"


def data_key(ctx: StackContext, stack: str, scope: AccountScope, provider: aws.Provider) -> None:
    """An environment's key for data, artifacts, volumes, endpoints and its log groups."""
    account, region = scope.account, scope.region
    policy = policy_json(
        Statement(
            sid="AccountIamDecides",
            actions=["kms:*"],
            principals={"AWS": [f"arn:aws:iam::{account}:root"]},
            resources=["*"],
        ),
        Statement(
            sid="CloudWatchLogsOfThisAccount",
            actions=[
                "kms:Decrypt*",
                "kms:Describe*",
                "kms:Encrypt*",
                "kms:GenerateDataKey*",
                "kms:ReEncrypt*",
            ],
            principals={"Service": [f"logs.{region}.amazonaws.com"]},
            resources=["*"],
            conditions={
                "ArnLike": {
                    "kms:EncryptionContext:aws:logs:arn": (
                        f"arn:aws:logs:{region}:{account}:log-group:*"
                    )
                }
            },
        ),
        # EventBridge delivers approvals to the deployer's SSE-KMS queues.
        Statement(
            sid="EventBridgeRulesOfThisStack",
            actions=["kms:Decrypt", "kms:GenerateDataKey"],
            principals={"Service": ["events.amazonaws.com"]},
            resources=["*"],
            conditions={
                "ArnLike": {
                    "aws:SourceArn": f"arn:aws:events:{region}:{account}:rule/{scope.prefix}-*"
                }
            },
        ),
    )
    key = aws.kms.Key(
        f"{ctx.prefix}-{stack}-data-key",
        description=f"Encrypts {ctx.project}-{stack} data, artifacts, volumes, endpoints and logs",
        enable_key_rotation=True,
        deletion_window_in_days=30,
        policy=policy,
        tags={**ctx.tags, "account-role": stack},
        opts=pulumi.ResourceOptions(provider=provider),
    )
    aws.kms.Alias(
        f"{ctx.prefix}-{stack}-data-key-alias",
        name=data_key_alias(ctx.project, stack),
        target_key_id=key.key_id,
        opts=pulumi.ResourceOptions(provider=provider),
    )


def state_bucket_policy(
    ctx: StackContext,
    backend: StateBackend,
    roles: dict[str, list[pulumi.Output[str]]],
    scopes: dict[str, AccountScope],
    provider: aws.Provider,
) -> None:
    """Cross-account state access needs the bucket to agree: each stack's roles, its objects."""
    statements = [
        Statement(
            sid="DenyInsecureTransport",
            effect="Deny",
            actions=["s3:*"],
            principals={"AWS": ["*"]},
            resources=[f"arn:aws:s3:::{backend.bucket}", f"arn:aws:s3:::{backend.bucket}/*"],
            conditions={"Bool": {"aws:SecureTransport": "false"}},
        )
    ]
    for stack in STACKS:
        # The roles' own S3 statements (their KMS keys live in each account).
        s3_statements = [
            st for st in state_statements(scopes[stack], write=True) if st.actions[0][:3] == "s3:"
        ]
        for statement in s3_statements:
            statements.append(
                Statement(
                    sid=f"{stack.capitalize()}{statement.sid}",
                    actions=statement.actions,
                    resources=statement.resources,
                    principals={"AWS": roles[stack]},
                )
            )
    aws.s3.BucketPolicy(
        f"{ctx.prefix}-state-bucket-policy",
        bucket=backend.bucket,
        policy=policy_json(*statements),
        opts=pulumi.ResourceOptions(provider=provider),
    )


def build_identity(
    settings: IdentitySettings, ctx: StackContext
) -> dict[str, pulumi.Input[object]]:
    providers = {stack: account_provider(settings, ctx, stack) for stack in STACKS}
    backend = state_backend(settings, ctx)
    scopes = {stack: scope_of(settings, ctx, stack) for stack in STACKS}
    identities: dict[str, GithubOidc] = {}
    for stack in STACKS:
        scope = scopes[stack]
        tags = {**ctx.tags, "account-role": stack}
        if stack in ENVIRONMENTS:
            deploy = environment_deploy_statements(scope)
            aws.iam.Policy(
                f"{ctx.prefix}-{stack}-workload-boundary",
                name=boundary_arn(ctx.project, stack, scope.account).rsplit("/", 1)[-1],
                description=f"Ceiling of every role the {stack} stack creates",
                policy=policy_json(*workload_boundary_statements(scope)),
                tags=tags,
                opts=pulumi.ResourceOptions(provider=providers[stack]),
            )
            data_key(ctx, stack, scope, providers[stack])
        else:
            deploy = ops_deploy_statements(scope)
        if backend is not None:
            state_key(ctx, stack, backend, providers[stack])
        identities[stack] = GithubOidc(
            f"{ctx.prefix}-{stack}-identity",
            GithubOidcArgs(
                role_prefix=ctx.project,
                deploy_subject=deploy_subject(settings.github.repository, stack),
                preview_subject=preview_subject(settings.github.repository),
                deploy_statements=deploy,
                preview_statements=preview_statements(scope),
                tags=tags,
            ),
            opts=pulumi.ResourceOptions(provider=providers[stack]),
        )
    if backend is not None:
        roles = {stack: [i.deploy_role.arn, i.preview_role.arn] for stack, i in identities.items()}
        state_account = next(s for s in STACKS if scopes[s].account == backend.account)
        state_bucket_policy(ctx, backend, roles, scopes, providers[state_account])
    return {
        "deploy_role_arns": {s: i.deploy_role.arn for s, i in identities.items()},
        "preview_role_arns": {s: i.preview_role.arn for s, i in identities.items()},
    }
