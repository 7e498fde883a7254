"""The deployer Lambda role's policy: this stack's group, endpoint, configs, models, queues.

Least privilege by name: model and endpoint-config names share the endpoint's
prefix (`ml.deployer.naming`), so the role can create and describe only what
the deployer itself names; it can never delete anything.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pulumi

from infra.iam import Statement, in_account
from ml.deployer import naming

if TYPE_CHECKING:
    from infra.components.model_deployer import ModelDeployerArgs


def deployer_statements(
    args: ModelDeployerArgs,
    *,
    endpoint_name: pulumi.Output[str],
    group_name: pulumi.Output[str],
    alarm_names: pulumi.Output[tuple[str, str]],
    log_group_arn: pulumi.Input[str],
    queue_arn: pulumi.Input[str],
    dead_letter_queue_arn: pulumi.Input[str],
) -> list[Statement]:
    """The deployer role's policy: this stack's group, endpoint, configs, models, queues."""
    sagemaker = f"arn:{args.partition}:sagemaker:{args.region}:{args.account}"
    cloudwatch = f"arn:{args.partition}:cloudwatch:{args.region}:{args.account}"
    # SageMaker ARNs carry resource names in lower case.
    packages = group_name.apply(lambda g: f"{sagemaker}:model-package/{g.lower()}/*")
    endpoint = endpoint_name.apply(lambda n: f"{sagemaker}:endpoint/{n.lower()}")
    configs = endpoint_name.apply(
        lambda n: f"{sagemaker}:endpoint-config/{naming.resource_pattern(n)}"
    )
    models = endpoint_name.apply(lambda n: f"{sagemaker}:model/{naming.resource_pattern(n)}")
    # Model artifacts live in the artifacts bucket, the one data capture writes to.
    artifacts = pulumi.Output.from_input(args.data_capture_s3_uri).apply(
        lambda uri: f"arn:{args.partition}:s3:::{uri.removeprefix('s3://').split('/')[0]}/*"
    )
    return [
        Statement(
            sid="ReadModelRegistry",
            actions=["sagemaker:DescribeModelPackage", "sagemaker:ListModelPackages"],
            resources=[args.model_package_group_arn, packages],
        ),
        Statement(
            sid="CreateModels",
            actions=["sagemaker:AddTags", "sagemaker:CreateModel", "sagemaker:DescribeModel"],
            resources=[models],
        ),
        Statement(
            sid="CreateEndpointConfigs",
            actions=[
                "sagemaker:AddTags",
                "sagemaker:CreateEndpointConfig",
                "sagemaker:DescribeEndpointConfig",
            ],
            resources=[configs],
        ),
        # CreateEndpoint and UpdateEndpoint authorize on the endpoint and its new config.
        Statement(
            sid="DeployEndpoint",
            actions=[
                "sagemaker:AddTags",
                "sagemaker:CreateEndpoint",
                "sagemaker:DescribeEndpoint",
                "sagemaker:UpdateEndpoint",
            ],
            resources=[endpoint, configs],
        ),
        Statement(
            sid="PassExecutionRoleToSageMaker",
            actions=["iam:PassRole"],
            resources=[args.execution_role_arn],
            conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
        ),
        Statement(
            sid="ReadRollbackAlarms",
            actions=["cloudwatch:DescribeAlarms"],
            resources=[
                alarm_names.apply(lambda names: f"{cloudwatch}:alarm:{names[0]}"),
                alarm_names.apply(lambda names: f"{cloudwatch}:alarm:{names[1]}"),
            ],
        ),
        # SageMaker creates grants on the key for endpoint volumes and captured data.
        Statement(
            sid="GrantKeyToSageMaker",
            actions=["kms:CreateGrant"],
            resources=[args.kms_key_arn],
            conditions={"Bool": {"kms:GrantIsForAWSResource": "true"}},
        ),
        Statement(sid="DescribeKey", actions=["kms:DescribeKey"], resources=[args.kms_key_arn]),
        Statement(
            sid="WriteOwnLogs",
            actions=["logs:CreateLogStream", "logs:PutLogEvents"],
            resources=[
                log_group_arn,
                pulumi.Output.concat(log_group_arn, ":log-stream:*"),
            ],
        ),
        Statement(
            sid="ConsumeApprovals",
            actions=[
                "sqs:ChangeMessageVisibility",
                "sqs:DeleteMessage",
                "sqs:GetQueueAttributes",
                "sqs:ReceiveMessage",
            ],
            resources=[queue_arn],
        ),
        Statement(
            sid="ApprovalsNeedingAnOperatorToDeadLetterQueue",
            actions=["sqs:SendMessage"],
            resources=[dead_letter_queue_arn],
        ),
        # The queues are encrypted with the stack key: receiving decrypts, sending encrypts.
        Statement(
            sid="UseKeyForQueues",
            actions=["kms:Decrypt", "kms:GenerateDataKey"],
            resources=[args.kms_key_arn],
        ),
        # HeadObject before CreateModel: the package's artifact must exist.
        Statement(
            sid="CheckModelArtifacts",
            actions=["s3:GetObject"],
            resources=[artifacts],
            conditions=in_account(args.account),
        ),
    ]
