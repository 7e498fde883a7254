"""Before any Pulumi command in CI: can this stack's secrets be opened without a passphrase?

    python -m infra.preflight --stack prod      # PULUMI_BACKEND_URL from the environment

With a self-managed backend (`s3://`, `file://`, `azblob://`, `gs://`) Pulumi keeps a
stack's secrets provider and data key in `Pulumi.<stack>.yaml` (`secretsprovider:`,
`encryptedkey:`, written by `pulumi stack init --secrets-provider awskms://...`). A stack
file without them makes every CI job fall back to a passphrase and fail ("passphrase must
be set with PULUMI_CONFIG_PASSPHRASE"); this says so first, with the fix. Pulumi Cloud
keeps them itself, so nothing is checked there. Exit 0 fine, 2 a stack file to fix.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import yaml

from infra.context import REPO_ROOT
from infra.settings import STACKS

SELF_MANAGED = ("s3://", "file://", "azblob://", "gs://")
EXAMPLE_MARK = "EXAMPLE"
"""The committed stack files carry example values containing this word."""


def self_managed(backend_url: str | None) -> bool:
    return bool(backend_url) and str(backend_url).startswith(SELF_MANAGED)


def stack_file_problem(path: Path, stack: str) -> str | None:
    """Why `path` cannot open its secrets without a passphrase, or None."""
    try:
        document = yaml.safe_load(path.read_text()) if path.is_file() else None
    except yaml.YAMLError as error:
        return f"{path.name}: not valid YAML ({error})"
    if not isinstance(document, Mapping):
        return f"{path.name}: missing or not a mapping"
    config = document.get("config")
    region = config.get("aws:region", "<region>") if isinstance(config, Mapping) else "<region>"
    fix = (
        f"run `pulumi stack change-secrets-provider --stack {stack} "
        f'"awskms://alias/promote-code-state?region={region}"` with {stack} credentials '
        f"and commit the secretsprovider: and encryptedkey: lines it writes to {path.name}"
    )
    provider, key = document.get("secretsprovider"), document.get("encryptedkey")
    if not isinstance(provider, str) or not provider.startswith("awskms://"):
        return f"{path.name}: no awskms:// secretsprovider (got {str(provider)[:80]!r}); {fix}"
    if not isinstance(key, str) or not key or EXAMPLE_MARK in key:
        return f"{path.name}: encryptedkey is missing or still the template's example; {fix}"
    return None


def check(stacks: Sequence[str], backend_url: str | None, root: Path = REPO_ROOT) -> list[str]:
    if not self_managed(backend_url):
        return []
    problems = []
    for stack in stacks:
        problem = stack_file_problem(root / f"Pulumi.{stack}.yaml", stack)
        if problem is not None:
            problems.append(problem)
    return problems


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.preflight", description=__doc__)
    parser.add_argument("--stack", action="append", choices=STACKS, help="default: all four")
    parser.add_argument("--root", type=Path, default=REPO_ROOT, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    environ = environ if environ is not None else os.environ
    problems = check(args.stack or STACKS, environ.get("PULUMI_BACKEND_URL"), args.root)
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    return 2 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
