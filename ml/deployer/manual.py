"""Deploy by hand: the latest approved version of a stack's group, or a given version.

    python -m ml.deployer.manual --stack prod               # latest approved
    python -m ml.deployer.manual --stack prod --version 7   # roll back/forward to 7

The same `deploy_package` as the Lambda, with the same settings: they come from
the stack's `deployer_environment` output (exactly what the Lambda gets), else
from the other outputs of `build/plan/<stack>.json` plus the endpoint settings
in `Pulumi.<stack>.yaml`. Any flag overrides. Credentials and region are the
ambient AWS ones; `--endpoint-url` points at a local moto server.

Exit codes: 0 deployed or nothing to do, 1 needs an operator, 2 bad usage,
75 retry later (endpoint busy).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ml.deployer import naming
from ml.deployer.config import DeployerConfig, DeployerConfigError, Env, RolloutConfig
from ml.deployer.deploy import (
    DeployError,
    RetryableDeployError,
    deploy_package,
    resolve_package_arn,
)

EXIT_OPERATOR = 1
EXIT_USAGE = 2
EXIT_RETRY = 75  # EX_TEMPFAIL
ENVIRONMENT_OUTPUT = "deployer_environment"
"""Stack output holding the deployer Lambda's environment (ModelDeployer.environment)."""

_OUTPUT_FOR_ENV = {
    Env.ENDPOINT_NAME: "endpoint_name",
    Env.MODEL_PACKAGE_GROUP: "model_package_group_name",
    Env.EXECUTION_ROLE_ARN: "execution_role_arn",
    Env.DATA_CAPTURE_S3_URI: "data_capture_s3_uri",
    Env.KMS_KEY_ARN: "kms_key_arn",
}
_FLAG_FOR_ENV = {
    Env.ENDPOINT_NAME: "endpoint_name",
    Env.MODEL_PACKAGE_GROUP: "model_package_group_name",
    Env.EXECUTION_ROLE_ARN: "execution_role_arn",
    Env.DATA_CAPTURE_S3_URI: "data_capture_s3_uri",
    Env.KMS_KEY_ARN: "kms_key_arn",
    Env.INSTANCE_TYPE: "instance_type",
    Env.INSTANCE_COUNT: "instance_count",
}
_FLAG_HELP = {
    "endpoint_name": "SageMaker endpoint to deploy to",
    "model_package_group_name": "model package group whose versions are deployed",
    "execution_role_arn": "SageMaker execution role passed to CreateModel",
    "data_capture_s3_uri": "s3:// prefix for captured requests and responses",
    "kms_key_arn": "KMS key for captured data and endpoint volumes",
    "instance_type": "endpoint instance type, e.g. ml.m5.large",
    "instance_count": "endpoint instance count",
}


def plan_outputs(plan_dir: Path, stack: str) -> dict[str, Any]:
    """Outputs of the offline plan of `stack`, or {} when it was not planned."""
    path = plan_dir / f"{stack}.json"
    if not path.exists():
        return {}
    from offline.plan.capture import StackPlan  # noqa: PLC0415 - only the CLI needs infra

    return dict(StackPlan.from_json(path.read_text()).outputs)


def settings_environment(stack: str, repo_root: Path) -> dict[str, str]:
    """Endpoint settings of `Pulumi.<stack>.yaml`, validated, as deployer variables."""
    path = repo_root / f"Pulumi.{stack}.yaml"
    if not path.exists():
        return {}
    import yaml  # noqa: PLC0415

    from infra.settings import SETTINGS_KEY, EnvironmentSettings, load_settings  # noqa: PLC0415

    config = (yaml.safe_load(path.read_text()) or {}).get("config", {})
    settings = load_settings(
        stack,
        config.get(SETTINGS_KEY),
        aws_region=config.get("aws:region"),
        allowed_account_ids=config.get("aws:allowedAccountIds"),
    )
    if not isinstance(settings, EnvironmentSettings):
        raise DeployerConfigError(f"stack {stack} has no endpoint (it is not an environment stack)")
    endpoint = settings.endpoint
    return {
        Env.INSTANCE_TYPE: endpoint.instance_type,
        Env.INSTANCE_COUNT: str(endpoint.instance_count),
        Env.ROLLOUT: RolloutConfig.from_mapping(endpoint.rollout.model_dump()).to_json(),
        Env.DATA_CAPTURE_PERCENT: str(endpoint.data_capture_sampling_percent),
    }


def resolve_environment(
    outputs: Mapping[str, Any],
    settings_env: Mapping[str, str],
    overrides: Mapping[str, str | None],
) -> dict[str, str]:
    """Deployer variables from plan outputs, stack settings and flags (flags win)."""
    recorded = outputs.get(ENVIRONMENT_OUTPUT)
    env: dict[str, str] = {}
    if isinstance(recorded, Mapping):
        env.update({str(k): str(v) for k, v in recorded.items()})
    else:
        env.update(settings_env)
        for name, output in _OUTPUT_FOR_ENV.items():
            if output in outputs:
                env[name] = str(outputs[output])
    env.update({name: value for name, value in overrides.items() if value is not None})
    if Env.ROLLBACK_ALARMS not in env and env.get(Env.ENDPOINT_NAME):
        env[Env.ROLLBACK_ALARMS] = json.dumps(
            list(naming.rollback_alarm_names(env[Env.ENDPOINT_NAME]))
        )
    from offline.plan.capture import UNKNOWN  # noqa: PLC0415

    unknown = sorted(name for name, value in env.items() if value == UNKNOWN)
    if unknown:
        raise DeployerConfigError(
            f"{', '.join(unknown)} unknown in the offline plan (computed at deploy time); "
            "pass them as flags, e.g. --data-capture-s3-uri s3://bucket/prefix"
        )
    return env


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="python -m ml.deployer.manual", description=__doc__.split("\n\n")[0]
    )
    root.add_argument("--stack", required=True, help="environment stack: dev, staging or prod")
    root.add_argument(
        "--version", type=int, help="model package version (default: latest approved)"
    )
    root.add_argument("--plan-dir", type=Path, default=Path("build/plan"), help="offline plans")
    root.add_argument("--repo-root", type=Path, default=Path(), help="where Pulumi.<stack>.yaml is")
    root.add_argument("--region", help="AWS region (default: the stack's)")
    root.add_argument("--endpoint-url", help="SageMaker API URL, e.g. a local moto server")
    for flag in _FLAG_FOR_ENV.values():
        root.add_argument(f"--{flag.replace('_', '-')}", dest=flag, help=_FLAG_HELP[flag])
    return root


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        outputs = plan_outputs(args.plan_dir, args.stack)
        recorded = isinstance(outputs.get(ENVIRONMENT_OUTPUT), Mapping)
        env = resolve_environment(
            outputs,
            {} if recorded else settings_environment(args.stack, args.repo_root),
            {name: getattr(args, flag) for name, flag in _FLAG_FOR_ENV.items()},
        )
        config = DeployerConfig.from_env(env)
    except (DeployerConfigError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    region = args.region or outputs.get("region")
    if not region:
        print("error: no region in the plan outputs; pass --region", file=sys.stderr)
        return EXIT_USAGE

    import boto3  # noqa: PLC0415 - keep `--help` fast and offline

    sagemaker = boto3.client("sagemaker", region_name=region, endpoint_url=args.endpoint_url)
    try:
        package_arn = resolve_package_arn(sagemaker, config.model_package_group_name, args.version)
        result = deploy_package(
            sagemaker, config, package_arn, allow_older=args.version is not None
        )
    except RetryableDeployError as error:
        print(f"retry later: {error}", file=sys.stderr)
        return EXIT_RETRY
    except DeployError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_OPERATOR
    print(json.dumps(result.as_dict(), indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
