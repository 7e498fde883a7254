"""The promotion gate: a stack may only deploy the commit its source stack runs.

Prod names staging as its source (`promotion.source_stack`); staging exports
`deployed_commit`. The check runs before any resource is declared, so a
refused deployment changes nothing.
"""

from __future__ import annotations

import pulumi
from pulumi.runtime.sync_await import _sync_await

DEPLOYED_COMMIT = "deployed_commit"


class PromotionRefusedError(pulumi.RunError):
    """The commit being deployed is not the one the source stack runs."""


def source_commit(source_stack: str) -> str | None:
    """The commit `source_stack` last deployed, read through a StackReference."""
    reference = pulumi.StackReference(source_stack)
    # Programs are synchronous; this waits the same way the SDK's blocking invokes do.
    details = _sync_await(reference.get_output_details(DEPLOYED_COMMIT))
    value = details.value if details.value is not None else details.secret_value
    return None if value is None else str(value)


def check_promotion(stack: str, source_stack: str, commit: str, deployed: str | None) -> None:
    if deployed is None:
        raise PromotionRefusedError(
            f"{stack} deploys only what {source_stack} runs, but {source_stack} exports no "
            f"{DEPLOYED_COMMIT}: deploy commit {commit} to it first (git tag -f staging {commit} "
            "&& git push -f origin staging)"
        )
    if deployed != commit:
        raise PromotionRefusedError(
            f"{stack} refuses commit {commit}: {source_stack} runs {deployed}. Promote the "
            f"commit to staging first (git tag -f staging {commit} && git push -f origin "
            f"staging), or deploy {deployed} to {stack}"
        )
