"""What every part of a stack needs to know about where it runs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
IMAGE_NAMES: tuple[str, ...] = ("training", "deployer")


@dataclass(frozen=True)
class StackContext:
    project: str
    stack: str
    image_tag: str
    """Git commit whose images this deployment uses (PROMOTE_IMAGE_TAG)."""
    verification: Mapping[str, Any] | None = None
    """The staging promotion job's record that this commit trained, served and passed its
    smoke test (PROMOTE_VERIFICATION); exported for the next stack's promotion gate."""

    @property
    def prefix(self) -> str:
        return f"{self.project}-{self.stack}"

    @property
    def tags(self) -> dict[str, str]:
        return {"project": self.project, "environment": self.stack, "managed-by": "pulumi"}

    def repository_name(self, image: str) -> str:
        """ECR repository of one image in the ops account, e.g. promote-code/training."""
        return f"{self.project}/{image}"
