"""The SageMaker requests of one deployment, built from the settings alone (no AWS calls).

Pure functions: the names they produce are deterministic (`ml.deployer.naming`),
so a retried or replayed approval builds exactly the same requests.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ml.deployer import naming
from ml.deployer.config import DeployerConfig, RolloutConfig

# Instance families with local NVMe storage reject an endpoint-config KmsKeyId
# (their volumes are hardware-encrypted); data capture is still KMS-encrypted.
# A heuristic over today's families: "d"/"dn" variants and the large GPU/Trainium ones.
_LOCAL_STORAGE_FAMILY = re.compile(r"^(?:[a-z]+\d+[a-z]*dn?|g5|g6|g6e|p4de|p5[a-z]*|trn\d[a-z]*)$")


@dataclass(frozen=True)
class Plan:
    """What the endpoint should run for one package under the current settings."""

    version: int
    model_name: str
    model_request: dict[str, Any]
    endpoint_config_name: str
    endpoint_config_request: dict[str, Any]


def has_local_storage(instance_type: str) -> bool:
    family = instance_type.split(".")[1] if instance_type.count(".") == 2 else ""
    return bool(_LOCAL_STORAGE_FAMILY.match(family))


def traffic_routing(rollout: RolloutConfig, instance_count: int) -> dict[str, Any]:
    """SageMaker TrafficRoutingConfiguration for the configured rollout.

    Canary and linear steps must be at most half of the fleet, which one instance
    cannot satisfy: a single-instance endpoint shifts all at once (still
    blue/green, still baked against the rollback alarms).
    """
    wait = rollout.wait_seconds
    if rollout.mode == "all_at_once" or instance_count < 2:
        return {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": wait}
    if rollout.mode == "canary":
        return {
            "Type": "CANARY",
            "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": rollout.canary_percent},
            "WaitIntervalInSeconds": wait,
        }
    return {
        "Type": "LINEAR",
        "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": rollout.linear_step_percent},
        "WaitIntervalInSeconds": wait,
    }


def deployment_config(config: DeployerConfig) -> dict[str, Any]:
    """The DeploymentConfig of UpdateEndpoint: blue/green with auto-rollback on the alarms."""
    rollout = config.rollout
    document: dict[str, Any] = {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": traffic_routing(rollout, config.instance_count),
            "TerminationWaitInSeconds": rollout.termination_wait_seconds,
            "MaximumExecutionTimeoutInSeconds": rollout.maximum_execution_timeout_seconds,
        }
    }
    if config.rollback_alarm_names:
        document["AutoRollbackConfiguration"] = {
            "Alarms": [{"AlarmName": name} for name in config.rollback_alarm_names]
        }
    return document


def data_capture_config(config: DeployerConfig) -> dict[str, Any]:
    capture: dict[str, Any] = {
        "EnableCapture": True,
        "InitialSamplingPercentage": config.data_capture_sampling_percent,
        "DestinationS3Uri": config.data_capture_s3_uri,
        "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
        # Declared types are captured as text, so monitoring jobs can read them.
        "CaptureContentTypeHeader": {
            "CsvContentTypes": ["text/csv"],
            "JsonContentTypes": ["application/json"],
        },
    }
    if config.kms_key_arn:
        capture["KmsKeyId"] = config.kms_key_arn
    return capture


def plan_for(config: DeployerConfig, package_arn: str, version: int) -> Plan:
    model_request: dict[str, Any] = {
        "PrimaryContainer": {"ModelPackageName": package_arn},
        "ExecutionRoleArn": config.execution_role_arn,
        # The inference container needs no network (Security Hub SageMaker.5).
        "EnableNetworkIsolation": True,
    }
    model_name = naming.model_name(config.endpoint_name, version, model_request)
    variant = {
        "VariantName": config.variant_name,
        "ModelName": model_name,
        "InitialInstanceCount": config.instance_count,
        "InstanceType": config.instance_type,
        "InitialVariantWeight": 1.0,
    }
    config_request: dict[str, Any] = {
        "ProductionVariants": [variant],
        "DataCaptureConfig": data_capture_config(config),
    }
    if config.kms_key_arn and not has_local_storage(config.instance_type):
        config_request["KmsKeyId"] = config.kms_key_arn
    config_name = naming.endpoint_config_name(config.endpoint_name, version, config_request)
    return Plan(version, model_name, model_request, config_name, config_request)
