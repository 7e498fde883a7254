"""Auto-deploy of approved model packages: Lambda handler, manual command, local runs."""

from ml.deployer.config import DeployerConfig, DeployerConfigError, Env, RolloutConfig
from ml.deployer.deploy import (
    DeployError,
    DeployResult,
    EndpointBusyError,
    RetryableDeployError,
    deploy_package,
    resolve_package_arn,
)

__all__ = [
    "DeployError",
    "DeployResult",
    "DeployerConfig",
    "DeployerConfigError",
    "EndpointBusyError",
    "Env",
    "RetryableDeployError",
    "RolloutConfig",
    "deploy_package",
    "resolve_package_arn",
]
