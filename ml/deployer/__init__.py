"""Auto-deploy of approved model packages: Lambda handler, manual command, local runs."""

from ml.deployer.config import DeployerConfig, DeployerConfigError, Env, RolloutConfig
from ml.deployer.deploy import DeployResult, deploy_package
from ml.deployer.errors import (
    DeployError,
    EndpointBusyError,
    RetryableDeployError,
    disposition,
    is_retryable,
)
from ml.deployer.registry import resolve_package_arn

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
    "disposition",
    "is_retryable",
    "resolve_package_arn",
]
