"""The local run: the generated definition, end to end, on local AWS (moto on 127.0.0.1).

One real run (`promote pipeline run --local` on the dev stack's plan, ending in the
deployer) is shared by the tests that read what it did; the interpreter's and the
job emulation's other paths run a tiny generic definition with tiny scripts, so each
costs a fraction of a second instead of a pipeline run.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ml import lineage
from ml.data.synthetic import generate
from ml.pipeline.code import BUNDLES, content_hash
from offline.aws import LocalAws, local_aws
from offline.deployer import LocalDeployer, local_config
from offline.mlflow_ui import running_server
from offline.pipeline import cli
from offline.pipeline.container import local_images, read_image
from offline.pipeline.expressions import Scope, declared_parameters
from offline.pipeline.runner import LocalRunError, StackOutputs, run_local
from offline.plan.capture import StackPlan
from tests.deployer.support import ENDPOINT, ROLE_ARN, Registry, approval_event

ACCURACY_FLOOR = 0.75
"""Measured 0.875 on the shipped synthetic data (deterministic). The generator makes notes
ambiguous on purpose (1-3 specialty phrases, 35 % borrow phrases of another specialty), so
perfect accuracy is not expected; 0.75 is about three binomial standard deviations (72 test
notes) below the measured value and six times chance (8 classes)."""


@dataclass(frozen=True)
class Demo:
    """What `promote pipeline run --local` printed and left in its work directory."""

    code: int
    out: str
    err: str
    workdir: Path

    @property
    def record(self) -> dict[str, Any]:
        record: dict[str, Any] = json.loads((self.workdir / "run.json").read_text())
        return record


@pytest.fixture(scope="module")
def plan_dir(stack_plans: dict[str, StackPlan], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The dev stack's offline plan, as `promote plan --json` writes it."""
    directory = tmp_path_factory.mktemp("plan")
    stack_plans["dev"].write(directory)
    return directory


@pytest.fixture(scope="module")
def planned(plan_dir: Path) -> tuple[str, StackOutputs]:
    return cli.load_plan(plan_dir, "dev")


@pytest.fixture(scope="module")
def demo(plan_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Demo:
    """`make demo`'s second command, run once for the module."""
    root = tmp_path_factory.mktemp("demo")
    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)  # a relative work directory, as `make demo` passes from the repo root
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            # What `promote pipeline run --local` runs (tests/offline/test_cli.py checks that).
            code = cli.main(["--plan-dir", str(plan_dir), "--workdir", "work", "--deploy"])
    return Demo(code, out.getvalue(), err.getvalue(), root / "work")


@pytest.fixture(scope="module")
def aws(planned: tuple[str, StackOutputs]) -> Iterator[LocalAws]:
    outputs = planned[1]
    with local_aws(outputs.region, outputs.account_id) as server:
        yield server


# -- the real run --------------------------------------------------------------------------
def test_the_demo_ends_with_a_deployed_endpoint(demo: Demo) -> None:
    assert demo.code == 0, demo.err
    assert "deployer: created endpoint promote-code-dev-endpoint" in demo.out
    assert "model-package/promote-code-dev-models/1 (Approved)" in demo.out
    assert "Traceback" not in demo.err


DAG_ORDER = (
    "preprocess-data",
    "train-model",
    "evaluate-model",
    "register-model",
    "accuracy-check",
    "approve-model",
)


def test_every_step_runs_in_dag_order(demo: Demo) -> None:
    steps = demo.record["steps"]
    assert [(s["name"], s["status"]) for s in steps] == [(n, "Succeeded") for n in DAG_ORDER]
    for step in steps:
        assert Path(step["log_path"]).is_file()
    assert (demo.workdir / "steps" / "train-model" / "model.tar.gz").is_file()


def test_accuracy_meets_the_floor(demo: Demo) -> None:
    metrics = demo.record["metrics"]["multiclass_classification_metrics"]
    assert metrics["accuracy"]["value"] >= ACCURACY_FLOOR
    assert demo.record["metrics"]["test_notes"] == 72
    assert f"accuracy     {metrics['accuracy']['value']:.4f}" in demo.out


def test_the_package_is_registered_with_the_evaluation_report(demo: Demo) -> None:
    request = json.loads((demo.workdir / "steps/register-model/log.txt").read_text())
    statistics = request["ModelMetrics"]["ModelQuality"]["Statistics"]
    assert statistics["S3Uri"].endswith("/evaluate-model/evaluation/evaluation.json")
    # The run read the package's statistics back from S3: they are the evaluation job's report.
    report = demo.workdir / "steps/evaluate-model/container/opt/ml/processing/output/evaluation"
    assert demo.record["metrics"] == json.loads((report / "evaluation.json").read_text())
    assert demo.record["approval_status"] == "Approved"


def test_the_package_carries_the_lineage_the_reason_and_the_drift_baseline(demo: Demo) -> None:
    request = json.loads((demo.workdir / "steps/register-model/log.txt").read_text())
    report = demo.record["metrics"]
    assert request["CustomerMetadataProperties"] == report["lineage"]
    assert set(report["lineage"]) == set(lineage.METADATA_KEYS)
    assert report["lineage"]["commit"] != "none"
    assert report["lineage"]["training_image"].startswith("111111111111.dkr.ecr.")
    assert len(report["lineage"]["data_sha256"]) == 64
    assert request["ModelPackageDescription"] == report["summary"]
    assert report["summary"].startswith("approved: macro_f1 ")
    drift = request["DriftCheckBaselines"]["ModelDataQuality"]["Statistics"]
    assert drift["S3Uri"].endswith("/evaluate-model/evaluation/drift_baseline.json")


def _tracked_run(demo: Demo) -> Any:
    import mlflow  # noqa: PLC0415

    client = mlflow.MlflowClient(tracking_uri=demo.record["tracking_uri"])
    return client, client.get_run(demo.record["metrics"]["lineage"]["mlflow_run_id"])


TRACKED_TAGS = {
    "commit",
    "training_image",
    "training_image_digest",
    "data_sha256",
    "pipeline_execution_arn",
    "stack",
}
TRACKED_ARTIFACTS = [
    "classification_report.txt",
    "confusion_matrix.png",
    "drift_baseline.json",
    "evaluation.json",
    "model",
]
HYPERPARAMETERS = {
    "RegularizationC": "c",
    "HashBits": "hash-bits",
    "MaxFeatures": "max-features",
    "NgramMax": "ngram-max",
    "ClassWeight": "class-weight",
    "Seed": "seed",
}
"""The definition's parameters that train-model logs, under the job's hyperparameter names."""
EVALUATION_PARAMETERS = {
    "MetricThreshold": "metric_threshold",
    "BaselineMargin": "baseline_margin",
    "ChampionTolerance": "champion_tolerance",
}
"""The definition's parameters that evaluate-model logs."""


def test_the_run_is_tracked_in_the_local_mlflow_store(
    demo: Demo, planned: tuple[str, StackOutputs], tmp_path: Path
) -> None:
    # Beside the work directory (every run empties that), as build/local/mlflow is.
    store = demo.workdir.parent / "mlflow"
    assert demo.record["tracking_uri"] == f"sqlite:///{store / 'mlflow.db'}"
    client, run = _tracked_run(demo)
    # One run per execution: train-model created it, evaluate-model logged into the same one.
    assert run.info.run_name == "local-execution"  # the pipeline execution id
    assert run.info.status == "FINISHED"
    experiment = client.get_experiment(run.info.experiment_id)
    assert experiment.name == "promote-code-dev"
    assert len(client.search_runs([run.info.experiment_id])) == 1

    # Every parameter, with the value this execution ran with (the definition's defaults).
    defaults = {p["Name"]: p["DefaultValue"] for p in json.loads(planned[0])["Parameters"]}
    assert run.data.params == {
        **{key: str(defaults[name]) for name, key in HYPERPARAMETERS.items()},
        "trainer": "tfidf-linear",
        **{key: str(defaults[name]) for name, key in EVALUATION_PARAMETERS.items()},
        "approval_metric": "macro_f1",
        "model_package_group": "promote-code-dev-models",
    }
    hyperparameters = demo.workdir / "steps/train-model/container/opt/ml/input/config"
    given = json.loads((hyperparameters / "hyperparameters.json").read_text())
    assert given.items() <= run.data.params.items()  # what SageMaker gave the training job

    # The training and evaluation metrics, per class under MLflow-safe names.
    report = demo.record["metrics"]
    metrics = run.data.metrics
    scores = report["multiclass_classification_metrics"]
    for name in ("accuracy", "macro_f1", "weighted_f1"):
        assert metrics[name] == pytest.approx(scores[name]["value"])
        assert metrics[f"baseline.{name}"] == pytest.approx(report["baseline"][name])
    for name in ("train_accuracy", "train_macro_f1", "validation_accuracy", "train_seconds"):
        assert name in metrics, name
    assert metrics["validation_macro_f1"] > 0.5
    per_class = {k: v for k, v in metrics.items() if k.startswith("f1.")}
    assert len(per_class) == len(report["per_class_f1"]) == 8
    assert metrics["f1.Cardiovascular_Pulmonary"] == pytest.approx(
        report["per_class_f1"]["Cardiovascular / Pulmonary"]
    )
    assert metrics["champion.shortfall"] == 0.0
    assert "champion.value" not in metrics  # the first package has no champion

    # The lineage tags, the same facts the model package carries.
    lineage_facts = report["lineage"]
    tags = {k: v for k, v in run.data.tags.items() if not k.startswith("mlflow.")}
    assert tags == {
        "commit": lineage_facts["commit"],
        "training_image": lineage_facts["training_image"],
        "training_image_digest": lineage_facts["training_image"].rpartition("@")[2],
        "data_sha256": lineage_facts["data_sha256"],
        "pipeline_execution_arn": tags["pipeline_execution_arn"],
        "stack": "promote-code-dev",
    }
    assert tags["pipeline_execution_arn"].endswith("/execution/local-execution")
    assert lineage_facts["mlflow_run_id"] == run.info.run_id

    # The report, the matrix and the model, in the store's artifact root (not a job's folder).
    assert [a.path for a in client.list_artifacts(run.info.run_id)] == TRACKED_ARTIFACTS
    assert run.info.artifact_uri.startswith(str(store / "artifacts" / "promote-code-dev"))
    local = Path(client.download_artifacts(run.info.run_id, "", str(tmp_path)))
    assert (local / "confusion_matrix.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((local / "evaluation.json").read_text()) == report
    assert report["summary"] in (local / "classification_report.txt").read_text()


def test_the_run_reads_back_through_a_real_mlflow_servers_rest_api(demo: Demo) -> None:
    _, run = _tracked_run(demo)
    with running_server(demo.workdir.parent / "mlflow") as url:

        def get(path: str) -> Any:
            with urllib.request.urlopen(f"{url}/api/2.0/mlflow/{path}", timeout=30) as answer:
                return json.loads(answer.read())

        found = get(f"runs/get?run_id={run.info.run_id}")["run"]
        artifacts = get(f"artifacts/list?run_id={run.info.run_id}")["files"]
        model = get(f"artifacts/list?run_id={run.info.run_id}&path=model")["files"]
    assert found["info"]["run_name"] == "local-execution"
    assert {p["key"]: p["value"] for p in found["data"]["params"]} == run.data.params
    metrics = {m["key"]: m["value"] for m in found["data"]["metrics"]}
    assert metrics == pytest.approx(run.data.metrics)
    assert {t["key"] for t in found["data"]["tags"]} >= TRACKED_TAGS
    assert [a["path"] for a in artifacts] == TRACKED_ARTIFACTS
    assert [a["path"] for a in model] == ["model/model.tar.gz"]
    with pytest.raises(OSError):  # the server is gone with its process group
        urllib.request.urlopen(f"{url}/health", timeout=5)


def test_the_approval_hook_gets_the_eventbridge_event(demo: Demo) -> None:
    (path,) = demo.record["events"]
    event = json.loads(Path(path).read_text())
    assert event["detail-type"] == "SageMaker Model Package State Change"
    assert event["source"] == "aws.sagemaker"
    assert event["account"] == "222222222222"
    assert event["resources"] == [demo.record["model_package_arn"]]
    assert event["detail"]["ModelApprovalStatus"] == "Approved"
    assert event["detail"]["ModelPackageGroupName"] == "promote-code-dev-models"


def test_jobs_ran_as_root_with_the_mounts_sagemaker_makes(demo: Demo) -> None:
    # The Dockerfile says root (as SageMaker expects); the job's mounted outputs are the
    # run's user's (the stand-in for root when the run is not root) with mode 0755.
    image = read_image(local_images()["training"])
    assert image.user.is_root, f"{image.user.where}: USER {image.user.spec}"
    container = demo.workdir / "steps"
    for mount in (
        container / "preprocess-data/container/opt/ml/processing/output/train",
        container / "evaluate-model/container/opt/ml/processing/input/model",
        container / "train-model/container/opt/ml/model",
    ):
        assert mount.stat().st_uid == os.geteuid(), mount
        assert mount.stat().st_mode & 0o777 == 0o755, mount


def test_the_real_condition_follows_its_parameter_and_report(
    demo: Demo, planned: tuple[str, StackOutputs]
) -> None:
    definition = json.loads(planned[0])
    (condition,) = [s for s in definition["Steps"] if s["Type"] == "Condition"]
    files = demo.record["property_files"]

    def outcome(**parameters: Any) -> bool:
        scope = Scope(declared_parameters(definition, parameters), {})
        for name, content in files.items():
            step, _, file_name = name.partition(".")
            scope.property_files[(step, file_name)] = content
        return all(scope.evaluate(c)[0] for c in condition["Arguments"]["Conditions"])

    report = files["evaluate-model.EvaluationReport"]
    macro_f1 = report["multiclass_classification_metrics"]["macro_f1"]["value"]
    margin = report["baseline_comparison"]["macro_f1"]["margin"]
    assert outcome() is True  # macro-F1 >= 0.2 and the baseline + 0.1: what the run did
    assert outcome(MetricThreshold=str(macro_f1)) is True
    assert outcome(MetricThreshold=str(macro_f1 + 1e-6)) is False
    assert outcome(BaselineMargin=str(margin + 1e-6)) is False
    # No champion: shortfall 0.0, which any tolerance >= 0 admits.
    assert report["champion"]["shortfall"] == 0.0
    assert outcome(ChampionTolerance="0") is True
    assert outcome(ChampionTolerance="-0.001") is False
    training = next(s for s in definition["Steps"] if s["Type"] == "Training")
    scope = Scope(declared_parameters(definition, {"RegularizationC": "0.5", "HashBits": "12"}), {})
    hyperparameters = scope.resolve(training["Arguments"]["HyperParameters"])
    assert (hyperparameters["c"], hyperparameters["hash-bits"]) == ("0.5", "12")


def test_the_deployer_hook_deploys_once_and_a_replay_is_a_noop(aws: LocalAws) -> None:
    registry = Registry(aws.client("sagemaker"), aws.endpoint_url)
    group = registry.group("hook-test-models")  # apart from what other tests provision
    arn = registry.register(group)
    registry.approve(arn)
    said: list[str] = []
    config = local_config(
        endpoint_name=ENDPOINT,
        model_package_group_name=group,
        execution_role_arn=ROLE_ARN,
        artifacts_bucket="promote-code-dev-artifacts-123456789012",
    )
    deployer = LocalDeployer(config, echo=said.append)

    deployer(approval_event(arn, group, 1), aws)
    deployer(approval_event(arn, group, 1), aws)

    assert [r.action for r in deployer.results] == ["created", "noop"]
    endpoint = registry.sagemaker.describe_endpoint(EndpointName=ENDPOINT)
    assert endpoint["EndpointStatus"] == "InService"
    capture = registry.sagemaker.describe_endpoint_config(
        EndpointConfigName=endpoint["EndpointConfigName"]
    )["DataCaptureConfig"]
    assert capture["DestinationS3Uri"] == (
        f"s3://promote-code-dev-artifacts-123456789012/data-capture/{ENDPOINT}"
    )
    assert said[0].startswith(f"deployer: created endpoint {ENDPOINT} ({ENDPOINT}-v1-")


# -- refusals before any job ---------------------------------------------------------------
def test_a_bad_dataset_stops_before_any_step(
    aws: LocalAws, planned: tuple[str, StackOutputs], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.csv"
    generate(notes_per_specialty=10).assign(transcription="").to_csv(bad, index=False)
    with pytest.raises(LocalRunError, match="no row with both") as raised:
        run_local(*planned, aws, tmp_path / "w", dataset_csv=bad, echo=lambda line: None)
    assert raised.value.step == "upload-dataset"


def test_code_that_differs_from_the_definition_is_refused(
    aws: LocalAws, planned: tuple[str, StackOutputs], tmp_path: Path
) -> None:
    stale = planned[0].replace(content_hash(BUNDLES["train.py"]), "0" * 64)
    with pytest.raises(LocalRunError, match="generated from other step code") as raised:
        run_local(stale, planned[1], aws, tmp_path / "w", echo=lambda line: None)
    assert raised.value.exit_code == 2


def test_unknown_parameters_are_refused(
    aws: LocalAws, planned: tuple[str, StackOutputs], tmp_path: Path
) -> None:
    with pytest.raises(LocalRunError, match="unknown pipeline parameter"):
        run_local(*planned, aws, tmp_path / "w", parameters={"Epoch": 1}, echo=lambda line: None)


def test_a_foreign_workdir_is_never_emptied(
    aws: LocalAws, planned: tuple[str, StackOutputs], tmp_path: Path
) -> None:
    precious = tmp_path / "notes.txt"
    precious.write_text("keep me")
    with pytest.raises(LocalRunError, match="not made by a local run"):
        run_local(*planned, aws, tmp_path, echo=lambda line: None)
    assert precious.read_text() == "keep me"


def test_local_aws_starts_empty_and_is_stopped_on_interrupt(aws: LocalAws) -> None:
    aws.client("s3").create_bucket(
        Bucket="left-by-another-run", CreateBucketConfiguration={"LocationConstraint": aws.region}
    )
    with pytest.raises(KeyboardInterrupt), local_aws("eu-west-1", "333333333333") as fresh:
        assert fresh.pid is not None and fresh.pid != aws.pid
        assert fresh.client("s3").list_buckets()["Buckets"] == []  # its own, empty state
        group = fresh.client("sagemaker").create_model_package_group(ModelPackageGroupName="g")
        assert ":333333333333:" in group["ModelPackageGroupArn"]
        raise KeyboardInterrupt
    with pytest.raises(ProcessLookupError):
        os.kill(fresh.pid, 0)  # the server process is gone (and reaped)
    assert "MOTO_ACCOUNT_ID" not in os.environ


# -- the CLI -------------------------------------------------------------------------------
def test_cli_reads_the_plan(planned: tuple[str, StackOutputs]) -> None:
    definition, outputs = planned
    assert json.loads(definition)["Steps"]
    assert outputs.model_package_group == "promote-code-dev-models"
    assert outputs.account_id == "222222222222"


def test_cli_exits_4_with_the_failing_log(
    plan_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.csv"
    generate(notes_per_specialty=5).drop(columns=["transcription"]).to_csv(bad, index=False)
    argv = ["--plan-dir", str(plan_dir), "--workdir", str(tmp_path / "w"), "--dataset", str(bad)]
    assert cli.main(argv) == 4
    err = capsys.readouterr().err
    assert "missing column" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("arguments", "says"),
    [
        (["--plan-dir", "{tmp}/no-plan"], "run `promote plan --json` first"),
        (["--dataset", "/nonexistent.csv"], "--dataset /nonexistent.csv: no such file"),
        (["--workdir", "{tmp}/a-file/work"], "cannot use work directory"),
        (["--parameter", "Epochs=20"], "unknown pipeline parameter(s) ['Epochs']"),
        (["--parameter", "MetricThreshold=high"], "MetricThreshold is of type Float"),
    ],
    ids=["no-plan", "no-dataset", "unusable-workdir", "unknown-parameter", "mistyped-parameter"],
)
def test_bad_paths_are_one_line_and_exit_2(
    arguments: list[str],
    says: str,
    plan_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (tmp_path / "a-file").write_text("not a directory")
    argv = ["--plan-dir", str(plan_dir), "--workdir", str(tmp_path / "w")]
    argv += [part.format(tmp=tmp_path) for part in arguments]
    assert cli.main([*argv, "--deploy"]) == 2
    err = capsys.readouterr().err
    assert says in err
    assert len(err.strip().splitlines()) == 1, err
