"""The whole Pulumi program: one `build` for every stack, driven only by settings."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from typing import Any

import pulumi

from infra.context import REPO_ROOT, StackContext
from infra.promotion import VERIFICATION_ENV, load_verification
from infra.settings import IdentitySettings, OpsSettings, Settings, SettingsError, load_settings
from infra.stacks.environment import build_environment
from infra.stacks.identity import build_identity
from infra.stacks.ops import build_ops

IMAGE_TAG_ENV = "PROMOTE_IMAGE_TAG"


def settings_from_config(stack: str) -> Settings:
    """Read and validate this stack's settings from the Pulumi config."""
    promote = pulumi.Config("promote")
    aws_config = pulumi.Config("aws")
    try:
        raw = promote.get_object("settings")
    except pulumi.ConfigTypeError as error:
        raise pulumi.RunError(f"Pulumi.{stack}.yaml: promote:settings {error}") from None
    try:
        return load_settings(
            stack,
            raw,
            aws_region=aws_config.get("region"),
            allowed_account_ids=aws_config.get_object("allowedAccountIds"),
        )
    except SettingsError as error:
        raise pulumi.RunError(str(error)) from None


def resolve_image_tag(environ: Mapping[str, str] | None = None) -> str:
    """PROMOTE_IMAGE_TAG, or the checked-out commit; a dirty tree has no honest tag."""
    environ = os.environ if environ is None else environ
    if tag := environ.get(IMAGE_TAG_ENV):
        return tag
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError) as error:
        raise pulumi.RunError(
            f"cannot tell which commit to deploy ({error}); set {IMAGE_TAG_ENV}=<commit sha>"
        ) from None
    if dirty:
        raise pulumi.RunError(
            f"the working tree has uncommitted changes, so commit {head[:12]} does not describe "
            f"what would be built; commit them, or set {IMAGE_TAG_ENV} to an already built commit"
        )
    return head


def verification_record(
    image_tag: str, environ: Mapping[str, str] | None = None
) -> dict[str, Any] | None:
    """The staging promotion job's record for this commit (PROMOTE_VERIFICATION), if given."""
    environ = os.environ if environ is None else environ
    path = environ.get(VERIFICATION_ENV)
    return load_verification(path, image_tag) if path else None


def build(settings: Settings, ctx: StackContext) -> dict[str, pulumi.Input[object]]:
    """Declare every resource of the stack and return its outputs."""
    if isinstance(settings, IdentitySettings):
        return build_identity(settings, ctx)
    if isinstance(settings, OpsSettings):
        return build_ops(settings, ctx)
    return build_environment(settings, ctx)
