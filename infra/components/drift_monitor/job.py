"""The monitor job: the CreateProcessingJob request a schedule sends, and its two roles.

An EventBridge Scheduler schedule calls SageMaker `CreateProcessingJob` directly (universal
target), running the ops training image pinned by digest in its `monitor` mode. The job
reads the endpoint's data capture since its last run, compares it with the served
package's baseline, writes a report under this stack's report prefix and publishes
`DriftScore` and `RequestsAnalysed` to CloudWatch (dimension `EndpointName`) in this
stack's namespace; with too little traffic it publishes no score ("insufficient data").

Why not a SageMaker Model Monitor `MonitoringSchedule`: the AWS guide marks Model Monitor
as no longer open to new customers, and this project deploys into fresh accounts; a
monitoring schedule runs the very same processing job underneath ("Model Monitor
ultimately kicks off processing jobs"), so creating it ourselves loses nothing a custom
container would use, and keeps the container contract in our hands. The job name carries
`<aws.scheduler.execution-id>` (unique per invocation) and the run's end of window is
`<aws.scheduler.scheduled-time>`, both filled in by Scheduler. The request is built from
names known at preview time, so the policy pack's image rule can read the image in prod's
first preview.

IAM: the job role reads only this endpoint's capture prefix and the pipeline's output
prefix (baselines), reads and writes only this endpoint's report prefix, uses the stack
key, describes only this endpoint, its configs, models and the stack's model packages, and
may PutMetricData only in its namespace. The scheduler role may only create
`<prefix>-drift-*` processing jobs and pass the job role to SageMaker.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.components.drift_monitor.args import (
    EXECUTION_ID,
    OUTPUT_LOCAL_PATH,
    SCHEDULED_TIME,
    DriftMonitorArgs,
    container_environment,
)
from infra.components.service_role import service_role
from infra.iam import ECR_PULL_ACTIONS, Statement, in_account
from ml.deployer import naming

CREATE_PROCESSING_JOB_TARGET = "arn:aws:scheduler:::aws-sdk:sagemaker:createProcessingJob"
PROCESSING_LOG_GROUP = "/aws/sagemaker/ProcessingJobs"


def processing_job_request(args: DriftMonitorArgs) -> dict[str, Any]:
    """The CreateProcessingJob request Scheduler sends on every run (botocore's shape)."""
    app: dict[str, Any] = {"ImageUri": args.image_uri}
    if args.container_entrypoint:
        app["ContainerEntrypoint"] = list(args.container_entrypoint)
    if args.container_arguments:
        app["ContainerArguments"] = list(args.container_arguments)
    return {
        "ProcessingJobName": f"{args.job_name_prefix}{EXECUTION_ID}",
        "RoleArn": args.job_role_arn,
        "AppSpecification": app,
        "Environment": container_environment(args),
        "ProcessingResources": {
            "ClusterConfig": {
                "InstanceCount": 1,
                "InstanceType": args.instance_type,
                "VolumeSizeInGB": args.volume_size_gb,
                "VolumeKmsKeyId": args.kms_key_arn,
            }
        },
        "ProcessingOutputConfig": {
            "Outputs": [
                {
                    "OutputName": "report",
                    "S3Output": {
                        # One folder per run, named by its scheduled time (sortable).
                        "S3Uri": f"{args.s3_uri(args.report_key_prefix)}{SCHEDULED_TIME}",
                        "LocalPath": OUTPUT_LOCAL_PATH,
                        "S3UploadMode": "EndOfJob",
                    },
                }
            ],
            "KmsKeyId": args.kms_key_arn,
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": args.max_runtime_seconds},
        # The job reads S3 and calls SageMaker and CloudWatch itself: no network isolation.
        "NetworkConfig": {
            "EnableInterContainerTrafficEncryption": True,
            "EnableNetworkIsolation": False,
        },
        "Tags": [{"Key": key, "Value": value} for key, value in sorted(args.tags.items())],
    }


def job_statements(args: DriftMonitorArgs) -> list[Statement]:
    """The monitor job's role: its capture, baselines, reports, key, image, logs, metrics."""
    s3 = f"arn:{args.partition}:s3:::{args.artifacts_bucket}"
    sagemaker = f"arn:{args.partition}:sagemaker:{args.region}:{args.account}"
    logs = f"arn:{args.partition}:logs:{args.region}:{args.account}:log-group:"
    pattern = naming.resource_pattern(args.endpoint_name)
    group = args.model_package_group_name
    return [
        Statement(
            sid="ListCaptureAndReports",
            actions=["s3:ListBucket"],
            resources=[s3],
            conditions={
                **in_account(args.account),
                "StringLike": {
                    "s3:prefix": [f"{args.capture_key_prefix}*", f"{args.report_key_prefix}*"]
                },
            },
        ),
        Statement(
            sid="ReadCaptureAndBaselines",
            actions=["s3:GetObject"],
            resources=[
                f"{s3}/{args.capture_key_prefix}*",
                *(f"{s3}/{prefix}*" for prefix in args.baseline_key_prefixes),
            ],
            conditions=in_account(args.account),
        ),
        Statement(
            sid="ReadWriteReports",
            actions=["s3:AbortMultipartUpload", "s3:GetObject", "s3:PutObject"],
            resources=[f"{s3}/{args.report_key_prefix}*"],
            conditions=in_account(args.account),
        ),
        Statement(
            sid="StackKey",
            actions=["kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKey"],
            resources=[args.kms_key_arn],
        ),
        # SageMaker encrypts the job's volume with the stack key through a grant.
        Statement(
            sid="GrantKeyToSageMaker",
            actions=["kms:CreateGrant"],
            resources=[args.kms_key_arn],
            conditions={"Bool": {"kms:GrantIsForAWSResource": "true"}},
        ),
        Statement(
            sid="ServedModel",
            actions=[
                "sagemaker:DescribeEndpoint",
                "sagemaker:DescribeEndpointConfig",
                "sagemaker:DescribeModel",
            ],
            resources=[
                f"{sagemaker}:endpoint/{args.endpoint_name.lower()}",
                f"{sagemaker}:endpoint-config/{pattern}",
                f"{sagemaker}:model/{pattern}",
            ],
        ),
        Statement(
            sid="ServedPackageBaseline",
            actions=["sagemaker:DescribeModelPackage"],
            resources=[
                f"{sagemaker}:model-package-group/{group.lower()}",
                f"{sagemaker}:model-package/{group.lower()}/*",
            ],
        ),
        Statement(
            sid="PullTrainingImage", actions=ECR_PULL_ACTIONS, resources=[args.ops_repository_arn]
        ),
        # GetAuthorizationToken has no resource-level form.
        Statement(sid="EcrLogin", actions=["ecr:GetAuthorizationToken"], resources=["*"]),
        Statement(
            sid="JobLogs",
            actions=[
                "logs:CreateLogGroup",
                "logs:CreateLogStream",
                "logs:DescribeLogStreams",
                "logs:PutLogEvents",
            ],
            resources=[
                f"{logs}{PROCESSING_LOG_GROUP}",
                f"{logs}{PROCESSING_LOG_GROUP}:log-stream:{args.job_name_prefix}*",
            ],
        ),
        # PutMetricData has no resource-level form; the namespace condition scopes it.
        Statement(
            sid="DriftMetricsOnly",
            actions=["cloudwatch:PutMetricData"],
            resources=["*"],
            conditions={"StringEquals": {"cloudwatch:namespace": args.metric_namespace}},
        ),
    ]


def scheduler_statements(args: DriftMonitorArgs) -> list[Statement]:
    sagemaker = f"arn:{args.partition}:sagemaker:{args.region}:{args.account}"
    return [
        Statement(
            sid="CreateDriftJobsOnly",
            actions=["sagemaker:AddTags", "sagemaker:CreateProcessingJob"],
            resources=[f"{sagemaker}:processing-job/{args.job_name_prefix.lower()}*"],
        ),
        Statement(
            sid="PassJobRoleToSageMaker",
            actions=["iam:PassRole"],
            resources=[args.job_role_arn],
            conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
        ),
    ]


@dataclass(frozen=True)
class MonitorJob:
    job_role: aws.iam.Role
    schedule: aws.scheduler.Schedule


def monitor_job(
    name: str, args: DriftMonitorArgs, tags: Mapping[str, str], parent: pulumi.Resource
) -> MonitorJob:
    """The job role, the scheduler role and the schedule that starts the job."""
    child = pulumi.ResourceOptions(parent=parent)
    job = service_role(
        f"{name}-job",
        service="sagemaker.amazonaws.com",
        account=args.account,
        statements=job_statements(args),
        tags=tags,
        opts=child,
        role_name=args.job_role_name,
        description=f"Drift monitor job of {args.endpoint_name}",
        permissions_boundary=args.permissions_boundary,
    )
    scheduler = service_role(
        f"{name}-scheduler",
        service="scheduler.amazonaws.com",
        account=args.account,
        statements=scheduler_statements(args),
        tags=tags,
        opts=child,
        role_name=f"{args.name_prefix}-drift-scheduler",
        description=f"Starts the drift monitor job of {args.endpoint_name}",
        permissions_boundary=args.permissions_boundary,
    )
    schedule = aws.scheduler.Schedule(
        f"{name}-schedule",
        name=f"{args.name_prefix}-drift-monitor",
        description=f"Drift monitor of {args.endpoint_name}",
        schedule_expression=args.schedule_expression,
        schedule_expression_timezone=args.timezone,
        flexible_time_window={"mode": "OFF"},
        state="ENABLED",
        target={
            "arn": CREATE_PROCESSING_JOB_TARGET,
            "role_arn": scheduler.role.arn,
            "input": json.dumps(processing_job_request(args), sort_keys=True),
            "retry_policy": {"maximum_retry_attempts": 2},
        },
        # The job role must exist (and be allowed to run) before the first run passes it.
        opts=pulumi.ResourceOptions(
            parent=parent, depends_on=[job.role, job.policy, scheduler.policy]
        ),
    )
    return MonitorJob(job.role, schedule)
