"""`promote lineage`: the lineage chain of a local run's endpoint, or of the real stack's.

    promote lineage --stack dev --local   # build/local/dev/lineage.json, from the last local run
    promote lineage --stack dev           # the deployed stack (python -m ml.lineage)

A local run ends by calling `write_local_lineage` while its moto server still
runs: the chain (`ml.lineage.chain`) is computed there and written to
`<workdir>/lineage.json`, because the moto state goes away with the run.
`--local` then prints that file with `ml.lineage.format_chain`.

Exit codes: those of `python -m ml.lineage`; `--local` exits 2 when the file
is missing or unreadable.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final, Protocol

from ml import lineage

LINEAGE_FILE: Final = "lineage.json"
LOCAL_RUNS: Final = Path("build/local")


class ClientFactory(Protocol):
    """What the local run's AWS handle offers (offline.aws.LocalAws)."""

    def client(self, service: str) -> Any: ...


def write_local_lineage(
    aws: ClientFactory, endpoint_name: str, workdir: Path, *, tracking_uri: str | None = None
) -> Path:
    """Compute the chain of `endpoint_name` against local AWS; write `<workdir>/lineage.json`.

    `tracking_uri` is the local MLflow store, for packages that name no tracking server.
    A previous run's file is removed first, so a chain that cannot be followed (raises
    `ml.lineage.LineageError`) never leaves an older run's lineage behind.
    """
    path = workdir / LINEAGE_FILE
    path.unlink(missing_ok=True)
    found = lineage.chain(aws.client("sagemaker"), endpoint_name, tracking_uri=tracking_uri)
    workdir.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(found.as_dict(), indent=2, sort_keys=True) + "\n")
    return path


def read_local_lineage(path: Path, stack: str) -> lineage.Lineage:
    """The chain a local run wrote; `lineage.LineageConfigError` (one line) if there is none."""
    rerun = f"run `promote pipeline run --local --stack {stack}` first"
    try:
        document = json.loads(path.read_text())
        return lineage.Lineage.from_dict(document)
    except FileNotFoundError:
        raise lineage.LineageConfigError(
            f"{path}: no lineage of a local run of stack {stack}; {rerun}"
        ) from None
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as error:
        raise lineage.LineageConfigError(
            f"{path}: not a lineage file ({type(error).__name__}: {error}); {rerun}"
        ) from None


def configure(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the arguments of `promote lineage` to `parser` (its run function: `run`)."""
    parser.add_argument("--stack", default="dev", help="stack (default dev)")
    parser.add_argument(
        "--local",
        action="store_true",
        help=f"print the last local run's chain (<workdir>/{LINEAGE_FILE})",
    )
    parser.add_argument(
        "--workdir", type=Path, default=None, help="with --local; default build/local/<stack>"
    )
    parser.add_argument("--json", action="store_true", help="print the chain as JSON")
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    if not args.local:
        # The real stack: the operator tool, with its own options and exit codes.
        return lineage.main(["--stack", args.stack, *(["--json"] if args.json else [])])
    path = (args.workdir or LOCAL_RUNS / args.stack) / LINEAGE_FILE
    try:
        found = read_local_lineage(path, args.stack)
    except lineage.LineageConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return lineage.EXIT_USAGE
    if args.json:
        print(json.dumps(found.as_dict(), indent=2, sort_keys=True))
    else:
        print(f"lineage of the local run of stack {args.stack} ({path}):")
        print(lineage.format_chain(found))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = configure(argparse.ArgumentParser(prog="promote lineage")).parse_args(argv)
    code: int = args.run(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
