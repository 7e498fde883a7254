"""Deploy by hand: the latest approved version of a stack's group, or a given version.

    python -m ml.deployer.manual --stack prod               # latest approved
    python -m ml.deployer.manual --stack prod --version 7   # roll back/forward to 7

Runs the same `deploy_package` as the deployer Lambda, with the Lambda's own
settings: the stack output `deployer_environment` (and `region`), read from
the deployed stack with `pulumi stack output --json --stack <stack>` (run in
`--cwd`, the project directory, with the ambient `pulumi login`). Flags
override single values. Credentials are the ambient AWS ones of the stack's
account.

`--offline-plan build/plan/<stack>.json` reads the outputs of an offline plan
instead (the local demo and tests). Its ARNs are invented by the Pulumi mocks,
so it is accepted only together with `--endpoint-url` (a local moto server).

Exit codes: 0 deployed or nothing to do; 1 needs an operator (Failed
endpoint, missing model artifact, no such version, access denied); 2 usage
or configuration (missing output, no pulumi CLI, no credentials); 3 internal
error; 75 retry later (endpoint busy, throttling, 5xx, connection error,
pulumi backend timeout); 130/143 interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from botocore.exceptions import (
    ClientError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
)

from ml.deployer import errors, naming
from ml.deployer.config import DeployerConfig, DeployerConfigError, Env
from ml.deployer.deploy import deploy_package
from ml.deployer.registry import resolve_package_arn

EXIT_OPERATOR: Final = 1
EXIT_USAGE: Final = 2
EXIT_INTERNAL: Final = 3
EXIT_RETRY: Final = 75  # EX_TEMPFAIL
EXIT_INTERRUPTED: Final = 130
ENVIRONMENT_OUTPUT: Final = "deployer_environment"
"""Stack output holding the deployer Lambda's environment (ModelDeployer.environment)."""
REGION_OUTPUT: Final = "region"
OFFLINE_UNKNOWN: Final = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
"""The Pulumi engine's marker for a value unknown at plan time (pulumi.runtime.rpc.UNKNOWN)."""
PULUMI_TIMEOUT_SECONDS: Final = 120

REQUIRED: Final = (
    Env.ENDPOINT_NAME,
    Env.MODEL_PACKAGE_GROUP,
    Env.EXECUTION_ROLE_ARN,
    Env.DATA_CAPTURE_S3_URI,
)
FLAGS: Final = {
    Env.ENDPOINT_NAME: ("endpoint_name", "SageMaker endpoint to deploy to"),
    Env.MODEL_PACKAGE_GROUP: ("model_package_group_name", "group whose versions are deployed"),
    Env.EXECUTION_ROLE_ARN: ("execution_role_arn", "SageMaker execution role for CreateModel"),
    Env.DATA_CAPTURE_S3_URI: ("data_capture_s3_uri", "s3:// prefix for captured traffic"),
    Env.KMS_KEY_ARN: ("kms_key_arn", "KMS key for captured data and endpoint volumes"),
    Env.INSTANCE_TYPE: ("instance_type", "endpoint instance type, e.g. ml.m5.large"),
    Env.INSTANCE_COUNT: ("instance_count", "endpoint instance count"),
}


class ManualError(Exception):
    """A one-line failure of the command, with its exit code."""

    def __init__(self, message: str, code: int = EXIT_USAGE):
        super().__init__(message)
        self.code = code


def stack_outputs(stack: str, cwd: Path, timeout: float = PULUMI_TIMEOUT_SECONDS) -> dict[str, Any]:
    """`pulumi stack output --json --stack <stack>` of the deployed stack."""
    command = ["pulumi", "stack", "output", "--json", "--stack", stack]
    shown = " ".join(command)
    try:
        # Its own process group, ended group and all if it hangs.
        process = subprocess.Popen(
            command,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
    except FileNotFoundError:
        raise ManualError(
            "the pulumi CLI is not on PATH: install it and `pulumi login` to the state "
            f"backend to read stack {stack}'s outputs (for the local demo: --offline-plan "
            f"build/plan/{stack}.json --endpoint-url <moto URL>)"
        ) from None
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _end_group(process)
        raise ManualError(
            f"`{shown}` did not answer in {timeout:g} s (state backend unreachable?); retry",
            EXIT_RETRY,
        ) from None
    except BaseException:
        _end_group(process)
        raise
    if process.returncode != 0:
        lines = [line.strip() for line in err.splitlines() if line.strip()]
        detail = lines[-1] if lines else f"exit code {process.returncode}"
        raise ManualError(
            f"`{shown}` in {cwd} failed: {detail}; check `pulumi login` and that the stack "
            "exists (`pulumi stack ls`)"
        )
    try:
        document = json.loads(out)
    except json.JSONDecodeError:
        raise ManualError(f"`{shown}` printed no JSON object") from None
    if not isinstance(document, dict):
        raise ManualError(f"`{shown}` printed {type(document).__name__}, not a JSON object")
    return document


def _end_group(process: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def offline_plan_outputs(path: Path) -> dict[str, Any]:
    """The `outputs` of an offline plan file (`promote plan` writes build/plan/<stack>.json)."""
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        raise ManualError(f"{path}: no such offline plan; run `promote plan` first") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ManualError(f"{path}: not a readable offline plan ({error})") from None
    outputs = document.get("outputs") if isinstance(document, dict) else None
    if not isinstance(outputs, dict):
        raise ManualError(f"{path}: key 'outputs' is missing; run `promote plan` again")
    return outputs


def resolve_environment(
    stack: str,
    source: str,
    outputs: Mapping[str, Any],
    overrides: Mapping[str, str | None],
) -> dict[str, str]:
    """The deployer variables: the stack's `deployer_environment` output, then the flags."""
    recorded = outputs.get(ENVIRONMENT_OUTPUT)
    if recorded is not None and not isinstance(recorded, Mapping):
        raise ManualError(
            f"stack {stack}: output {ENVIRONMENT_OUTPUT} ({source}) is not an object; "
            f"run `pulumi up --stack {stack}`"
        )
    env = {str(k): str(v) for k, v in (recorded or {}).items()}
    env.update({name: value for name, value in overrides.items() if value is not None})
    missing = [name for name in REQUIRED if not env.get(name, "").strip()]
    if missing:
        flags = ", ".join(f"--{FLAGS[n][0].replace('_', '-')}" for n in missing)
        what = (
            f"has no output {ENVIRONMENT_OUTPUT}"
            if recorded is None
            else f"output {ENVIRONMENT_OUTPUT} lacks {', '.join(missing)}"
        )
        raise ManualError(
            f"stack {stack} {what} ({source}); run `pulumi up --stack {stack}` "
            f"(the ModelDeployer component exports it), or pass {flags}"
        )
    unknown = sorted(name for name, value in env.items() if value == OFFLINE_UNKNOWN)
    if unknown:
        flags = ", ".join(f"--{FLAGS[n][0].replace('_', '-')}" for n in unknown if n in FLAGS)
        raise ManualError(
            f"stack {stack}: {', '.join(unknown)} unknown in {source} (computed at deploy "
            f"time); pass {flags or 'them as flags'}"
        )
    if not env.get(Env.ROLLBACK_ALARMS):
        env[Env.ROLLBACK_ALARMS] = json.dumps(
            list(naming.rollback_alarm_names(env[Env.ENDPOINT_NAME]))
        )
    return env


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="python -m ml.deployer.manual",
        description=(__doc__ or "").split("\n\n")[0],
        epilog="Exit codes: 0 done, 1 needs an operator, 2 usage/configuration, "
        "3 internal, 75 retry later.",
    )
    root.add_argument("--stack", required=True, help="environment stack: dev, staging or prod")
    root.add_argument(
        "--version", type=int, help="model package version (default: latest approved)"
    )
    root.add_argument(
        "--cwd", type=Path, default=Path(), help="Pulumi project directory (default: .)"
    )
    root.add_argument(
        "--offline-plan",
        type=Path,
        metavar="PATH",
        help="read outputs from an offline plan (simulated ARNs; needs --endpoint-url)",
    )
    root.add_argument("--region", help="AWS region (default: the stack's region output)")
    root.add_argument("--endpoint-url", help="AWS API URL, e.g. a local moto server")
    for flag, description in FLAGS.values():
        root.add_argument(f"--{flag.replace('_', '-')}", dest=flag, help=description)
    return root


def load(args: argparse.Namespace) -> tuple[DeployerConfig, str]:
    """The deployer configuration and region, from the chosen source and the flags."""
    if args.offline_plan is not None:
        if not args.endpoint_url:
            raise ManualError(
                f"--offline-plan {args.offline_plan}: an offline plan's ARNs are invented by "
                "the Pulumi mocks; use it only with --endpoint-url <local moto server>, or "
                f"drop it to read stack {args.stack}'s real outputs"
            )
        source = f"offline plan {args.offline_plan}"
        outputs = offline_plan_outputs(args.offline_plan)
    else:
        source = f"pulumi stack output --stack {args.stack}"
        outputs = stack_outputs(args.stack, args.cwd)
    overrides = {name: getattr(args, flag) for name, (flag, _) in FLAGS.items()}
    env = resolve_environment(args.stack, source, outputs, overrides)
    try:
        config = DeployerConfig.from_env(env)
    except DeployerConfigError as error:
        raise ManualError(
            f"stack {args.stack}, output {ENVIRONMENT_OUTPUT} ({source}): {error}"
        ) from None
    region = args.region or outputs.get(REGION_OUTPUT)
    if not isinstance(region, str) or not region or region == OFFLINE_UNKNOWN:
        raise ManualError(
            f"stack {args.stack} has no output {REGION_OUTPUT} ({source}); pass --region"
        )
    return config, region


def deploy(args: argparse.Namespace, config: DeployerConfig, region: str) -> dict[str, Any]:
    import boto3  # noqa: PLC0415 - keep `--help` and usage errors fast

    session = boto3.session.Session(region_name=region)
    sagemaker = session.client("sagemaker", endpoint_url=args.endpoint_url)
    s3 = session.client("s3", endpoint_url=args.endpoint_url)
    package_arn = resolve_package_arn(sagemaker, config.model_package_group_name, args.version)
    result = deploy_package(
        sagemaker, config, package_arn, allow_older=args.version is not None, s3=s3
    )
    return result.as_dict()


def failure(error: Exception, stack: str) -> tuple[int, str]:
    """The exit code and the one line for a failed run."""
    if isinstance(error, ManualError):
        prefix = "retry later" if error.code == EXIT_RETRY else "error"
        return error.code, f"{prefix}: {error}"
    if isinstance(error, NoCredentialsError | PartialCredentialsError | ProfileNotFound):
        return EXIT_USAGE, (
            f"error: no usable AWS credentials for stack {stack} ({error}); sign in to its "
            "account (e.g. `aws sso login`, AWS_PROFILE) and run again"
        )
    if isinstance(error, NoRegionError):
        return EXIT_USAGE, f"error: {error}; pass --region"
    if errors.disposition(error) == "retry":
        return EXIT_RETRY, f"retry later: {error}"
    if isinstance(error, errors.DeployError | ClientError):
        return EXIT_OPERATOR, f"error: {error}"
    return EXIT_INTERNAL, f"internal error: {type(error).__name__}: {error}"


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        config, region = load(args)
        result = deploy(args, config, region)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except Exception as error:  # one line, whatever failed
        code, line = failure(error, args.stack)
        print(line, file=sys.stderr)
        return code
    print(json.dumps(result, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
