"""Step functions on small data: preprocess, train, evaluate, approve."""

from __future__ import annotations

import json
import re
import tarfile
from pathlib import Path
from typing import Any

import boto3
import joblib
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from moto import mock_aws
from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer
from sklearn.feature_selection import SelectKBest, chi2
from sklearn.pipeline import Pipeline
from sklearn.svm import LinearSVC

from ml.data.synthetic import generate
from ml.steps import approve, evaluate, notes_csv, preprocess, scoring, sparse_selection, train

SMALL = generate(notes_per_specialty=20, seed=3)


def write(frame: pd.DataFrame, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return path


@pytest.fixture
def preprocessed(tmp_path: Path) -> Path:
    write(SMALL, tmp_path / "in" / "mtsamples.csv")
    preprocess.preprocess(tmp_path / "in", tmp_path / "out")
    return tmp_path / "out"


@pytest.fixture
def trained(preprocessed: Path, tmp_path: Path) -> Path:
    model_dir = tmp_path / "model"
    train.train(
        preprocessed / "train", preprocessed / "validation", model_dir, train.Hyperparameters()
    )
    return model_dir


# -- preprocess --------------------------------------------------------------------------


def test_clean_normalises_and_drops_unusable_rows() -> None:
    raw = pd.DataFrame(
        {
            "medical_specialty": [" Urology", "Urology ", "", "Neurology"],
            "transcription": ["  Cystoscopy \n was  done. ", "PSA rose.", "no label", "   "],
        }
    )
    cleaned = notes_csv.clean(raw)
    assert cleaned.to_dict("records") == [
        {"text": "Cystoscopy was done.", "label": "Urology"},
        {"text": "PSA rose.", "label": "Urology"},
    ]


def test_preprocess_splits_70_15_15_with_every_label_everywhere(preprocessed: Path) -> None:
    splits = {s: pd.read_csv(preprocessed / s / f"{s}.csv") for s in preprocess.SPLITS}
    sizes = {s: len(f) for s, f in splits.items()}
    assert sizes == {"train": 112, "validation": 24, "test": 24}  # 8 labels x (14 + 3 + 3)
    labels = json.loads((preprocessed / "train" / "labels.json").read_text())
    assert labels == sorted(label.strip() for label in SMALL["medical_specialty"].unique())
    for frame in splits.values():
        assert set(frame["label"]) == set(labels)
        assert (frame["label"].map(labels.index) == frame["label_id"]).all()
    train_texts = set(splits["train"]["text"])
    assert not train_texts & set(splits["test"]["text"])


def test_preprocess_is_reproducible_and_seeded(tmp_path: Path) -> None:
    write(SMALL, tmp_path / "in" / "data.csv")
    preprocess.preprocess(tmp_path / "in", tmp_path / "a")
    preprocess.preprocess(tmp_path / "in", tmp_path / "b")
    preprocess.preprocess(tmp_path / "in", tmp_path / "c", seed=7)
    a, b, c = ((tmp_path / x / "test" / "test.csv").read_text() for x in "abc")
    assert a == b
    assert a != c


def test_preprocess_keeps_an_uploaded_split(tmp_path: Path) -> None:
    # SMALL is ordered by label: split by position within each label (every label in train).
    position = SMALL.groupby("medical_specialty").cumcount()
    for split, rows in (
        ("train", SMALL[position < 12]),
        ("validation", SMALL[(position >= 12) & (position < 16)]),
        ("test", SMALL[position >= 16]),
    ):
        write(rows, tmp_path / "in" / f"{split}.csv")
    counts = preprocess.preprocess(tmp_path / "in", tmp_path / "out")
    assert (counts["train"], counts["validation"], counts["test"]) == (96, 32, 32)
    kept = pd.read_csv(tmp_path / "out" / "test" / "test.csv")
    assert kept["text"].tolist() == SMALL[position >= 16]["transcription"].str.strip().tolist()


def test_preprocess_rejects_an_uploaded_split_with_labels_missing_from_train(
    tmp_path: Path,
) -> None:
    position = SMALL.groupby("medical_specialty").cumcount()
    urology = SMALL["medical_specialty"].str.strip() == "Urology"
    write(SMALL[(position < 12) & ~urology], tmp_path / "in" / "train.csv")
    write(SMALL[(position >= 12) & (position < 16)], tmp_path / "in" / "validation.csv")
    write(SMALL[(position >= 16) & ~urology], tmp_path / "in" / "test.csv")
    with pytest.raises(
        notes_csv.DataError, match=r"missing from train\.csv \(validation: \['Urology'\]\)"
    ):
        preprocess.preprocess(tmp_path / "in", tmp_path / "out")
    assert not (tmp_path / "out" / "train" / "labels.json").exists()


def test_preprocess_rejects_missing_columns(tmp_path: Path) -> None:
    write(SMALL.drop(columns=["transcription"]), tmp_path / "in" / "bad.csv")
    with pytest.raises(notes_csv.DataError, match=r"missing column\(s\) \['transcription'\]"):
        preprocess.preprocess(tmp_path / "in", tmp_path / "out")


def test_preprocess_rejects_an_empty_dataset(tmp_path: Path) -> None:
    write(SMALL.iloc[0:0], tmp_path / "in" / "empty.csv")
    with pytest.raises(notes_csv.DataError, match="no usable notes"):
        preprocess.preprocess(tmp_path / "in", tmp_path / "out")
    (tmp_path / "in" / "empty.csv").write_text("")
    with pytest.raises(notes_csv.DataError, match="the file is empty"):
        preprocess.preprocess(tmp_path / "in", tmp_path / "out")


def test_preprocess_main_reports_errors_with_exit_status(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "in").mkdir()
    status = preprocess.main(
        ["--input-dir", str(tmp_path / "in"), "--output-dir", str(tmp_path / "o")]
    )
    assert status == 1
    assert "no CSV files found" in capsys.readouterr().err


# -- train -------------------------------------------------------------------------------


def test_hyperparameters_parse_sagemaker_strings(capsys: pytest.CaptureFixture[str]) -> None:
    hp = train.Hyperparameters.from_mapping(
        {"c": "0.5", "hash-bits": "16", "max-features": "500", "ngram-max": "1"}
    )
    assert (hp.c, hp.hash_bits, hp.max_features, hp.ngram_max, hp.trainer) == (
        0.5,
        16,
        500,
        1,
        "tfidf-linear",
    )
    # What an old definition passed: refused, with what to set instead.
    with pytest.raises(train.TrainingError, match="mean nothing to the tfidf-linear trainer"):
        train.Hyperparameters.from_mapping({"epochs": "3", "batch-size": "16"})
    with pytest.raises(train.TrainingError, match="unknown trainer"):
        train.Hyperparameters.from_mapping({"trainer": "bert"})
    with pytest.raises(train.TrainingError, match="unknown hyperparameter"):
        train.Hyperparameters.from_mapping({"epoch": "3"})
    with pytest.raises(train.TrainingError, match="bad hyperparameter"):
        train.Hyperparameters.from_mapping({"c": "much"})
    with pytest.raises(train.TrainingError, match="class-weight"):
        train.Hyperparameters.from_mapping({"class-weight": "auto"})


def test_train_writes_a_model_that_learns(trained: Path) -> None:
    metadata = json.loads((trained / "model.json").read_text())
    assert metadata["format"] == "sklearn-joblib"
    assert metadata["hyperparameters"]["c"] == train.Hyperparameters.c
    assert "epochs" not in metadata["hyperparameters"]
    # 8 balanced classes: chance is 0.125.
    assert metadata["metrics"]["validation_accuracy"] >= 0.6
    assert metadata["majority_label"] in metadata["train_label_counts"]
    assert len(json.loads((trained / "labels.json").read_text())) == 8


def test_train_honours_its_hyperparameters(preprocessed: Path, tmp_path: Path) -> None:
    hp = train.Hyperparameters(c=0.01, max_features=300, ngram_max=1, hash_bits=16)
    train.train(preprocessed / "train", None, tmp_path / "m", hp)
    model = joblib.load(tmp_path / "m" / "model.joblib")
    assert list(model.named_steps) == ["hashing", "tfidf", "classifier"]
    assert model.named_steps["classifier"].C == 0.01
    assert model.named_steps["hashing"].ngram_range == (1, 1)
    # The chi2 selection is folded in: 300 columns of 2**16 carry an idf and weights.
    idf = model.named_steps["tfidf"].idf_
    assert idf.shape == (2**16,)
    assert np.count_nonzero(idf) == 300
    weights = model.named_steps["classifier"].coef_
    assert sp.issparse(weights)
    assert weights.dtype == np.float32
    assert set(np.unique(weights.tocoo().col)) <= set(np.flatnonzero(idf))
    # Sparse end to end: the model's features are a sparse matrix.
    features = model[:-1].transform(["a note about the knee"])
    assert features.format == "csr"


def test_best_columns_are_scikit_learns_chi2_choice(preprocessed: Path) -> None:
    frame = train.read_split(preprocessed / "train", "train")
    counts = HashingVectorizer(n_features=2**14, alternate_sign=False, norm=None).transform(
        frame["text"]
    )
    labels = frame["label_id"].to_numpy()
    chosen = sparse_selection.best_columns(counts, labels, 400)
    expected = SelectKBest(chi2, k=400).fit(counts, labels).get_support(indices=True)
    assert chosen.tolist() == expected.tolist()
    # Asked for more columns than occur: only the ones that occur.
    occurring = np.unique(counts.indices)
    assert sparse_selection.best_columns(counts, labels, 2**14).tolist() == occurring.tolist()


def test_folded_model_scores_as_hashing_select_tfidf_svm(preprocessed: Path) -> None:
    frame = train.read_split(preprocessed / "train", "train")
    texts, labels = frame["text"].tolist(), frame["label_id"].to_numpy()
    hp = train.Hyperparameters(hash_bits=16, max_features=500)
    model = train.train_tfidf_linear(texts, labels, 8, hp)
    unfolded = Pipeline(
        [
            (
                "hashing",
                HashingVectorizer(
                    ngram_range=(1, 2),
                    n_features=2**16,
                    alternate_sign=False,
                    norm=None,
                    dtype=np.float32,
                ),
            ),
            ("select", SelectKBest(chi2, k=500)),
            ("tfidf", TfidfTransformer(sublinear_tf=True)),
            ("svm", LinearSVC(C=hp.c, class_weight="balanced", random_state=hp.seed)),
        ]
    ).fit(texts, labels)
    probe = [*texts[:20], "Slit lamp shows a cataract.", "no known words here"]
    np.testing.assert_allclose(
        model.decision_function(probe), unfolded.decision_function(probe), atol=1e-5
    )


def test_train_main_uses_the_container_contract(preprocessed: Path, tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.mkdir()
    (config / "hyperparameters.json").write_text(json.dumps({"c": "0.7", "seed": "2"}))
    env = {
        "SM_CHANNEL_TRAIN": str(preprocessed / "train"),
        "SM_CHANNEL_VALIDATION": str(preprocessed / "validation"),
        "SM_MODEL_DIR": str(tmp_path / "model"),
        "SM_INPUT_CONFIG_DIR": str(config),
        "SM_OUTPUT_DIR": str(tmp_path),
    }
    assert train.main(["train"], env) == 0
    metadata = json.loads((tmp_path / "model" / "model.json").read_text())
    assert metadata["hyperparameters"]["c"] == 0.7


def test_train_main_writes_the_failure_reason(tmp_path: Path) -> None:
    env = {
        "SM_CHANNEL_TRAIN": str(tmp_path / "none"),
        "SM_OUTPUT_DIR": str(tmp_path),
        "SM_HPS": "{}",
    }
    assert train.main([], env) == 1
    assert "labels.json" in (tmp_path / "failure").read_text()


# -- evaluate ----------------------------------------------------------------------------


def test_evaluate_writes_the_report_from_a_model_archive(
    trained: Path, preprocessed: Path, tmp_path: Path
) -> None:
    packed = tmp_path / "packed"
    packed.mkdir()
    with tarfile.open(packed / "model.tar.gz", "w:gz") as tar:
        for path in trained.iterdir():
            tar.add(path, arcname=path.name)
    report = evaluate.run(packed, preprocessed / "test", tmp_path / "eval")
    written = json.loads((tmp_path / "eval" / "evaluation.json").read_text())
    assert written == report
    metrics = report["multiclass_classification_metrics"]
    assert 0.6 <= metrics["accuracy"]["value"] <= 1.0
    assert report["test_notes"] == 24
    total = sum(sum(row.values()) for row in metrics["confusion_matrix"].values())
    assert total == 24


def test_evaluate_rejects_unknown_labels(trained: Path, preprocessed: Path, tmp_path: Path) -> None:
    test = pd.read_csv(preprocessed / "test" / "test.csv")
    test.loc[0, "label"] = "Podiatry"
    write(test, tmp_path / "test" / "test.csv")
    with pytest.raises(scoring.EvaluationError, match=r"not trained on: \['Podiatry'\]"):
        evaluate.run(trained, tmp_path / "test", tmp_path / "eval")


@pytest.mark.parametrize("note", ["NA", "N/A", "null", "NaN", "None", ""])
def test_train_and_evaluate_read_na_like_notes_as_text(
    preprocessed: Path, tmp_path: Path, note: str
) -> None:
    # "" survives as well: preprocess drops empty notes, but a hand-made split may hold one.
    for split in ("train", "test"):
        frame = pd.read_csv(preprocessed / split / f"{split}.csv", keep_default_na=False)
        frame.loc[0, "text"] = note
        write(frame, preprocessed / split / f"{split}.csv")
    assert train.read_split(preprocessed / "train", "train")["text"].tolist()[0] == note
    assert scoring.read_test(preprocessed / "test")["text"].tolist()[0] == note

    train.train(preprocessed / "train", None, tmp_path / "model", train.Hyperparameters())
    report = evaluate.run(tmp_path / "model", preprocessed / "test", tmp_path / "eval")
    assert report["test_notes"] == 24


def test_evaluate_rejects_empty_test_data(trained: Path, tmp_path: Path) -> None:
    write(pd.DataFrame(columns=["text", "label", "label_id"]), tmp_path / "test" / "test.csv")
    with pytest.raises(scoring.EvaluationError, match="empty"):
        evaluate.run(trained, tmp_path / "test", tmp_path / "eval")


def test_evaluate_main_fails_without_a_model(tmp_path: Path) -> None:
    (tmp_path / "model").mkdir()
    args = [
        "--model-dir",
        str(tmp_path / "model"),
        "--test-dir",
        str(tmp_path),
        "--output-dir",
        str(tmp_path / "o"),
    ]
    assert evaluate.main(args) == 1


# -- approve -----------------------------------------------------------------------------


@mock_aws
def test_approve_sets_the_package_approved() -> None:
    client = boto3.client("sagemaker", region_name="eu-west-1")
    client.create_model_package_group(ModelPackageGroupName="models")
    arn = client.create_model_package(
        ModelPackageGroupName="models",
        ModelApprovalStatus="PendingManualApproval",
        InferenceSpecification={
            "Containers": [
                {"Image": "111111111111.dkr.ecr.eu-west-1.amazonaws.com/t@sha256:" + "0" * 64}
            ],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["application/json"],
        },
    )["ModelPackageArn"]
    before = client.describe_model_package(ModelPackageName=arn)["ModelApprovalStatus"]
    assert before == "PendingManualApproval"
    assert approve.approve(client, arn, "accuracy 0.9 >= 0.7") == "Approved"
    described = client.describe_model_package(ModelPackageName=arn)
    assert described["ModelApprovalStatus"] == "Approved"
    assert described["ApprovalDescription"] == "accuracy 0.9 >= 0.7"


def test_approve_rejects_an_unversioned_arn() -> None:
    with pytest.raises(approve.ApprovalError, match="versioned model package ARN"):
        approve.approve(object(), "arn:aws:sagemaker:eu-west-1:1:model-package-group/x", "")


def test_training_log_feeds_the_definitions_metric_regexes(
    definition: dict[str, Any],
    preprocessed: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    env = {
        "SM_CHANNEL_TRAIN": str(preprocessed / "train"),
        "SM_CHANNEL_VALIDATION": str(preprocessed / "validation"),
        "SM_MODEL_DIR": str(tmp_path / "model"),
        "SM_HPS": json.dumps({"seed": "2"}),
    }
    assert train.main([], env) == 0
    log = capsys.readouterr().out
    training = next(s for s in definition["Steps"] if s["Name"] == "train-model")
    definitions = training["Arguments"]["AlgorithmSpecification"]["MetricDefinitions"]
    assert {d["Name"] for d in definitions} == {
        "train_accuracy",
        "validation_accuracy",
        "notes_per_second",
    }
    for metric in definitions:
        match = re.search(metric["Regex"], log)
        assert match, f"{metric['Name']} not in the training log"
        assert float(match.group(1)) > 0
