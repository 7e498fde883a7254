"""Which AWS resource types take tags, generated from the installed pulumi-aws sources.

A resource that sets no tags has no `tags` input at all, so the type list is
what tells the `required-tags` rule that tags were forgotten. Regenerate after
upgrading pulumi-aws: `cd policies && python -m rules.taggable_gen --write`
(tests fail when the list and the installed provider disagree).
"""

from __future__ import annotations

from pathlib import Path

LIST_FILE = Path(__file__).with_name("aws_taggable_types.txt")


def _load() -> frozenset[str]:
    lines = LIST_FILE.read_text().splitlines()
    return frozenset(line.strip() for line in lines if line.strip() and not line.startswith("#"))


TAGGABLE_TYPES: frozenset[str] = _load()
