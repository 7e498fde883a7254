"""The pack's diagnostics as the engine would print them, and the per-stack report."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from offline.policy.config import BLOCKING, EnforcementLevel


@dataclass(frozen=True)
class Violation:
    """One diagnostic of the pack."""

    policy: str
    resource_urn: str
    """URN of the offending resource; empty for a stack-wide diagnostic."""
    resource_name: str
    message: str
    enforcement_level: EnforcementLevel

    @property
    def mandatory(self) -> bool:
        return self.enforcement_level in BLOCKING

    def __str__(self) -> str:
        where = self.resource_name or self.resource_urn or "stack"
        detail = self.message.replace("\n", " - ")
        return f"[{self.enforcement_level}] {self.policy} on {where}: {detail}"


def mandatory(violations: Sequence[Violation]) -> list[Violation]:
    return [v for v in violations if v.mandatory]


def format_report(stack: str, violations: Sequence[Violation]) -> str:
    """The per-stack lines the offline plan prints."""
    if not violations:
        return f"{stack}: no policy violations"
    blocking = len(mandatory(violations))
    lines = [f"{stack}: {len(violations)} policy violation(s), {blocking} mandatory"]
    lines.extend(f"  {violation}" for violation in violations)
    return "\n".join(lines)
