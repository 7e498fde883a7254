"""Environment stacks: protected buckets, least-privilege role, registry, pinned ops images."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pulumi
import pytest

from infra.context import REPO_ROOT
from infra.images import ImagesNotBuiltError, resolve_image
from infra.stack_files import read_stack_config
from offline.plan.capture import StackPlan
from offline.plan.harness import plan_stack, plan_stacks
from offline.plan.mocks import digest_for
from tests.ml.guarded import HASH_PROBE
from tests.plan_helpers import (
    GUARD_REPORT,
    PLANNED_STACKS,
    TEST_TAG,
    as_list,
    policy_document,
    statements,
)

ENVIRONMENTS = {"dev": "222222222222", "staging": "333333333333", "prod": "444444444444"}
PINNED = re.compile(
    r"^111111111111\.dkr\.ecr\.eu-west-1\.amazonaws\.com/promote-code/(training|deployer)"
    r"@sha256:[0-9a-f]{64}$"
)


@pytest.mark.parametrize("stack", ENVIRONMENTS)
def test_every_bucket_is_private_versioned_kms_encrypted_and_tls_only(
    stack_plans: dict[str, StackPlan], stack: str
) -> None:
    plan = stack_plans[stack]
    # The access-log bucket is SSE-S3 by AWS's rule: tests/security/test_access_logs.py.
    buckets = [
        r.inputs["bucket"]
        for r in plan.of_type("aws:s3/bucket:Bucket")
        if "-access-logs-" not in r.inputs["bucket"]
    ]
    assert sorted(buckets) == [
        f"promote-code-{stack}-artifacts-{ENVIRONMENTS[stack]}",
        f"promote-code-{stack}-data-{ENVIRONMENTS[stack]}",
    ]

    def for_bucket(type_token: str, bucket: str) -> dict[str, object]:
        (match,) = [r for r in plan.of_type(type_token) if r.inputs["bucket"] == bucket]
        return match.inputs

    for bucket in buckets:
        block = for_bucket("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", bucket)
        for flag in (
            "blockPublicAcls",
            "blockPublicPolicy",
            "ignorePublicAcls",
            "restrictPublicBuckets",
        ):
            assert block[flag] is True
        versioning = for_bucket("aws:s3/bucketVersioning:BucketVersioning", bucket)
        assert versioning["versioningConfiguration"] == {"status": "Enabled"}
        sse = for_bucket(
            "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
            bucket,
        )
        default = sse["rules"][0]["applyServerSideEncryptionByDefault"]  # type: ignore[index]
        assert default["sseAlgorithm"] == "aws:kms"
        # The stack's data key, made by the identity bootstrap and looked up by its alias.
        assert default["kmsMasterKeyId"] == plan.outputs["kms_key_arn"]
        assert default["kmsMasterKeyId"].startswith(
            f"arn:aws:kms:eu-west-1:{ENVIRONMENTS[stack]}:key/"
        )
        (policy,) = [
            r
            for r in plan.of_type("aws:s3/bucketPolicy:BucketPolicy")
            if r.inputs["bucket"] == bucket
        ]
        (deny,) = statements(policy_document(policy))
        assert deny["Effect"] == "Deny"
        assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        assert deny["Resource"] == [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]


@pytest.mark.parametrize("stack", ENVIRONMENTS)
def test_execution_role_is_least_privilege(stack_plans: dict[str, StackPlan], stack: str) -> None:
    plan = stack_plans[stack]
    account = ENVIRONMENTS[stack]
    role = plan.one("aws:iam/role:Role", f"promote-code-{stack}-execution-role")
    (trust,) = statements(policy_document(role, "assumeRolePolicy"))
    assert trust["Principal"] == {"Service": ["sagemaker.amazonaws.com"]}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": account}}
    policy = plan.one("aws:iam/rolePolicy:RolePolicy", f"promote-code-{stack}-execution-policy")
    by_sid = {s["Sid"]: s for s in statements(policy_document(policy))}
    s3_resources = as_list(by_sid["StackBuckets"]["Resource"]) + as_list(
        by_sid["StackObjects"]["Resource"]
    )
    assert all(
        r.startswith(
            (
                f"arn:aws:s3:::promote-code-{stack}-data-",
                f"arn:aws:s3:::promote-code-{stack}-artifacts-",
            )
        )
        for r in s3_resources
    )
    assert by_sid["PullOpsImages"]["Resource"] == [
        "arn:aws:ecr:eu-west-1:111111111111:repository/promote-code/training"
    ]
    assert by_sid["PassOnlyItselfToSageMaker"] == {
        "Sid": "PassOnlyItselfToSageMaker",
        "Effect": "Allow",
        "Action": ["iam:PassRole"],
        "Resource": [f"arn:aws:iam::{account}:role/promote-code-{stack}-sagemaker-execution"],
        "Condition": {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
    }
    for statement in by_sid.values():
        for action in as_list(statement["Action"]):
            assert not action.endswith(":*"), (statement["Sid"], action)


@pytest.mark.parametrize("stack", ENVIRONMENTS)
def test_images_are_pinned_by_digest_in_the_ops_registry(
    stack_plans: dict[str, StackPlan], stack: str
) -> None:
    outputs = stack_plans[stack].outputs
    for image in ("training", "deployer"):
        uri = outputs[f"{image}_image_uri"]
        assert PINNED.match(uri)
        assert uri.endswith(digest_for(f"promote-code/{image}", TEST_TAG))
    assert outputs["deployed_commit"] == TEST_TAG
    assert outputs["model_package_group_name"] == f"promote-code-{stack}-models"


def test_a_commit_never_built_in_ops_stops_with_instructions() -> None:
    with pytest.raises(ImagesNotBuiltError) as caught:
        plan_stack("staging", image_tag="deadbeef", unbuilt_tags=frozenset({"deadbeef"}))
    message = str(caught.value)
    assert "promote-code/training:deadbeef was not found in the ops registry" in message
    assert "PROMOTE_IMAGE_TAG=deadbeef pulumi up --stack ops" in message


def test_optional_parts_follow_stack_settings(stack_plans: dict[str, StackPlan]) -> None:
    dev, staging, prod = (stack_plans[s] for s in ("dev", "staging", "prod"))
    assert dev.of_type("aws:sagemaker/domain:Domain")[0].inputs["appNetworkAccessType"] == "VpcOnly"
    assert len(dev.of_type("aws:ec2/subnet:Subnet")) == 2
    assert not dev.of_type("aws:ec2/natGateway:NatGateway")
    endpoints = {e.inputs["serviceName"] for e in dev.of_type("aws:ec2/vpcEndpoint:VpcEndpoint")}
    assert {"com.amazonaws.eu-west-1.s3", "com.amazonaws.eu-west-1.kms"} <= endpoints
    assert len(endpoints) == 9
    assert not staging.of_type("aws:ec2/vpc:Vpc")
    quotas = prod.of_type("aws:servicequotas/serviceQuota:ServiceQuota")
    assert sorted(q.inputs["value"] for q in quotas) == [1, 2]
    assert all(q.inputs["serviceCode"] == "sagemaker" for q in quotas)
    assert not staging.of_type("aws:servicequotas/serviceQuota:ServiceQuota")


def test_every_taggable_resource_is_tagged(stack_plans: dict[str, StackPlan]) -> None:
    for stack, plan in stack_plans.items():
        for resource in plan.resources:
            if "tags" in resource.inputs:
                assert resource.inputs["tags"]["project"] == "promote-code"
                assert resource.inputs["tags"]["environment"] == stack


@pytest.mark.parametrize("stack", ENVIRONMENTS)
def test_every_role_carries_the_workload_boundary(
    stack_plans: dict[str, StackPlan], stack: str
) -> None:
    roles = stack_plans[stack].of_type("aws:iam/role:Role")
    assert len(roles) >= 2
    expected = f"arn:aws:iam::{ENVIRONMENTS[stack]}:policy/promote-code-{stack}-workload-boundary"
    for role in roles:
        assert role.inputs["permissionsBoundary"] == expected, role.name


def test_a_failed_image_lookup_that_is_not_not_found_is_not_blamed_on_ops(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def denied(**_kwargs: object) -> None:
        raise RuntimeError("invoke of aws:ecr/getImage:getImage failed: AccessDeniedException")

    monkeypatch.setattr("infra.images.aws.ecr.get_image", denied)
    with pytest.raises(pulumi.RunError) as caught:
        resolve_image("111111111111", "eu-west-1", "promote-code/training", "abc")
    assert not isinstance(caught.value, ImagesNotBuiltError)
    assert "AccessDeniedException" in str(caught.value)
    assert "ecr:DescribeImages" in str(caught.value)


def test_a_hostile_process_and_this_one_plan_byte_identical_stacks(
    stack_plans: dict[str, StackPlan], planned_dir: Path
) -> None:
    """Byte-identical across processes and across runs in one process: what `pulumi up` of
    an unchanged commit relies on.

    The session's plans (tests/conftest.py `hostile_plan`) were made by `promote plan
    --json` in a child that is hostile and guarded: another hash seed, no credentials, a
    stale profile, another default region, and every socket, DNS lookup and botocore
    request refused from interpreter start. So the sagemaker SDK's import-time side effects
    and the pipeline definitions (inside each environment plan) are proven offline, and this
    process, with its own hash seed, plans every stack again, then staging and prod a
    second time.
    """
    guard = json.loads((planned_dir / GUARD_REPORT).read_text())
    assert guard["attempts"] == [], "network attempts while importing/planning"
    assert guard["hash"] != hash(HASH_PROBE), "the child had this process's hash seed"
    # `promote plan` never loads what only the local run and the monitor use (pandas and
    # numpy come with the sagemaker SDK).
    assert {"joblib", "sklearn", "mlflow", "moto"} & set(guard["packages"]) == set()
    here = plan_stacks(PLANNED_STACKS, image_tag=TEST_TAG)
    for stack, plan in stack_plans.items():
        assert here[stack].to_json() == plan.to_json(), stack
    again = plan_stacks(("staging", "prod"), image_tag=TEST_TAG)
    for stack, plan in again.items():
        assert plan.to_json() == here[stack].to_json(), stack


@pytest.mark.parametrize("stack", ENVIRONMENTS)
def test_each_environment_tracks_its_runs_in_its_own_mlflow(
    stack_plans: dict[str, StackPlan], stack: str
) -> None:
    plan = stack_plans[stack]
    account = ENVIRONMENTS[stack]
    arn = (
        f"arn:aws:sagemaker:eu-west-1:{account}:mlflow-tracking-server/promote-code-{stack}-mlflow"
    )
    (server,) = plan.of_type("aws:sagemaker/mlflowTrackingServer:MlflowTrackingServer")
    assert server.inputs["trackingServerName"] == f"promote-code-{stack}-mlflow"
    assert server.inputs["artifactStoreUri"] == (
        f"s3://promote-code-{stack}-artifacts-{account}/mlflow/"
    )
    assert plan.outputs["mlflow_tracking_arn"] == arn
    # The pipeline names this server and the stack's experiment, so its runs land here.
    (pipeline,) = plan.of_type("aws:sagemaker/pipeline:Pipeline")
    definition = json.loads(pipeline.inputs["pipelineDefinition"])
    assert definition["MlflowConfig"] == {
        "MlflowResourceArn": arn,
        "MlflowExperimentName": f"promote-code-{stack}",
    }
    for step in definition["Steps"]:
        if step["Name"] in ("train-model", "evaluate-model"):
            environment = step["Arguments"]["Environment"]
            assert environment["MLFLOW_TRACKING_URI"] == arn
            assert environment["PROMOTE_COMMIT"] == TEST_TAG
    # The execution role may log runs on this server only, with named actions.
    policy = plan.one("aws:iam/rolePolicy:RolePolicy", f"promote-code-{stack}-execution-policy")
    by_sid = {s["Sid"]: s for s in statements(policy_document(policy))}
    mlflow = by_sid["OwnMlflowTrackingServer"]
    assert as_list(mlflow["Resource"]) == [arn]
    assert all(a.startswith("sagemaker-mlflow:") and "*" not in a for a in mlflow["Action"])


def test_tracking_off_means_no_server_and_an_untracked_definition() -> None:
    config = read_stack_config("dev")
    settings = dict(config["promote:settings"])
    settings["tracking"] = {"enabled": False}
    plan = plan_stack("dev", image_tag=TEST_TAG, config={**config, "promote:settings": settings})
    assert not plan.of_type("aws:sagemaker/mlflowTrackingServer:MlflowTrackingServer")
    assert "mlflow_tracking_arn" not in plan.outputs
    (pipeline,) = plan.of_type("aws:sagemaker/pipeline:Pipeline")
    definition = json.loads(pipeline.inputs["pipelineDefinition"])
    assert "MlflowConfig" not in definition
    train = next(s for s in definition["Steps"] if s["Name"] == "train-model")
    assert "MLFLOW_TRACKING_URI" not in train["Arguments"]["Environment"]
    policy = plan.one("aws:iam/rolePolicy:RolePolicy", "promote-code-dev-execution-policy")
    assert "OwnMlflowTrackingServer" not in {s["Sid"] for s in statements(policy_document(policy))}


def test_drift_monitoring_where_settings_enable_it_and_retraining_on_drift_in_prod_only(
    stack_plans: dict[str, StackPlan],
) -> None:
    def monitor_jobs(plan: StackPlan) -> list[dict[str, object]]:
        return [
            json.loads(s.inputs["target"]["input"])
            for s in plan.of_type("aws:scheduler/schedule:Schedule")
            if s.inputs["target"]["arn"].endswith(":createProcessingJob")
        ]

    def drift_alarms(plan: StackPlan) -> list[object]:
        return [
            a
            for a in plan.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
            if a.inputs.get("metricName") == "DriftScore"
        ]

    assert not monitor_jobs(stack_plans["dev"])
    assert not drift_alarms(stack_plans["dev"])
    for stack in ("staging", "prod"):
        plan = stack_plans[stack]
        (job,) = monitor_jobs(plan)
        image = job["AppSpecification"]["ImageUri"]  # type: ignore[index]
        assert image == plan.outputs["training_image_uri"]
        assert PINNED.match(image)
        (alarm,) = drift_alarms(plan)
        assert alarm.inputs["namespace"] == f"promote-code/{stack}/drift"  # type: ignore[attr-defined]
        assert alarm.inputs["threshold"] == 0.35  # type: ignore[attr-defined]
        assert plan.outputs["drift_alarm_name"] == alarm.inputs["name"]  # type: ignore[attr-defined]
    assert not stack_plans["staging"].of_type("aws:sfn/stateMachine:StateMachine")
    (machine,) = stack_plans["prod"].of_type("aws:sfn/stateMachine:StateMachine")
    (rule,) = [
        r
        for r in stack_plans["prod"].of_type("aws:cloudwatch/eventRule:EventRule")
        if "drift" in r.name
    ]
    pattern = json.loads(rule.inputs["eventPattern"])
    assert pattern["detail-type"] == ["CloudWatch Alarm State Change"]
    assert machine.inputs["name"].startswith("promote-code-prod-")


def test_the_guard_records_what_tries_to_leave_the_process(tmp_path: Path) -> None:
    # What makes the guarded re-plan above mean something: a connect is refused and recorded.
    (tmp_path / "leaky.py").write_text(
        "import socket\ntry:\n    socket.create_connection(('192.0.2.1', 443), timeout=1)\n"
        "except OSError:\n    pass\n"
    )
    report = tmp_path / "guard.json"
    environment = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{REPO_ROOT}"}
    command = [sys.executable, "-m", "tests.ml.guarded", str(report), "leaky"]
    subprocess.run(command, check=True, env=environment, cwd=REPO_ROOT, timeout=60)
    assert json.loads(report.read_text())["attempts"]
