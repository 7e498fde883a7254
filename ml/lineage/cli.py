"""`python -m ml.lineage --stack <stack> [--json]`: the chain of a stack's endpoint.

The command reads `endpoint_name`, `region` and, when exported,
`mlflow_tracking_arn` from `pulumi stack output --json --stack <stack>`
(ml.deployer.manual.stack_outputs). Exit codes: 0 printed; 1 the chain is
broken (no endpoint, a model without its package, a package without lineage);
2 usage or configuration (missing output, no pulumi CLI, no credentials);
3 internal error; 75 retry later (throttling, pulumi backend timeout).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from ml.lineage.record import Lineage, format_chain
from ml.lineage.trace import LineageError, chain

ENDPOINT_OUTPUT: Final = "endpoint_name"
REGION_OUTPUT: Final = "region"
TRACKING_OUTPUT: Final = "mlflow_tracking_arn"

EXIT_BROKEN: Final = 1
EXIT_USAGE: Final = 2
EXIT_INTERNAL: Final = 3


class LineageConfigError(Exception):
    """The command cannot start: a stack output it needs is missing (exit 2)."""


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="python -m ml.lineage",
        description="Print the lineage chain of a stack's endpoint: endpoint -> endpoint "
        "config -> model -> model package -> MLflow run -> commit / image digests / data hash.",
        epilog="Exit codes: 0 printed, 1 the chain is broken, 2 usage/configuration, "
        "3 internal, 75 retry later.",
    )
    root.add_argument("--stack", required=True, help="environment stack: dev, staging or prod")
    root.add_argument(
        "--cwd", type=Path, default=Path(), help="Pulumi project directory (default: .)"
    )
    root.add_argument("--region", help="AWS region (default: the stack's region output)")
    root.add_argument("--endpoint-url", help="SageMaker API URL, e.g. a local moto server")
    root.add_argument(
        "--tracking-uri",
        help="MLflow tracking URI for packages that name none (default: the stack's "
        f"{TRACKING_OUTPUT} output, if exported)",
    )
    root.add_argument("--json", action="store_true", help="print the chain as JSON")
    return root


def _output(outputs: Mapping[str, Any], key: str, stack: str) -> str:
    value = outputs.get(key)
    if not isinstance(value, str) or not value:
        raise LineageConfigError(
            f"stack {stack} has no output {key} (pulumi stack output --stack {stack}); "
            f"run `pulumi up --stack {stack}` first"
        )
    return value


def run(args: argparse.Namespace) -> Lineage:
    """The chain of the stack's endpoint, from its outputs and the ambient AWS credentials."""
    # Imported on use: the package stays importable without boto3 or pulumi (the deployer
    # Lambda and the pipeline definition import its keys).
    import boto3  # noqa: PLC0415

    from ml.deployer.manual import stack_outputs  # noqa: PLC0415

    outputs = stack_outputs(args.stack, args.cwd)
    endpoint_name = _output(outputs, ENDPOINT_OUTPUT, args.stack)
    region = args.region or _output(outputs, REGION_OUTPUT, args.stack)
    tracking = args.tracking_uri or outputs.get(TRACKING_OUTPUT) or None
    session = boto3.session.Session(region_name=region)
    sagemaker = session.client("sagemaker", endpoint_url=args.endpoint_url)
    return chain(
        sagemaker,
        endpoint_name,
        tracking_uri=str(tracking) if tracking else None,
        stack=args.stack,
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        lineage = run(args)
    except KeyboardInterrupt:
        return 130
    except LineageError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BROKEN
    except LineageConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as error:  # one line, whatever failed
        from ml.deployer.manual import failure  # noqa: PLC0415

        code, line = failure(error, args.stack)
        print(line, file=sys.stderr)
        return code
    if args.json:
        print(json.dumps(lineage.as_dict(), indent=2, sort_keys=True))
    else:
        print(format_chain(lineage))
    return 0
