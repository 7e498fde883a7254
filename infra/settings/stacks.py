"""The stacks of the project, the settings key they share, and the order of promotion."""

from __future__ import annotations

STACKS: tuple[str, ...] = ("ops", "dev", "staging", "prod")
"""The stacks CI deploys, one per account."""
ENVIRONMENTS: tuple[str, ...] = ("dev", "staging", "prod")
PROMOTION_ORDER: tuple[str, ...] = ENVIRONMENTS
"""A commit goes dev -> staging -> prod; a stack may promote only from the one before it."""
IDENTITY_STACK = "identity"
"""The administrator's bootstrap stack (GitHub OIDC, CI roles, boundaries); never run by CI."""
SETTINGS_KEY = "promote:settings"


def source_in_order(stack: str) -> str | None:
    """The stack `stack` may promote from: the one before it in PROMOTION_ORDER."""
    if stack not in PROMOTION_ORDER:
        return None
    position = PROMOTION_ORDER.index(stack)
    return PROMOTION_ORDER[position - 1] if position > 0 else None
