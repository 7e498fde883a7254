"""The SageMaker execution role of one environment, least privilege.

S3 only on this stack's buckets, ECR pull only on the ops repositories, logs,
the stack key, the SageMaker calls its pipeline jobs make on this stack's
resources, and PassRole only on itself, only to SageMaker.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.components.experiment_tracking import tracking_use_statements
from infra.components.service_role import service_role
from infra.iam import ECR_PULL_ACTIONS, Statement, in_account


@dataclass(frozen=True)
class ExecutionRoleArgs:
    role_name: str
    account: str
    region: str
    bucket_arns: Sequence[pulumi.Input[str]]
    kms_key_arn: pulumi.Input[str]
    ops_repository_arns: Sequence[str]
    model_package_group_name: str
    pipeline_name: str
    tags: Mapping[str, str]
    permissions_boundary: str | None = None
    mlflow_tracking_arn: str | None = None
    """The environment's MLflow tracking server the jobs log to (None: no tracking)."""


def execution_statements(args: ExecutionRoleArgs) -> list[Statement]:
    sagemaker = f"arn:aws:sagemaker:{args.region}:{args.account}"
    role_arn = f"arn:aws:iam::{args.account}:role/{args.role_name}"
    objects = [pulumi.Output.concat(arn, "/*") for arn in args.bucket_arns]
    return [
        Statement(
            sid="StackBuckets",
            actions=["s3:GetBucketLocation", "s3:ListBucket"],
            resources=list(args.bucket_arns),
            conditions=in_account(args.account),
        ),
        Statement(
            sid="StackObjects",
            actions=["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"],
            resources=objects,
            conditions=in_account(args.account),
        ),
        Statement(
            sid="StackKey",
            actions=["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey*"],
            resources=[args.kms_key_arn],
        ),
        Statement(
            sid="PullOpsImages",
            actions=ECR_PULL_ACTIONS,
            resources=list(args.ops_repository_arns),
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
            resources=[f"arn:aws:logs:{args.region}:{args.account}:log-group:/aws/sagemaker/*"],
        ),
        Statement(
            sid="JobMetrics",
            actions=["cloudwatch:PutMetricData"],
            resources=["*"],
            conditions={"StringLike": {"cloudwatch:namespace": "/aws/sagemaker/*"}},
        ),
        Statement(
            sid="PipelineJobs",
            actions=[
                "sagemaker:AddTags",
                "sagemaker:CreateProcessingJob",
                "sagemaker:CreateTrainingJob",
                "sagemaker:DescribeProcessingJob",
                "sagemaker:DescribeTrainingJob",
                "sagemaker:StopProcessingJob",
                "sagemaker:StopTrainingJob",
            ],
            resources=[f"{sagemaker}:processing-job/*", f"{sagemaker}:training-job/*"],
        ),
        Statement(
            sid="ModelRegistry",
            actions=[
                "sagemaker:AddTags",
                "sagemaker:CreateModelPackage",
                "sagemaker:DescribeModelPackage",
                "sagemaker:DescribeModelPackageGroup",
                "sagemaker:ListModelPackages",
                "sagemaker:UpdateModelPackage",
            ],
            resources=[
                f"{sagemaker}:model-package-group/{args.model_package_group_name}",
                f"{sagemaker}:model-package/{args.model_package_group_name}/*",
            ],
        ),
        Statement(
            sid="OwnPipeline",
            actions=["sagemaker:DescribePipeline", "sagemaker:StartPipelineExecution"],
            resources=[f"{sagemaker}:pipeline/{args.pipeline_name}"],
        ),
        Statement(
            sid="PassOnlyItselfToSageMaker",
            actions=["iam:PassRole"],
            resources=[role_arn],
            conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
        ),
        # The train and evaluate jobs log their runs to this environment's MLflow, only.
        *(tracking_use_statements(args.mlflow_tracking_arn) if args.mlflow_tracking_arn else []),
    ]


class SageMakerExecutionRole(pulumi.ComponentResource):
    role: aws.iam.Role

    def __init__(
        self, name: str, args: ExecutionRoleArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("promote:sagemaker:ExecutionRole", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.role = service_role(
            name,
            service="sagemaker.amazonaws.com",
            account=args.account,
            statements=execution_statements(args),
            tags=args.tags,
            opts=child,
            role_name=args.role_name,
            permissions_boundary=args.permissions_boundary,
        ).role
        self.register_outputs({"arn": self.role.arn})
