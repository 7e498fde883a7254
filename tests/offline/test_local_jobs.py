"""The interpreter and the job emulation on a tiny generic pipeline (no file of this project's).

A processing job writes a report (a property file), a model is registered with it as
model-quality statistics, a condition on the report decides whether a second job runs.
Its scripts import only the standard library, so a job costs a Python start-up.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ml.pipeline.code import bundle_prefix
from offline.aws import LocalAws, local_aws
from offline.pipeline.cli import rejection
from offline.pipeline.errors import EXIT_REJECTED, EXIT_STEP_FAILED
from offline.pipeline.runner import LocalRunError, RunResult, StackOutputs, run_local
from tests.offline.support import alive

ACCOUNT = "444444444444"
BUCKET = "tiny-artifacts"
IMAGE = f"{ACCOUNT}.dkr.ecr.eu-west-1.amazonaws.com/team/tiny@sha256:" + "cd" * 32
OUTPUTS = StackOutputs(
    data_bucket="tiny-data",
    artifacts_bucket=BUCKET,
    role_arn=f"arn:aws:iam::{ACCOUNT}:role/tiny",
    model_package_group="tiny-models",
    region="eu-west-1",
)
REPORT = """\
import json, os, sys, pathlib
out = pathlib.Path(sys.argv[sys.argv.index("--out") + 1])
(out / "report.json").write_text(json.dumps({"quality": {"score": float(os.environ["SCORE"])}}))
print("report written")
"""
PUBLISH = "print('published')\n"


def processing(name: str, script: str, arguments: list[Any], **extra: Any) -> dict[str, Any]:
    return {
        "Name": name,
        "Type": "Processing",
        "Arguments": {
            "AppSpecification": {
                "ImageUri": IMAGE,
                "ContainerEntrypoint": ["python3", f"/opt/ml/processing/input/code/{script}"],
                "ContainerArguments": arguments,
            },
            "ProcessingInputs": [
                {
                    "InputName": "code",
                    "S3Input": {
                        "LocalPath": "/opt/ml/processing/input/code",
                        "S3Uri": f"s3://{BUCKET}/code/{script}",
                    },
                }
            ],
            **extra,
        },
    }


def tiny_definition(limit: int = 60) -> dict[str, Any]:
    report_uri = {
        "Std:Join": {
            "On": "/",
            "Values": ["s3:/", BUCKET, {"Get": "Execution.PipelineExecutionId"}, "report"],
        }
    }
    report = processing(
        "make-report",
        "report.py",
        ["--out", "/opt/ml/processing/output/report"],
        Environment={"SCORE": {"Get": "Parameters.Score"}},
        ProcessingOutputConfig={
            "Outputs": [
                {
                    "OutputName": "report",
                    "S3Output": {
                        "LocalPath": "/opt/ml/processing/output/report",
                        "S3Uri": report_uri,
                    },
                }
            ]
        },
        StoppingCondition={"MaxRuntimeInSeconds": limit},
    )
    report["PropertyFiles"] = [
        {"PropertyFileName": "Report", "OutputName": "report", "FilePath": "report.json"}
    ]
    output = "Steps.make-report.ProcessingOutputConfig.Outputs['report'].S3Output.S3Uri"
    register = {
        "Name": "register",
        "Type": "RegisterModel",
        "Arguments": {
            "ModelPackageGroupName": OUTPUTS.model_package_group,
            "ModelApprovalStatus": {"Get": "Parameters.Approval"},
            "InferenceSpecification": {
                "Containers": [{"Image": IMAGE, "ModelDataUrl": f"s3://{BUCKET}/model.tar.gz"}],
                "SupportedContentTypes": ["text/csv"],
                "SupportedResponseMIMETypes": ["text/csv"],
            },
            "ModelMetrics": {
                "ModelQuality": {
                    "Statistics": {
                        "ContentType": "application/json",
                        "S3Uri": {
                            "Std:Join": {"On": "/", "Values": [{"Get": output}, "report.json"]}
                        },
                    }
                }
            },
        },
    }
    check = {
        "Name": "good-enough",
        "Type": "Condition",
        "Arguments": {
            "Conditions": [
                {
                    "Type": "GreaterThanOrEqualTo",
                    "LeftValue": {
                        "Std:JsonGet": {
                            "PropertyFile": {"Get": "Steps.make-report.PropertyFiles.Report"},
                            "Path": "quality.score",
                        }
                    },
                    "RightValue": {"Get": "Parameters.Threshold"},
                }
            ],
            "IfSteps": [processing("publish", "publish.py", [])],
            "ElseSteps": [],
        },
    }
    return {
        "Version": "2020-12-01",
        "Parameters": [
            {"Name": "Score", "Type": "Float", "DefaultValue": 0.9},
            {"Name": "Threshold", "Type": "Float", "DefaultValue": 0.5},
            {"Name": "Approval", "Type": "String", "DefaultValue": "PendingManualApproval"},
        ],
        "Steps": [report, register, check],
    }


@pytest.fixture(scope="module")
def aws() -> Iterator[LocalAws]:
    with local_aws(OUTPUTS.region, ACCOUNT) as server:
        yield server


@pytest.fixture
def tiny(tmp_path: Path) -> dict[str, Any]:
    """Scripts, images and a dataset for `run_local` on the tiny definition."""
    (tmp_path / "report.py").write_text(REPORT)
    (tmp_path / "publish.py").write_text(PUBLISH)
    (tmp_path / "Dockerfile").write_text("FROM python:3.11-slim\n")
    dataset = tmp_path / "notes.csv"
    rows = [f"{label},note {i} about {label}" for i in range(8) for label in ("a", "b", "c")]
    dataset.write_text("medical_specialty,transcription\n" + "\n".join(rows) + "\n")
    return {
        "scripts": {"report.py": tmp_path / "report.py", "publish.py": tmp_path / "publish.py"},
        "images": {"tiny": tmp_path / "Dockerfile"},
        "dataset_csv": dataset,
        "echo": lambda line: None,
    }


def run(aws: LocalAws, workdir: Path, options: dict[str, Any], **more: Any) -> RunResult:
    """`run_local` with each tiny script as its own code bundle, at its content-addressed
    prefix (as ml/pipeline/code.py lays out the pipeline's)."""
    text = json.dumps(more.pop("definition", tiny_definition()))
    bundles = {name: {name: path} for name, path in options["scripts"].items()}
    for name, files in bundles.items():
        text = text.replace(f"s3://{BUCKET}/code/{name}", f"s3://{BUCKET}/{bundle_prefix(files)}")
    rest = {k: v for k, v in options.items() if k != "scripts"}
    return run_local(json.loads(text), OUTPUTS, aws, workdir, bundles=bundles, **{**rest, **more})


def test_the_if_branch_runs_and_the_package_carries_the_report(
    aws: LocalAws, tiny: dict[str, Any], tmp_path: Path
) -> None:
    result = run(aws, tmp_path / "w", tiny, parameters={"Score": 0.75})
    assert [(s.name, s.status) for s in result.steps] == [
        ("make-report", "Succeeded"),
        ("register", "Succeeded"),
        ("good-enough", "Succeeded"),
        ("publish", "Succeeded"),
    ]
    assert result.metrics == {"quality": {"score": 0.75}}  # read back through ModelMetrics
    assert result.approval_status == "PendingManualApproval"
    record = json.loads((tmp_path / "w/run.json").read_text())
    assert record["property_files"] == {"make-report.Report": {"quality": {"score": 0.75}}}


def test_a_false_condition_skips_its_branch_and_no_event_is_sent(
    aws: LocalAws, tiny: dict[str, Any], tmp_path: Path
) -> None:
    events: list[dict[str, Any]] = []
    result = run(
        aws,
        tmp_path / "w",
        tiny,
        # A string, as StartPipelineExecution and `--parameter` pass it: typed as declared.
        parameters={"Threshold": "0.99"},
        on_approved=lambda event, local: events.append(event),
    )
    assert {s.name: s.status for s in result.steps}["publish"] == "Skipped"
    assert (tmp_path / "w/steps/good-enough/log.txt").read_text().strip() == (
        "0.9 GreaterThanOrEqualTo 0.99 -> False"
    )
    assert events == []
    assert result.rejected_by == "good-enough"
    said = rejection(result)
    assert said is not None
    assert said.startswith(f"model registered as {result.model_package_arn} (")
    assert "NOT approved and NOT deployed: good-enough was false" in said
    assert "0.9 GreaterThanOrEqualTo 0.99 -> False" in said


def test_a_true_condition_is_no_rejection(
    aws: LocalAws, tiny: dict[str, Any], tmp_path: Path
) -> None:
    result = run(aws, tmp_path / "w", tiny, parameters={"Threshold": "0.9"})
    assert result.rejected_by is None
    assert rejection(result) is None


@pytest.mark.parametrize(
    ("parameters", "says"),
    [
        ({"Threshold": "high"}, "pipeline parameter Threshold is of type Float, got 'high'"),
        ({"Treshold": "0.5"}, "unknown pipeline parameter(s) ['Treshold']"),
    ],
)
def test_a_bad_parameter_stops_before_any_job_with_exit_2(
    aws: LocalAws, tiny: dict[str, Any], tmp_path: Path, parameters: dict[str, str], says: str
) -> None:
    with pytest.raises(LocalRunError) as raised:
        run(aws, tmp_path / "w", tiny, parameters=parameters)
    assert says in str(raised.value)
    assert raised.value.exit_code == 2
    assert not (tmp_path / "w/steps").exists()


def test_a_failing_step_stops_the_run_with_its_log(
    aws: LocalAws, tiny: dict[str, Any], tmp_path: Path
) -> None:
    tiny["scripts"]["report.py"].write_text("import sys\nprint('score is nan')\nsys.exit(3)\n")
    echoed: list[str] = []
    with pytest.raises(LocalRunError) as raised:
        run(aws, tmp_path / "w", tiny, echo=echoed.append)
    assert raised.value.step == "make-report"
    assert raised.value.exit_code == EXIT_STEP_FAILED != EXIT_REJECTED
    assert "exited with status 3" in str(raised.value)
    assert "score is nan" in raised.value.log
    assert not any("register" in line for line in echoed)
    record = json.loads((tmp_path / "w/run.json").read_text())
    assert [(s["name"], s["status"]) for s in record["steps"]] == [("make-report", "Failed")]


def test_a_failing_approval_hook_fails_the_run(
    aws: LocalAws, tiny: dict[str, Any], tmp_path: Path
) -> None:
    def deployer(event: dict[str, Any], local: LocalAws) -> None:
        assert event["detail"]["ModelApprovalStatus"] == "Approved"
        raise RuntimeError("CreateEndpoint: quota exceeded")

    with pytest.raises(LocalRunError, match="quota exceeded") as raised:
        run(aws, tmp_path / "w", tiny, parameters={"Approval": "Approved"}, on_approved=deployer)
    assert raised.value.step == "on-approved"
    assert len(list((tmp_path / "w/events").iterdir())) == 1


def test_a_non_root_user_cannot_write_the_mounted_outputs(
    aws: LocalAws, tiny: dict[str, Any], tmp_path: Path
) -> None:
    # What the training image's Dockerfile said before: SageMaker's mounts are root's.
    tiny["images"]["tiny"].write_text("FROM python:3.11-slim\nUSER 1000:1000\n")
    with pytest.raises(LocalRunError, match=r"USER 1000:1000 \(.*Dockerfile:2\)") as raised:
        run(aws, tmp_path / "w", tiny)
    assert raised.value.step == "make-report"
    assert raised.value.exit_code == 2
    assert "/opt/ml/processing/output/report owned by root" in str(raised.value)
    assert not (tmp_path / "w/steps/make-report/log.txt").exists()  # the job never started


def test_an_image_not_built_here_is_refused(
    aws: LocalAws, tiny: dict[str, Any], tmp_path: Path
) -> None:
    with pytest.raises(LocalRunError, match="not built from this checkout"):
        run(aws, tmp_path / "w", tiny, images={"other": tiny["images"]["tiny"]})


def test_a_job_past_its_time_limit_is_stopped_with_its_children(
    aws: LocalAws, tiny: dict[str, Any], tmp_path: Path
) -> None:
    pid_file = tmp_path / "grandchild.pid"
    tiny["scripts"]["report.py"].write_text(
        "import subprocess, time, pathlib\n"
        "child = subprocess.Popen(['sleep', '60'])\n"
        f"pathlib.Path({str(pid_file)!r}).write_text(str(child.pid))\n"
        "time.sleep(60)\n"
    )
    started = time.monotonic()
    with pytest.raises(LocalRunError, match="exceeded MaxRuntimeInSeconds=1"):
        run(aws, tmp_path / "w", tiny, definition=tiny_definition(limit=1))
    assert time.monotonic() - started < 20
    assert not alive(int(pid_file.read_text()))
