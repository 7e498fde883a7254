"""Champion/challenger in evaluate-model, on the realistic corpus, against moto's registry.

The champion is the group's newest Approved package; evaluate-model downloads its
ModelDataUrl archive and scores it on the challenger's test split with the same
scorer. Models are trained once per module (in-process, small corpus).
"""

from __future__ import annotations

import itertools
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pandas as pd
import pytest
from moto import mock_aws

from ml.data import realistic
from ml.steps import champions, evaluate, preprocess, train

NOTES = 900
GROUP = "promote-code-dev-models"
BUCKET = "promote-code-dev-artifacts-0a1b2c"
IMAGE = "111111111111.dkr.ecr.eu-west-1.amazonaws.com/promote-code/training@sha256:" + "ab" * 32


@pytest.fixture(scope="module")
def splits(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("champion")
    (root / "in").mkdir()
    realistic.generate(NOTES).to_csv(root / "in" / "notes.csv", index=False)
    preprocess.preprocess(root / "in", root / "out")
    return root / "out"


def _train(splits: Path, target: Path, *, damaged: bool) -> Path:
    """A model directory (with its model.tar.gz); `damaged`: half the train labels shuffled."""
    train_dir = splits / "train"
    if damaged:
        train_dir = target / "damaged-train"
        train_dir.mkdir(parents=True)
        frame = pd.read_csv(splits / "train" / "train.csv", keep_default_na=False)
        rng = np.random.default_rng(7)
        half = rng.choice(len(frame), size=len(frame) // 2, replace=False)
        frame.loc[half, "label_id"] = rng.permutation(frame.loc[half, "label_id"].to_numpy())
        frame.to_csv(train_dir / "train.csv", index=False)
        (train_dir / "labels.json").write_text((splits / "train" / "labels.json").read_text())
    model = target / "model"
    train.train(train_dir, splits / "validation", model, train.Hyperparameters())
    with tarfile.open(model / "model.tar.gz", "w:gz") as tar:
        for name in ("model.joblib", "labels.json", "model.json"):
            tar.add(model / name, arcname=name)
    return model


@pytest.fixture(scope="module")
def good(splits: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _train(splits, tmp_path_factory.mktemp("good"), damaged=False)


@pytest.fixture(scope="module")
def damaged(splits: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _train(splits, tmp_path_factory.mktemp("damaged"), damaged=True)


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[champions.Registry]:
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    with mock_aws():
        session = boto3.session.Session(region_name="eu-west-1")
        found = champions.Registry(session.client("sagemaker"), session.client("s3"))
        found.s3.create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
        )
        found.sagemaker.create_model_package_group(ModelPackageGroupName=GROUP)
        yield found


_UPLOADS = itertools.count()


def register(
    registry: champions.Registry, archive: bytes | None, status: str = "Approved", key: str = ""
) -> str:
    """A package of the group whose ModelDataUrl holds `archive` (None: nothing uploaded)."""
    key = key or f"models/{next(_UPLOADS)}/model.tar.gz"
    if archive is not None:
        registry.s3.put_object(Bucket=BUCKET, Key=key, Body=archive)
    arn: str = registry.sagemaker.create_model_package(
        ModelPackageGroupName=GROUP,
        InferenceSpecification={
            "Containers": [{"Image": IMAGE, "ModelDataUrl": f"s3://{BUCKET}/{key}"}],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["application/json"],
        },
        ModelApprovalStatus=status,
    )["ModelPackageArn"]
    return arn


def judge(model: Path, splits: Path, out: Path, registry: champions.Registry) -> dict[str, Any]:
    return evaluate.run(
        model,
        splits / "test",
        out,
        train_dir=splits / "train",
        model_package_group=GROUP,
        registry=registry,
        environ={},
    )


def archive_of(model: Path) -> bytes:
    return (model / "model.tar.gz").read_bytes()


def test_the_first_model_is_judged_by_the_threshold_alone(
    damaged: Path, splits: Path, tmp_path: Path, registry: champions.Registry
) -> None:
    # Registered but never approved: not a champion.
    register(registry, archive_of(damaged), status="PendingManualApproval")
    report = judge(damaged, splits, tmp_path, registry)
    champion = report["champion"]
    assert champion["status"] == "none"
    assert (champion["model_package_arn"], champion["value"]) == (None, None)
    assert (champion["shortfall"], champion["passed"]) == (0.0, True)
    assert report["approval"]["passed"] is True
    assert "no approved champion" in report["summary"]
    assert report["lineage"]["champion_metric_value"] == "none"


def test_a_damaged_challenger_is_not_approved_over_a_good_champion(
    good: Path, damaged: Path, splits: Path, tmp_path: Path, registry: champions.Registry
) -> None:
    first = judge(damaged, splits, tmp_path / "alone", registry)
    # Half its labels shuffled, it still passes the threshold and the baseline on its own.
    assert first["approval"]["checks"]["threshold"] and first["approval"]["checks"]["baseline"]
    arn = register(registry, archive_of(good))
    report = judge(damaged, splits, tmp_path / "challenged", registry)
    champion = report["champion"]
    value = judge(good, splits, tmp_path / "good", registry)["champion"]["challenger"]
    assert champion["status"] == "scored"
    assert champion["model_package_arn"] == arn
    assert champion["value"] == pytest.approx(value)  # the same scorer on the same split
    assert champion["challenger"] == first["approval"]["value"]
    assert champion["shortfall"] == pytest.approx(champion["value"] - champion["challenger"])
    assert champion["shortfall"] > evaluate.DEFAULT_CHAMPION_TOLERANCE
    assert champion["passed"] is False
    assert report["approval"]["passed"] is False
    assert report["summary"].startswith(
        f"not approved: macro_f1 {champion['challenger']:.3f} is {champion['shortfall']:.3f} "
        f"below the champion ({arn}, {champion['value']:.3f}), more than the tolerance 0.01"
    )
    assert report["lineage"]["champion_metric_value"] == f"{champion['value']:.6f}"


def test_a_better_challenger_is_approved_and_the_newest_approved_is_the_champion(
    good: Path, damaged: Path, splits: Path, tmp_path: Path, registry: champions.Registry
) -> None:
    register(registry, archive_of(good))  # older
    newest = register(registry, archive_of(damaged))
    register(registry, archive_of(good), status="Rejected")  # newer, but not approved
    report = judge(good, splits, tmp_path, registry)
    champion = report["champion"]
    assert champion["model_package_arn"] == newest
    assert champion["shortfall"] < 0  # the challenger is better
    assert champion["passed"] is True
    assert report["approval"]["passed"] is True
    assert f"above the champion ({newest}" in report["summary"]


def test_a_tolerance_lets_a_slightly_worse_challenger_through(
    good: Path, damaged: Path, splits: Path, tmp_path: Path, registry: champions.Registry
) -> None:
    register(registry, archive_of(good))
    shortfall = judge(damaged, splits, tmp_path / "a", registry)["champion"]["shortfall"]
    report = evaluate.run(
        damaged,
        splits / "test",
        tmp_path / "b",
        model_package_group=GROUP,
        champion_tolerance=shortfall + 1e-9,
        registry=registry,
        environ={},
    )
    assert report["champion"]["passed"] is True
    assert report["approval"]["passed"] is True
    assert "within the tolerance" in report["summary"]


def test_an_unreadable_champion_is_reported_and_the_threshold_judges(
    damaged: Path, splits: Path, tmp_path: Path, registry: champions.Registry
) -> None:
    arn = register(registry, None)  # its archive was deleted
    report = judge(damaged, splits, tmp_path, registry)
    champion = report["champion"]
    assert (champion["status"], champion["model_package_arn"]) == ("unreadable", arn)
    assert (champion["shortfall"], champion["passed"]) == (0.0, True)
    assert "NoSuchKey" in champion["note"] or "does not exist" in champion["note"]
    assert report["approval"]["passed"] is True
    assert f"the champion {arn} could not be read" in report["summary"]


def test_a_corrupt_champion_leaves_the_challenger_for_a_person(
    good: Path, splits: Path, tmp_path: Path, registry: champions.Registry
) -> None:
    arn = register(registry, b"not a gzip archive")
    report = judge(good, splits, tmp_path, registry)
    champion = report["champion"]
    assert (champion["status"], champion["model_package_arn"]) == ("corrupt", arn)
    assert champion["shortfall"] == champions.UNSCORABLE_SHORTFALL
    assert champion["passed"] is False
    assert report["approval"]["checks"]["threshold"] is True
    assert report["approval"]["passed"] is False
    assert "left for manual approval" in report["summary"]


class RefusingSageMaker:
    def list_model_packages(self, **_: Any) -> Any:
        raise RuntimeError("An error occurred (AccessDeniedException): not authorized")


def test_a_registry_that_cannot_be_listed_fails_the_step(
    good: Path, splits: Path, tmp_path: Path
) -> None:
    refusing = champions.Registry(RefusingSageMaker(), None)
    with pytest.raises(champions.ChampionError, match="sagemaker:ListModelPackages"):
        judge(good, splits, tmp_path, refusing)
