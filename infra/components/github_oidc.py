"""GitHub Actions OIDC identity in one AWS account.

The trust of each role pins the audience and the exact `sub` claim with
StringEquals: a workflow of another repository, branch, environment or a pull
request cannot assume the deploy role. Pull requests get a separate preview
role that can only read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.iam import Statement, policy_json

GITHUB_OIDC_HOST = "token.actions.githubusercontent.com"
AUDIENCE = "sts.amazonaws.com"
DEPLOY_ROLE = "github-deploy"
PREVIEW_ROLE = "github-preview"


def deploy_subject(repository: str, stack: str) -> str:
    """The `sub` claim of the workflow job allowed to deploy `stack`.

    ops and dev deploy from pushes to main (jobs without a GitHub environment);
    staging and prod deploy from jobs running in the GitHub environment of the
    same name, where required reviewers can gate prod.
    """
    if stack in ("ops", "dev"):
        return f"repo:{repository}:ref:refs/heads/main"
    return f"repo:{repository}:environment:{stack}"


def preview_subject(repository: str) -> str:
    return f"repo:{repository}:pull_request"


def web_identity_trust(provider_arn: pulumi.Input[str], subject: str) -> pulumi.Output[str]:
    """Trust for exactly one GitHub `sub` (and audience), nothing else."""
    return policy_json(
        Statement(
            sid="GithubActionsWebIdentity",
            actions=["sts:AssumeRoleWithWebIdentity"],
            principals={"Federated": [provider_arn]},
            conditions={
                "StringEquals": {
                    f"{GITHUB_OIDC_HOST}:aud": AUDIENCE,
                    f"{GITHUB_OIDC_HOST}:sub": subject,
                }
            },
        ),
    )


@dataclass(frozen=True)
class GithubOidcArgs:
    role_prefix: str
    """Roles are named <role_prefix>-github-deploy and <role_prefix>-github-preview."""
    deploy_subject: str
    preview_subject: str
    deploy_statements: Sequence[Statement]
    preview_statements: Sequence[Statement]
    tags: Mapping[str, str]


class GithubOidc(pulumi.ComponentResource):
    provider: aws.iam.OpenIdConnectProvider
    deploy_role: aws.iam.Role
    preview_role: aws.iam.Role

    def __init__(
        self, name: str, args: GithubOidcArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("promote:aws:GithubOidc", name, None, opts)
        # Children inherit the account's explicit provider through their parent.
        child = pulumi.ResourceOptions(parent=self)
        tags = dict(args.tags)
        self.provider = aws.iam.OpenIdConnectProvider(
            f"{name}-provider",
            url=f"https://{GITHUB_OIDC_HOST}",
            client_id_lists=[AUDIENCE],
            tags=tags,
            opts=child,
        )
        self.deploy_role = self._role(
            name,
            role=DEPLOY_ROLE,
            subject=args.deploy_subject,
            statements=args.deploy_statements,
            args=args,
            child=child,
        )
        self.preview_role = self._role(
            name,
            role=PREVIEW_ROLE,
            subject=args.preview_subject,
            statements=args.preview_statements,
            args=args,
            child=child,
        )
        self.register_outputs(
            {"deploy_role_arn": self.deploy_role.arn, "preview_role_arn": self.preview_role.arn}
        )

    def _role(
        self,
        name: str,
        *,
        role: str,
        subject: str,
        statements: Sequence[Statement],
        args: GithubOidcArgs,
        child: pulumi.ResourceOptions,
    ) -> aws.iam.Role:
        created = aws.iam.Role(
            f"{name}-{role}",
            name=f"{args.role_prefix}-{role}",
            assume_role_policy=web_identity_trust(self.provider.arn, subject),
            max_session_duration=3600,
            tags=dict(args.tags),
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-{role}-policy",
            role=created.name,
            policy=policy_json(*statements),
            opts=child,
        )
        return created
