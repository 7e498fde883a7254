"""What `promote` needs of the local run without importing it: the options `promote
pipeline run` and `python -m offline.pipeline.cli` both take, and the file `--verify`
writes, which `promote plan` reads. The runner brings pandas, numpy and joblib
(`import offline.cli` took 1.08 s with them, 0.64-0.71 s without), and `promote plan`
never runs a pipeline.
"""

from __future__ import annotations

import argparse

RECORD_FILE = "verification.json"
"""`<workdir>/verification.json`: staging's checks on a local run (`--verify`)."""


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """`--runs` and `--parameter`."""
    parser.add_argument(
        "--runs",
        type=int,
        default=1,
        choices=range(1, 6),
        metavar="N",
        help="N executions in one local AWS (1-5): from the second on, a retrain that meets "
        "the champion the runs before approved",
    )
    parser.add_argument(
        "--parameter",
        action="append",
        default=[],
        type=parameter_override,
        metavar="NAME=VALUE",
        help="override a pipeline parameter for this run, as StartPipelineExecution does "
        "(repeatable; e.g. MetricThreshold=0.3)",
    )


def parameter_override(text: str) -> tuple[str, str]:
    """`Name=Value` -> (Name, Value); argparse reports a malformed one as a usage error (2)."""
    name, equals, value = text.partition("=")
    if not equals or not name.strip():
        raise argparse.ArgumentTypeError(
            f"expected NAME=VALUE (e.g. MetricThreshold=0.3), got {text!r}"
        )
    return name.strip(), value
