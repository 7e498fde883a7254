"""A small typed builder for IAM policy documents.

Documents are rendered with sorted keys by `pulumi.Output.json_dumps`, so the
same statements always give the same JSON (no diff on an unchanged commit) and
Output values (ARNs of resources not created yet) can be used directly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pulumi

ECR_PULL_ACTIONS: tuple[str, ...] = (
    "ecr:BatchCheckLayerAvailability",
    "ecr:BatchGetImage",
    "ecr:GetDownloadUrlForLayer",
)
"""What pulling an image takes, for roles of SageMaker jobs and endpoints."""

MLFLOW_LOGGING_ACTIONS: tuple[str, ...] = (
    "sagemaker-mlflow:CreateExperiment",
    "sagemaker-mlflow:CreateRun",
    "sagemaker-mlflow:GetExperiment",
    "sagemaker-mlflow:GetExperimentByName",
    "sagemaker-mlflow:GetRun",
    "sagemaker-mlflow:LogBatch",
    "sagemaker-mlflow:LogMetric",
    "sagemaker-mlflow:LogParam",
    "sagemaker-mlflow:SearchRuns",
    "sagemaker-mlflow:SetTag",
    "sagemaker-mlflow:UpdateRun",
)
"""What a step that logs a run calls, each on the server's ARN (resource type
`mlflow-tracking-server`), named as in the Service Authorization Reference, "Actions
defined by Amazon SageMaker with MLflow". Measured with mlflow 3.17.2 against a local
`mlflow server`, the REST calls of set_experiment, start_run (new and resumed),
log_param(s), log_metric(s) with steps, set_tag(s), log_artifact/log_dict, end_run and
search_runs are exactly: experiments/get-by-name, experiments/get, experiments/create,
runs/create, runs/get, runs/update, runs/log-batch, runs/log-metric,
runs/log-parameter, runs/set-tag, runs/search. Artifacts need no MLflow action (the
client writes S3 directly). Not granted: `mlflow.<flavor>.log_model` (MLflow 3
logged-model calls), model registry writes, `LogInputs`, deletes, `AccessUI` and
`sagemaker:CreatePresignedMlflowTrackingServerUrl` (UI access is for people, not jobs)."""

Condition = Mapping[str, Mapping[str, "pulumi.Input[str] | Sequence[pulumi.Input[str]]"]]


@dataclass(frozen=True)
class Statement:
    sid: str
    actions: Sequence[str]
    resources: Sequence[pulumi.Input[str]] = ()
    effect: Literal["Allow", "Deny"] = "Allow"
    principals: Mapping[str, Sequence[pulumi.Input[str]]] = field(default_factory=dict)
    conditions: Condition = field(default_factory=dict)

    def render(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "Sid": self.sid,
            "Effect": self.effect,
            "Action": list(self.actions),
        }
        if self.resources:
            body["Resource"] = list(self.resources)
        if self.principals:
            body["Principal"] = {kind: list(ids) for kind, ids in self.principals.items()}
        if self.conditions:
            body["Condition"] = {
                operator: dict(values) for operator, values in self.conditions.items()
            }
        return body


def in_account(account: pulumi.Input[str]) -> Condition:
    """S3 ARNs carry no account: this condition pins a statement to buckets of `account`."""
    return {"StringEquals": {"aws:ResourceAccount": account}}


def policy_json(*statements: Statement) -> pulumi.Output[str]:
    """The policy document as a JSON string (an Output, since ARNs may be unknown yet)."""
    sids = [s.sid for s in statements]
    if len(set(sids)) != len(sids):
        raise ValueError(f"duplicate statement ids in policy: {sids}")
    document = {"Version": "2012-10-17", "Statement": [s.render() for s in statements]}
    return pulumi.Output.json_dumps(document, sort_keys=True)


def service_trust(service: str, account: pulumi.Input[str]) -> pulumi.Output[str]:
    """Trust policy for an AWS service principal, limited to calls made for `account`."""
    return policy_json(
        Statement(
            sid="AssumedByService",
            actions=["sts:AssumeRole"],
            principals={"Service": [service]},
            conditions={"StringEquals": {"aws:SourceAccount": account}},
        )
    )
