"""Where the stacks live and who may reach them: the four account IDs, the deploying
GitHub repository, the administrator's access to each account and the state backend."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, model_validator

from infra.settings.base import StrictModel, shown
from infra.settings.stacks import IDENTITY_STACK, STACKS

_ACCOUNT_RE = re.compile(r"^\d{12}$")
_REPO_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}$")
_BUCKET_RE = re.compile(r"^(?!xn--)(?!.*-s3alias$)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


def _account_id(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError(f"must be a quoted 12-digit account ID string, got {shown(value)}")
    if isinstance(value, int):
        # YAML reads unquoted digits as a number: leading zeros are dropped and a leading 0
        # can even make it octal, so the number says nothing reliable about the account.
        raise ValueError(
            f"must be a quoted 12-digit string, got the number {value}: YAML reads unquoted "
            "digits as a number (dropping leading zeros, or reading them as octal); write the "
            'account ID in quotes exactly as AWS shows it, e.g. "012345678901"'
        )
    if not _ACCOUNT_RE.match(value):
        raise ValueError(f"must be exactly 12 digits, got {shown(value)}")
    return value


AccountId = Annotated[str, BeforeValidator(_account_id)]


class Accounts(StrictModel):
    """The four AWS accounts of the design."""

    ops: AccountId = Field(description="Operations account: ECR registry, images, identity.")
    dev: AccountId = Field(description="Development account.")
    staging: AccountId = Field(description="Staging account.")
    prod: AccountId = Field(description="Production account.")

    @model_validator(mode="after")
    def _distinct(self) -> Accounts:
        seen: dict[str, str] = {}
        for role in STACKS:
            account = getattr(self, role)
            if account in seen:
                raise ValueError(
                    f"account {account} is used for both {seen[account]} and {role}; "
                    "each role needs its own AWS account"
                )
            seen[account] = role
        return self

    def for_stack(self, stack: str) -> str:
        """The account a stack deploys into (the identity bootstrap runs from ops)."""
        return str(getattr(self, "ops" if stack == IDENTITY_STACK else stack))

    @property
    def environment_accounts(self) -> tuple[str, ...]:
        return (self.dev, self.staging, self.prod)


class GithubSettings(StrictModel):
    repository: str = Field(description="GitHub repository that deploys, as owner/name.")

    @model_validator(mode="after")
    def _owner_name(self) -> GithubSettings:
        if not _REPO_RE.match(self.repository) or "*" in self.repository:
            raise ValueError(
                f"repository must be 'owner/name' (e.g. my-org/promote-code), "
                f"got {shown(self.repository)}"
            )
        return self


class AccountAccess(StrictModel):
    """How the identity bootstrap reaches one account: a role to assume or a named profile."""

    role_arn: str | None = Field(default=None, description="Role the administrator assumes.")
    profile: str | None = Field(default=None, description="AWS CLI profile for that account.")

    @model_validator(mode="after")
    def _one_way(self) -> AccountAccess:
        if (self.role_arn is None) == (self.profile is None):
            raise ValueError("set exactly one of role_arn or profile")
        if self.role_arn is not None and not re.match(
            r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+$", self.role_arn
        ):
            raise ValueError(f"role_arn must be an IAM role ARN, got {shown(self.role_arn)}")
        return self


class StateSettings(StrictModel):
    """A self-managed Pulumi state backend: `pulumi login s3://<bucket>`."""

    bucket: str = Field(description="S3 bucket of the state backend (a name, no wildcards).")
    account: Literal["ops", "dev", "staging", "prod"] = Field(
        default="ops", description="Which of the four accounts holds the bucket."
    )

    @model_validator(mode="after")
    def _bucket_name(self) -> StateSettings:
        name = self.bucket
        if not _BUCKET_RE.match(name) or ".." in name or re.match(r"^\d+\.\d+\.\d+\.\d+$", name):
            raise ValueError(
                f"bucket must be an S3 bucket name (3-63 lowercase letters, digits, dots and "
                f"hyphens, no wildcards), got {name[:80]!r}"
            )
        return self
