"""`promote lineage --local`: the chain of a local run, computed against local AWS and kept.

Local AWS is the moto server of the local run (`offline.aws.local_aws`); the package is
deployed by the deployer the local run uses (`offline.deployer.LocalDeployer`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from ml import lineage
from offline.aws import LocalAws, local_aws
from offline.deployer import LocalDeployer, local_config
from offline.lineage import LINEAGE_FILE, main, write_local_lineage
from tests.deployer.support import (
    ARTIFACTS_BUCKET,
    COMMIT,
    IMAGE,
    LINEAGE,
    ROLE_ARN,
    approval_event,
)

ACCOUNT = "123456789012"
GROUP = "promote-code-dev-models"
ENDPOINT = "promote-code-dev-endpoint"


@pytest.fixture(scope="module")
def aws() -> Iterator[LocalAws]:
    """One moto server, one deployed package with lineage metadata (the tests only read)."""
    with local_aws("eu-west-1", ACCOUNT) as server:
        sm = server.client("sagemaker")
        sm.create_model_package_group(ModelPackageGroupName=GROUP)
        # Registered approved: moto's UpdateModelPackage drops CustomerMetadataProperties.
        arn = sm.create_model_package(
            ModelPackageGroupName=GROUP,
            ModelApprovalStatus="Approved",
            InferenceSpecification={
                "Containers": [{"Image": IMAGE, "ModelDataUrl": f"s3://{ARTIFACTS_BUCKET}/m"}],
                "SupportedContentTypes": ["text/csv"],
                "SupportedResponseMIMETypes": ["text/csv"],
            },
            CustomerMetadataProperties=LINEAGE,
        )["ModelPackageArn"]
        config = local_config(
            endpoint_name=ENDPOINT,
            model_package_group_name=GROUP,
            execution_role_arn=ROLE_ARN,
            artifacts_bucket=ARTIFACTS_BUCKET,
        )
        deployer = LocalDeployer(config)
        deployer(approval_event(arn, GROUP, 1), server)
        assert deployer.results[0].action == "created", deployer.results
        yield server


def test_writes_the_chain_of_the_local_endpoint(aws: LocalAws, tmp_path: Path) -> None:
    path = write_local_lineage(aws, ENDPOINT, tmp_path / "dev")

    assert path == tmp_path / "dev" / LINEAGE_FILE
    document = json.loads(path.read_text())
    expected = lineage.chain(aws.client("sagemaker"), ENDPOINT)
    assert lineage.Lineage.from_dict(document) == expected
    assert document["variants"][0]["package"]["metadata"]["commit"] == COMMIT
    assert document["variants"][0]["model_tags"][lineage.COMMIT_TAG] == COMMIT


def test_the_same_state_writes_the_same_bytes(aws: LocalAws, tmp_path: Path) -> None:
    first = write_local_lineage(aws, ENDPOINT, tmp_path / "a").read_bytes()
    second = write_local_lineage(aws, ENDPOINT, tmp_path / "b").read_bytes()

    assert first == second


def test_a_chain_that_cannot_be_followed_leaves_no_older_lineage(
    aws: LocalAws, tmp_path: Path
) -> None:
    stale = write_local_lineage(aws, ENDPOINT, tmp_path)

    with pytest.raises(lineage.LineageError, match="endpoint gone does not exist"):
        write_local_lineage(aws, "gone", tmp_path)

    assert not stale.exists()


def test_local_prints_the_recorded_chain(
    aws: LocalAws, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_local_lineage(aws, ENDPOINT, tmp_path)

    code = main(["--stack", "dev", "--local", "--workdir", str(tmp_path)])

    out = capsys.readouterr().out
    assert code == 0
    chain = lineage.format_chain(lineage.chain(aws.client("sagemaker"), ENDPOINT))
    assert out == f"lineage of the local run of stack dev ({path}):\n{chain}\n"
    assert f"-> commit {COMMIT}" in out


def test_local_json_is_the_recorded_chain(
    aws: LocalAws, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_local_lineage(aws, ENDPOINT, tmp_path)

    code = main(["--stack", "dev", "--local", "--workdir", str(tmp_path), "--json"])

    assert code == 0
    assert json.loads(capsys.readouterr().out) == json.loads(path.read_text())


def test_local_without_a_run_says_to_run_the_pipeline_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)  # the default work directory, build/local/<stack>, is relative

    code = main(["--stack", "staging", "--local"])

    assert code == 2
    assert capsys.readouterr().err == (
        f"error: {Path('build/local/staging') / LINEAGE_FILE}: no lineage of a local run of "
        "stack staging; run `promote pipeline run --local --stack staging` first\n"
    )


def test_local_with_a_damaged_file_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / LINEAGE_FILE).write_text('{"endpoint_name": "e"}')

    code = main(["--stack", "dev", "--local", "--workdir", str(tmp_path)])

    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith(f"error: {tmp_path / LINEAGE_FILE}: not a lineage file (KeyError")
    assert err.endswith("run `promote pipeline run --local --stack dev` first\n")
    assert err.count("\n") == 1


def test_without_local_it_reads_the_real_stack(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no pulumi CLI here

    code = main(["--stack", "prod"])

    assert code == 2
    assert capsys.readouterr().err.startswith("error: the pulumi CLI is not on PATH")
