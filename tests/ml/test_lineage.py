"""`ml.lineage`: the chain from an endpoint to the commit, images and data of what it serves.

The chains are real: a package is registered in moto with the metadata the pipeline
records, the deployer handler deploys it, and `chain` reads every link back. The MLflow
run lives in a real local store (SQLite). The command reads the stack's outputs through
a stand-in `pulumi` executable on PATH, as tests/deployer/test_manual_command.py does.
"""

from __future__ import annotations

import json
import os
import socket
import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from ml import lineage
from ml.deployer.handler import handle_event
from tests.deployer.support import (
    COMMIT,
    ENDPOINT,
    GROUP,
    IMAGE,
    LINEAGE,
    REGION,
    ROLE_ARN,
    Registry,
    approval_event,
    deployer_config,
)


@pytest.fixture
def registry() -> Iterator[Registry]:
    with mock_aws():
        registry = Registry(boto3.client("sagemaker", region_name=REGION), url="")
        registry.group()
        yield registry


@pytest.fixture(scope="module")
def tracking(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A local MLflow store with one finished run: (tracking URI, run ID)."""
    import mlflow  # noqa: PLC0415 - the store takes seconds to create; only this fixture needs it

    directory = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{directory}/mlflow.db"
    client = mlflow.MlflowClient(uri)
    experiment = client.create_experiment(
        "promote-code-dev", artifact_location=(directory / "artifacts").as_uri()
    )
    run = client.create_run(experiment, run_name="train", tags={"commit": COMMIT})
    client.log_metric(run.info.run_id, "macro_f1", 0.8125)
    client.set_terminated(run.info.run_id)
    return uri, run.info.run_id


def deployed(registry: Registry, metadata: dict[str, str] | None = None) -> str:
    """Register an approved package with `metadata` (LINEAGE by default), deploy it; its ARN."""
    # Registered approved: moto's UpdateModelPackage drops CustomerMetadataProperties.
    arn = registry.register(status="Approved", upload=False, metadata=metadata or LINEAGE)
    version = int(arn.rsplit("/", 1)[1])
    result = handle_event(
        approval_event(arn, GROUP, version), registry.sagemaker, deployer_config()
    )
    assert result.action == "created", result
    return arn


def test_chain_follows_every_link_to_the_package_metadata(registry: Registry) -> None:
    arn = deployed(registry)

    found = lineage.chain(registry.sagemaker, ENDPOINT)

    assert found.endpoint_name == ENDPOINT
    assert found.endpoint_status == "InService"
    config = registry.sagemaker.describe_endpoint(EndpointName=ENDPOINT)["EndpointConfigName"]
    assert found.endpoint_config_name == config
    assert found.endpoint_config_tags[lineage.COMMIT_TAG] == COMMIT
    (variant,) = found.variants
    assert variant.variant_name == "AllTraffic"
    assert variant.model_tags[lineage.PACKAGE_ARN_TAG] == arn
    assert variant.model_tags[lineage.COMMIT_TAG] == COMMIT
    package = variant.package
    assert (package.arn, package.group, package.version) == (arn, GROUP, 1)
    assert package.approval_status == "Approved"
    assert package.metadata == LINEAGE
    assert package.fact(lineage.TRAINING_IMAGE) == IMAGE
    assert package.container_images == (IMAGE,)
    # A run ID but no tracking server known: not looked up, and not an error.
    assert variant.run is None


def test_every_variant_is_reported(registry: Registry) -> None:
    first = deployed(registry)
    second = registry.register(status="Approved", upload=False, metadata=LINEAGE)
    sm = registry.sagemaker
    model = sm.describe_endpoint_config(
        EndpointConfigName=sm.describe_endpoint(EndpointName=ENDPOINT)["EndpointConfigName"]
    )["ProductionVariants"][0]["ModelName"]
    # A second model without the tag: its container names the package.
    sm.create_model(
        ModelName="challenger",
        PrimaryContainer={"ModelPackageName": second},
        ExecutionRoleArn=ROLE_ARN,
    )
    variants = [
        {
            "VariantName": name,
            "ModelName": m,
            "InitialInstanceCount": 1,
            "InstanceType": "ml.m5.large",
        }
        for name, m in (("champion", model), ("challenger", "challenger"))
    ]
    sm.create_endpoint_config(EndpointConfigName="two-variants", ProductionVariants=variants)
    sm.create_endpoint(EndpointName="two", EndpointConfigName="two-variants")

    found = lineage.chain(sm, "two")

    assert [(v.variant_name, v.package.arn) for v in found.variants] == [
        ("champion", first),
        ("challenger", second),
    ]
    assert found.variants[1].model_tags == {}


def test_no_endpoint_says_nothing_was_deployed_for_which_stack(registry: Registry) -> None:
    with pytest.raises(lineage.LineageError) as raised:
        lineage.chain(registry.sagemaker, ENDPOINT, stack="dev")

    message = str(raised.value)
    assert "\n" not in message
    assert f"stack dev's endpoint {ENDPOINT} does not exist: nothing was deployed yet" in message
    assert "python -m ml.deployer.manual --stack dev" in message


def test_a_model_without_its_package_is_one_line(registry: Registry) -> None:
    sm = registry.sagemaker
    sm.create_model(
        ModelName="by-hand",
        PrimaryContainer={"Image": IMAGE, "ModelDataUrl": "s3://bucket/model.tar.gz"},
        ExecutionRoleArn=ROLE_ARN,
    )
    variant = {"VariantName": "v", "ModelName": "by-hand", "InitialInstanceCount": 1}
    sm.create_endpoint_config(
        EndpointConfigName="by-hand",
        ProductionVariants=[{**variant, "InstanceType": "ml.m5.large"}],
    )
    sm.create_endpoint(EndpointName="by-hand", EndpointConfigName="by-hand")

    with pytest.raises(lineage.LineageError) as raised:
        lineage.chain(sm, "by-hand")

    assert str(raised.value) == (
        "model by-hand (variant v of endpoint config by-hand) has no tag model-package-arn and "
        "no ModelPackageName container: it was not created by the promote deployer from a "
        "registered package; redeploy with `python -m ml.deployer.manual --stack <stack>`"
    )


def test_a_model_tagged_with_another_package_than_it_serves_is_one_line(
    registry: Registry,
) -> None:
    served = registry.register(status="Approved", upload=False, metadata=LINEAGE)
    other = registry.register(status="Approved", upload=False, metadata=LINEAGE)
    sm = registry.sagemaker
    sm.create_model(
        ModelName="mislabelled",
        PrimaryContainer={"ModelPackageName": served},
        ExecutionRoleArn=ROLE_ARN,
        Tags=[{"Key": lineage.PACKAGE_ARN_TAG, "Value": other}],
    )
    variant = {"VariantName": "v", "ModelName": "mislabelled", "InitialInstanceCount": 1}
    sm.create_endpoint_config(
        EndpointConfigName="c", ProductionVariants=[{**variant, "InstanceType": "ml.m5.large"}]
    )
    sm.create_endpoint(EndpointName="e", EndpointConfigName="c")

    with pytest.raises(lineage.LineageError) as raised:
        lineage.chain(sm, "e")

    assert str(raised.value) == (
        f"model mislabelled (variant v of endpoint config c) is tagged model-package-arn={other} "
        f"but serves {served}: it was not created by the promote deployer; delete it and redeploy"
    )


def test_a_package_without_lineage_metadata_was_registered_by_an_older_pipeline(
    registry: Registry,
) -> None:
    arn = registry.register(status="Approved", upload=False)
    handle_event(approval_event(arn, GROUP, 1), registry.sagemaker, deployer_config())

    with pytest.raises(lineage.LineageError) as raised:
        lineage.chain(registry.sagemaker, ENDPOINT)

    assert str(raised.value) == (
        f"model package {arn} has no lineage metadata (CustomerMetadataProperties commit, "
        "training_image, data_sha256): it was registered by an older pipeline; retrain with "
        "the current pipeline to get a traceable model"
    )


def test_the_mlflow_run_is_read_from_the_tracking_server(
    registry: Registry, tracking: tuple[str, str]
) -> None:
    uri, run_id = tracking
    deployed(registry, {**LINEAGE, lineage.MLFLOW_RUN_ID: run_id})

    (variant,) = lineage.chain(registry.sagemaker, ENDPOINT, tracking_uri=uri).variants

    run = variant.run
    assert run is not None
    assert (run.run_id, run.tracking_uri, run.state, run.status) == (
        run_id,
        uri,
        "found",
        "FINISHED",
    )
    assert run.run_name == "train"
    assert run.metrics == {"macro_f1": 0.8125}
    assert run.tags == {"commit": COMMIT}


def test_a_run_the_server_does_not_know_is_not_found(
    registry: Registry, tracking: tuple[str, str]
) -> None:
    deployed(registry)  # LINEAGE's run ID was never logged to this store

    (variant,) = lineage.chain(registry.sagemaker, ENDPOINT, tracking_uri=tracking[0]).variants

    assert variant.run is not None
    assert variant.run.state == "not found"


def test_a_package_without_a_tracking_arn_is_looked_up_on_the_fallback_store(
    registry: Registry, tracking: tuple[str, str]
) -> None:
    # A local run's package says "none" (SageMaker refuses empty values): not a URI to open.
    uri, run_id = tracking
    deployed(
        registry, {**LINEAGE, lineage.MLFLOW_RUN_ID: run_id, lineage.MLFLOW_TRACKING_ARN: "none"}
    )

    (variant,) = lineage.chain(registry.sagemaker, ENDPOINT, tracking_uri=uri).variants

    assert variant.run is not None
    assert (variant.run.tracking_uri, variant.run.state) == (uri, "found")


def test_an_unreachable_tracking_server_is_reported_not_raised(registry: Registry) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = f"http://127.0.0.1:{port}"
    # The package names its server; it wins over the fallback URI.
    deployed(registry, {**LINEAGE, lineage.MLFLOW_TRACKING_ARN: server})

    unused = "sqlite:///nonexistent-dir/never-opened.db"
    (variant,) = lineage.chain(registry.sagemaker, ENDPOINT, tracking_uri=unused).variants

    assert variant.run is not None
    assert variant.run.tracking_uri == server
    assert variant.run.state.startswith(f"not reachable: API request to {server}/")
    assert "MLFLOW_HTTP_REQUEST_MAX_RETRIES" not in os.environ  # the bound is lifted afterwards


def test_without_the_mlflow_package_the_run_is_not_reachable(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    deployed(registry)
    monkeypatch.setitem(sys.modules, "mlflow", None)  # `import mlflow` raises ImportError

    unused = "sqlite:///nonexistent-dir/never-opened.db"
    (variant,) = lineage.chain(registry.sagemaker, ENDPOINT, tracking_uri=unused).variants

    assert variant.run is not None
    assert variant.run.state == "not reachable: the mlflow package is not installed"


def test_format_chain_prints_one_link_per_line_in_chain_order(registry: Registry) -> None:
    arn = deployed(registry, {**LINEAGE, lineage.CHAMPION_METRIC_VALUE: "0.7900"})

    found = lineage.chain(registry.sagemaker, ENDPOINT)
    lines = lineage.format_chain(found).splitlines()

    assert lines == [
        f"endpoint {ENDPOINT} (InService)",
        f"  -> endpoint config {found.endpoint_config_name}",
        f"    -> model {found.variants[0].model_name} (variant AllTraffic)",
        f"      -> model package {arn} (version 1, Approved)",
        f"        -> MLflow run {LINEAGE['mlflow_run_id']}: not looked up (no tracking server "
        "known)",
        f"          -> commit {COMMIT}",
        f"          -> training image {IMAGE}",
        f"          -> serving image {IMAGE}",
        f"          -> data sha256 {LINEAGE['data_sha256']}",
        "          -> macro_f1 0.8125 (champion: 0.7900)",
    ]


def test_a_chain_survives_its_json_form(registry: Registry, tracking: tuple[str, str]) -> None:
    deployed(registry, {**LINEAGE, lineage.MLFLOW_RUN_ID: tracking[1]})
    found = lineage.chain(registry.sagemaker, ENDPOINT, tracking_uri=tracking[0])

    again = lineage.Lineage.from_dict(json.loads(json.dumps(found.as_dict())))

    assert again == found


@pytest.mark.parametrize(
    ("properties", "expected"),
    [
        ({"commit": COMMIT}, COMMIT),
        ({"commit": COMMIT.upper()}, None),
        ({"commit": "main"}, None),
        ({}, None),
    ],
)
def test_package_commit_takes_only_a_40_hex_commit(
    properties: dict[str, str], expected: str | None
) -> None:
    assert lineage.package_commit({"CustomerMetadataProperties": properties}) == expected
    assert lineage.package_commit({}) is None


def fake_pulumi(directory: Path, monkeypatch: pytest.MonkeyPatch, outputs: dict[str, Any]) -> Path:
    """A `pulumi` on PATH that prints `outputs` as JSON and records its arguments."""
    bin_dir = directory / "bin"
    bin_dir.mkdir()
    (directory / "out.json").write_text(json.dumps(outputs))
    script = bin_dir / "pulumi"
    script.write_text(f'#!/bin/sh\necho "$@" > {directory}/args.txt\ncat {directory}/out.json\n')
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return directory / "args.txt"


def test_command_prints_the_chain_of_the_stack_endpoint(
    registry: Registry,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    arn = deployed(registry)
    args = fake_pulumi(tmp_path, monkeypatch, {"endpoint_name": ENDPOINT, "region": REGION})
    capsys.readouterr()

    code = lineage.main(["--stack", "dev", "--cwd", str(tmp_path)])

    out, err = capsys.readouterr()
    assert code == 0, err
    assert args.read_text().split() == ["stack", "output", "--json", "--stack", "dev"]
    assert out == lineage.format_chain(lineage.chain(registry.sagemaker, ENDPOINT)) + "\n"
    assert f"-> model package {arn} (version 1, Approved)" in out


def test_command_json_is_the_chain(
    registry: Registry,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    deployed(registry)
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"  # never a file in the working directory
    outputs = {"endpoint_name": ENDPOINT, "region": REGION, "mlflow_tracking_arn": store}
    fake_pulumi(tmp_path, monkeypatch, outputs)
    capsys.readouterr()

    code = lineage.main(["--stack", "dev", "--cwd", str(tmp_path), "--json"])

    document = json.loads(capsys.readouterr().out)
    assert code == 0
    assert lineage.Lineage.from_dict(document) == lineage.chain(
        registry.sagemaker, ENDPOINT, tracking_uri=store
    )
    # The stack's tracking server is used for the run the package names.
    assert document["variants"][0]["run"]["tracking_uri"] == store


@pytest.mark.parametrize("missing", ["endpoint_name", "region"])
def test_command_exits_2_on_a_missing_output_and_says_what_to_run(
    registry: Registry,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    missing: str,
) -> None:
    outputs = {"endpoint_name": ENDPOINT, "region": REGION}
    del outputs[missing]
    fake_pulumi(tmp_path, monkeypatch, outputs)

    code = lineage.main(["--stack", "staging", "--cwd", str(tmp_path)])

    err = capsys.readouterr().err
    assert code == 2
    assert err == (
        f"error: stack staging has no output {missing} (pulumi stack output --stack staging); "
        "run `pulumi up --stack staging` first\n"
    )


def test_command_exits_1_when_nothing_was_deployed(
    registry: Registry,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fake_pulumi(tmp_path, monkeypatch, {"endpoint_name": ENDPOINT, "region": REGION})

    code = lineage.main(["--stack", "dev", "--cwd", str(tmp_path)])

    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith(f"error: stack dev's endpoint {ENDPOINT} does not exist")
    assert err.count("\n") == 1


def test_command_exits_2_without_the_pulumi_cli(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))

    code = lineage.main(["--stack", "prod", "--cwd", str(tmp_path)])

    assert code == 2
    assert capsys.readouterr().err.startswith("error: the pulumi CLI is not on PATH")
