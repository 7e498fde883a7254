"""Whether an image reference is allowed: the rule's config (ops account, region,
repositories, the stack's account), the problems of an image URI or model package ARN, and
a diagnosis that names the first thing wrong (account, region, host, tag, repository,
digest)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from .._props import config_bool, config_str, config_strings, is_unknown
from .references import ImageRef

_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_ECR_HOST = re.compile(
    r"(?P<account>\d{12})\.dkr\.ecr(?:-fips)?\.(?P<region>[a-z]{2}(?:-gov)?-[a-z]+-\d)"
    r"\.amazonaws\.com(?:\.cn)?"
)


@dataclass(frozen=True)
class ImageRuleConfig:
    ops_account_id: str
    region: str
    allowed_repositories: tuple[str, ...]
    unknown_is_violation: bool
    stack_account_id: str | None = None

    @classmethod
    def from_config(cls, config: Mapping[str, object]) -> ImageRuleConfig | str:
        """The rule's settings, or a message naming what is missing (the rule then fails closed)."""
        account = config_str(config, "opsAccountId")
        region = config_str(config, "region")
        repositories = config_strings(config, "allowedRepositories")
        missing = [
            key
            for key, value in (
                ("opsAccountId", account),
                ("region", region),
                ("allowedRepositories", repositories),
            )
            if not value
        ]
        if missing or account is None or region is None:
            return (
                f"policy config is missing {', '.join(missing)}; run pulumi with "
                "--policy-pack-config policies/config/<stack>.json"
            )
        return cls(
            ops_account_id=account,
            region=region,
            allowed_repositories=repositories,
            unknown_is_violation=config_bool(config, "unknownIsViolation", default=True),
            stack_account_id=config_str(config, "stackAccountId"),
        )

    @property
    def expected(self) -> str:
        repos = "|".join(self.allowed_repositories)
        return (
            f"{self.ops_account_id}.dkr.ecr.{self.region}.amazonaws.com/({repos})@sha256:<64 hex>"
        )

    def pattern(self) -> re.Pattern[str]:
        repos = "|".join(re.escape(repo) for repo in self.allowed_repositories)
        return re.compile(
            rf"{re.escape(self.ops_account_id)}\.dkr\.ecr\.{re.escape(self.region)}"
            rf"\.amazonaws\.com/(?:{repos})@sha256:[0-9a-f]{{64}}"
        )

    @property
    def partition(self) -> str:
        if self.region.startswith("cn-"):
            return "aws-cn"
        if self.region.startswith("us-gov-"):
            return "aws-us-gov"
        return "aws"

    def model_package_pattern(self, account: str) -> re.Pattern[str]:
        # model-package/<name> (unversioned) or model-package/<group>/<version>.
        return re.compile(
            rf"arn:{re.escape(self.partition)}:sagemaker:{re.escape(self.region)}:"
            rf"{re.escape(account)}:model-package/[A-Za-z0-9](?:-*[A-Za-z0-9]){{0,62}}(?:/[0-9]+)?"
        )


def image_problem(image: object, config: ImageRuleConfig) -> str | None:
    """Why `image` is not an allowed ops image, or None when it is."""
    if is_unknown(image):
        if config.unknown_is_violation:
            return (
                "is unknown during preview, so it cannot be shown to be an ops image; "
                "resolve the digest before deploying (aws.ecr.get_image on the commit's tag)"
            )
        return None
    if not isinstance(image, str):
        return (
            f"is not a literal image URI but {image!r} (a parameter or expression can be "
            "overridden at run time)"
        )
    if config.pattern().fullmatch(image):
        return None
    return f"{image!r} {_diagnose(image, config)}; expected {config.expected}"


_ARN = re.compile(
    r"arn:(?P<partition>[^:]*):(?P<service>[^:]*):(?P<region>[^:]*):(?P<account>[^:]*):"
)


def model_package_problem(package: object, config: ImageRuleConfig) -> str | None:
    """Why `package` is not a model package of this stack, or None when it is.

    A model package carries its own image; one of this stack's account and region was
    registered by this stack's (checked) pipeline, one of another account was not.
    """
    if is_unknown(package):
        unverifiable: str | None = (
            "is a model package unknown during preview, so it cannot be shown to belong "
            "to this stack's account"
        )
    elif not isinstance(package, str):
        return (
            f"is not a literal model package ARN but {package!r} (a parameter or expression "
            "can be overridden at run time)"
        )
    elif config.stack_account_id is None:
        unverifiable = (
            f"names the model package {package!r}, which cannot be checked: the policy "
            "config has no stackAccountId (regenerate policies/config/<stack>.json)"
        )
    else:
        unverifiable = None
    if unverifiable is not None or not isinstance(package, str):
        return unverifiable if config.unknown_is_violation else None
    account = config.stack_account_id
    assert account is not None
    if config.model_package_pattern(account).fullmatch(package):
        return None
    return f"{package!r} {_diagnose_package(package, account, config)}"


def _diagnose_package(package: str, account: str, config: ImageRuleConfig) -> str:
    expected = (
        f"expected arn:{config.partition}:sagemaker:{config.region}:{account}:model-package/..."
    )
    arn = _ARN.match(package)
    if arn is None:
        reason = "is not a model package ARN (a bare name does not say whose package it is)"
    elif arn.group("account") != account:
        reason = f"is a model package of account {arn.group('account')!r}, not this stack's"
    elif arn.group("region") != config.region:
        reason = f"is a model package in region {arn.group('region')!r}, not {config.region}"
    else:
        reason = "is not a model package ARN of this stack"
    return f"{reason}; {expected}"


def _foreign_registry(registry: str, has_path: bool) -> str:
    if not has_path:
        return "is not a registry path (Docker Hub shorthand)"
    if ".dkr.ecr." in registry and "amazonaws.com" in registry:
        return f"has a look-alike registry host {registry!r}"
    return f"comes from a registry other than ECR ({registry!r})"


def _diagnose(image: str, config: ImageRuleConfig) -> str:
    registry, slash, path = image.partition("/")
    host = _ECR_HOST.fullmatch(registry) if slash else None
    if host is None:
        return _foreign_registry(registry, has_path=bool(slash))
    standard_host = f"{config.ops_account_id}.dkr.ecr.{config.region}.amazonaws.com"
    repository, at, digest = path.partition("@")
    name, colon, tag = repository.partition(":")
    checks = (
        (
            host.group("account") != config.ops_account_id,
            f"comes from account {host.group('account')}, not the ops account",
        ),
        (
            host.group("region") != config.region,
            f"comes from region {host.group('region')}, not {config.region}",
        ),
        (registry != standard_host, f"uses the endpoint {registry!r}, not {standard_host!r}"),
        (
            bool(colon),
            f"uses the tag {tag!r}{' next to a digest' if at else ''} "
            "(a tag can move; pin by digest only)",
        ),
        (
            name not in config.allowed_repositories,
            f"uses the repository {name!r}, which is not one of the ops image repositories",
        ),
        (not at, "is not pinned by digest"),
        (not _DIGEST.fullmatch(digest), f"has a malformed digest {digest!r}"),
    )
    return next((message for failed, message in checks if failed), "is not an allowed image")


def reference_problem(ref: ImageRef, config: ImageRuleConfig) -> str | None:
    if ref.kind == "model-package":
        return model_package_problem(ref.value, config)
    return image_problem(ref.value, config)
