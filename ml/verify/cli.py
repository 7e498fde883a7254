"""Prove a promoted commit in staging: it trains, it is served, and it answers.

    pulumi stack output --json --stack staging > staging-outputs.json
    python -m ml.verify --outputs staging-outputs.json --commit <sha> --out verification.json
    PROMOTE_VERIFICATION=verification.json pulumi up --stack staging   # the attestation

The staging promotion job runs this after `pulumi up --stack staging` and the data
upload: the checks of `checks`, in order. The record (`--out`) names every check with
its evidence; the attesting `pulumi up` exports it as staging's `verification` output,
which prod's promotion gate requires. Exit codes: 0 verified, 1 a check failed, 2 bad
usage or inputs, 75 AWS unreachable or throttled (retry later).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from ml.verify.checks import verify
from ml.verify.inputs import SAMPLE_CSV, Budget, CheckFailedError, Target, sample_notes
from ml.verify.smoke import endpoint_invoker

EXIT_FAILED, EXIT_USAGE, EXIT_RETRY = 1, 2, 75


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ml.verify", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--outputs", type=Path, required=True, help="pulumi stack output --json")
    parser.add_argument("--commit", required=True, help="the promoted commit (40 hex)")
    parser.add_argument("--stack", default="staging")
    parser.add_argument("--out", type=Path, required=True, help="where the record is written")
    parser.add_argument("--sample", type=Path, default=SAMPLE_CSV, help="mtsamples-format CSV")
    args = parser.parse_args(argv)
    try:
        outputs = json.loads(args.outputs.read_text())
        target = Target.from_outputs(args.stack, args.commit, outputs)
        notes = sample_notes(args.sample, Budget().smoke_requests)
    except (OSError, ValueError, CheckFailedError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE

    import boto3  # noqa: PLC0415 - only when talking to AWS
    import botocore.exceptions  # noqa: PLC0415

    sm = boto3.client("sagemaker")
    invoke = endpoint_invoker(boto3.client("sagemaker-runtime"), target.endpoint)
    try:
        record = verify(target, sm=sm, invoke=invoke, budget=Budget(), notes=notes)
    except (botocore.exceptions.EndpointConnectionError, botocore.exceptions.ClientError) as error:
        print(f"error: AWS did not answer ({error}); retry later", file=sys.stderr)
        return EXIT_RETRY
    args.out.write_text(json.dumps(record.document(), indent=2, sort_keys=True) + "\n")
    print(f"wrote {args.out}")
    return 0 if record.passed else EXIT_FAILED
