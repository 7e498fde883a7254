"""ml.verify: the staging checks, against botocore's Stubber (exact API calls) and fakes."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from ml.verify import cli, deployment, smoke
from ml.verify.checks import verify
from ml.verify.inputs import Budget, CheckFailedError, Target

COMMIT = "0123456789abcdef0123456789abcdef01234567"
REGION = "eu-west-1"
EXECUTION = f"arn:aws:sagemaker:{REGION}:333333333333:pipeline/p/execution/abc123"
PACKAGE = f"arn:aws:sagemaker:{REGION}:333333333333:model-package/promote-code-staging-models/4"
IMAGE = f"111111111111.dkr.ecr.{REGION}.amazonaws.com/promote-code/training@sha256:" + "a" * 64
FAST = Budget(pipeline_seconds=5, endpoint_seconds=5, poll_seconds=0, smoke_requests=3)
TARGET = Target(
    "staging", COMMIT, "promote-code-staging-training", "promote-code-staging-endpoint", IMAGE
)


@pytest.fixture
def sm() -> Any:
    return boto3.client(
        "sagemaker", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x"
    )


def stub_pipeline(stub: Stubber, *, final: str = "Succeeded", approval: str = "Approved") -> None:
    stub.add_response(
        "start_pipeline_execution",
        {"PipelineExecutionArn": EXECUTION},
        {
            "PipelineName": TARGET.pipeline,
            "PipelineExecutionDisplayName": f"verify-{COMMIT[:12]}",
            "PipelineExecutionDescription": f"staging verification of commit {COMMIT}",
        },
    )
    stub.add_response(
        "describe_pipeline_execution",
        {"PipelineExecutionStatus": "Executing"},
        {"PipelineExecutionArn": EXECUTION},
    )
    stub.add_response(
        "describe_pipeline_execution",
        {"PipelineExecutionStatus": final, "FailureReason": "step train-model failed"},
        {"PipelineExecutionArn": EXECUTION},
    )
    if final != "Succeeded":
        return
    stub.add_response(
        "list_pipeline_execution_steps",
        {
            "PipelineExecutionSteps": [
                {"StepName": "approve-model", "Metadata": {}},
                {"StepName": "register-model", "Metadata": {"RegisterModel": {"Arn": PACKAGE}}},
            ]
        },
        {"PipelineExecutionArn": EXECUTION},
    )
    stub.add_response(
        "describe_model_package",
        {
            "ModelPackageName": "promote-code-staging-models",
            "ModelPackageArn": PACKAGE,
            "CreationTime": "2026-01-01T00:00:00Z",
            "ModelPackageStatus": "Completed",
            "ModelPackageStatusDetails": {"ValidationStatuses": []},
            "ModelApprovalStatus": approval,
        },
        {"ModelPackageName": PACKAGE},
    )


def test_the_pipeline_runs_to_an_approved_package(sm: Any) -> None:
    with Stubber(sm) as stub:
        stub_pipeline(stub)
        assert deployment.run_pipeline(sm, TARGET.pipeline, COMMIT, FAST) == (EXECUTION, PACKAGE)
        stub.assert_no_pending_responses()


def test_a_failed_execution_fails_the_check_with_its_reason(sm: Any) -> None:
    with Stubber(sm) as stub:
        stub_pipeline(stub, final="Failed")
        with pytest.raises(CheckFailedError, match="ended Failed: step train-model failed"):
            deployment.run_pipeline(sm, TARGET.pipeline, COMMIT, FAST)


def test_a_model_the_condition_rejected_fails_the_check(sm: Any) -> None:
    with Stubber(sm) as stub:
        stub_pipeline(stub, approval="PendingManualApproval")
        with pytest.raises(CheckFailedError, match="left it PendingManualApproval"):
            deployment.run_pipeline(sm, TARGET.pipeline, COMMIT, FAST)


def stub_endpoint(stub: Stubber, status: str, package: str) -> None:
    stub.add_response(
        "describe_endpoint",
        {
            "EndpointName": TARGET.endpoint,
            "EndpointArn": f"arn:aws:sagemaker:{REGION}:333333333333:endpoint/e",
            "EndpointConfigName": "cfg-v4",
            "EndpointStatus": status,
            "CreationTime": "2026-01-01T00:00:00Z",
            "LastModifiedTime": "2026-01-01T00:00:00Z",
        },
        {"EndpointName": TARGET.endpoint},
    )
    stub.add_response(
        "describe_endpoint_config",
        {
            "EndpointConfigName": "cfg-v4",
            "EndpointConfigArn": f"arn:aws:sagemaker:{REGION}:333333333333:endpoint-config/c",
            "ProductionVariants": [{"VariantName": "AllTraffic", "ModelName": "model-v4"}],
            "CreationTime": "2026-01-01T00:00:00Z",
        },
        {"EndpointConfigName": "cfg-v4"},
    )
    stub.add_response(
        "describe_model",
        {
            "ModelName": "model-v4",
            "ModelArn": f"arn:aws:sagemaker:{REGION}:333333333333:model/m",
            "CreationTime": "2026-01-01T00:00:00Z",
            "PrimaryContainer": {"ModelPackageName": package},
        },
        {"ModelName": "model-v4"},
    )


def test_the_check_waits_until_the_endpoint_serves_the_new_package(sm: Any) -> None:
    with Stubber(sm) as stub:
        stub_endpoint(stub, "Updating", PACKAGE.replace("/4", "/3"))
        stub_endpoint(stub, "InService", PACKAGE.replace("/4", "/3"))
        stub_endpoint(stub, "InService", PACKAGE)
        assert deployment.wait_for_endpoint(sm, TARGET.endpoint, PACKAGE, FAST) == "InService"
        stub.assert_no_pending_responses()


def test_a_failed_endpoint_fails_at_once(sm: Any) -> None:
    with Stubber(sm) as stub:
        stub_endpoint(stub, "Failed", PACKAGE)
        with pytest.raises(CheckFailedError, match="is Failed"):
            deployment.wait_for_endpoint(sm, TARGET.endpoint, PACKAGE, FAST)


def test_a_package_of_another_image_is_refused() -> None:
    deployment.check_images([IMAGE], IMAGE)
    other = IMAGE.replace("a" * 64, "b" * 64)
    with pytest.raises(CheckFailedError, match="not this commit's training image"):
        deployment.check_images([other], IMAGE)
    with pytest.raises(CheckFailedError):
        deployment.check_images([], IMAGE)


def answering(status: int = 200, body: Any = None) -> smoke.Invoke:
    def invoke(request: bytes, content_type: str) -> tuple[int, bytes]:
        assert content_type == "application/json"
        notes = json.loads(request)["instances"]
        answer = (
            body
            if body is not None
            else {"predictions": [{"label": "Surgery", "probability": 0.8}] * len(notes)}
        )
        return status, json.dumps(answer).encode()

    return invoke


def test_the_smoke_test_sends_one_note_per_request() -> None:
    result = smoke.smoke_test(answering(), ["a", "b", "c"], FAST)
    assert result["requests"] == 3


def test_a_margin_score_without_probability_is_well_formed() -> None:
    body = {"predictions": [{"label": "Surgery", "probability": None, "score": 0.36}]}
    assert smoke.smoke_test(answering(body=body), ["a"], FAST)["requests"] == 1


@pytest.mark.parametrize(
    ("invoke", "expected"),
    [
        (answering(status=500), "answered 500"),
        (answering(body={"predictions": []}), "not one prediction"),
        (answering(body={"predictions": [{"label": "", "probability": 2}]}), "malformed"),
        (answering(body={"predictions": [{"label": "Surgery", "probability": None}]}), "malformed"),
        (answering(body=["x"]), "not one prediction"),
    ],
)
def test_the_smoke_test_fails_on_a_bad_answer(invoke: smoke.Invoke, expected: str) -> None:
    with pytest.raises(CheckFailedError, match=expected):
        smoke.smoke_test(invoke, ["a"], FAST)


def test_the_smoke_test_fails_over_the_latency_budget() -> None:
    slow = Budget(smoke_p95_ms=-1)
    with pytest.raises(CheckFailedError, match="p95 latency"):
        smoke.smoke_test(answering(), ["a"], slow)


def test_a_failed_check_stops_the_later_ones_and_the_record_names_it(sm: Any) -> None:
    with Stubber(sm) as stub:
        stub_endpoint(stub, "Failed", PACKAGE)
        record = verify(
            TARGET,
            sm=sm,
            invoke=answering(),
            budget=FAST,
            notes=["a"],
            pipeline=lambda: (EXECUTION, PACKAGE),
            echo=lambda _: None,
        )
    assert not record.passed
    checks = record.document()["checks"]
    assert checks["pipeline_succeeded"]["passed"] is True
    assert checks["endpoint_serves_package"]["passed"] is False
    assert checks["smoke_test_passed"] == {
        "passed": False,
        "detail": "not run: endpoint_serves_package failed",
    }


def test_the_target_needs_the_stack_to_run_the_commit() -> None:
    outputs = {
        "pipeline_name": TARGET.pipeline,
        "endpoint_name": TARGET.endpoint,
        "images": {"training": IMAGE},
    }
    with pytest.raises(ValueError, match="runs None, not"):
        Target.from_outputs("staging", COMMIT, outputs)
    with pytest.raises(ValueError, match="has no output pipeline_name, endpoint_name, images"):
        Target.from_outputs("staging", COMMIT, {"deployed_commit": COMMIT})
    assert Target.from_outputs("staging", COMMIT, {**outputs, "deployed_commit": COMMIT}) == TARGET


def test_the_cli_refuses_missing_outputs_with_one_line(tmp_path: Any, capsys: Any) -> None:
    code = cli.main(
        [
            "--outputs",
            str(tmp_path / "missing.json"),
            "--commit",
            COMMIT,
            "--out",
            str(tmp_path / "v.json"),
        ]
    )
    assert code == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
