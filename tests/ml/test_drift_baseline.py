"""evaluate-model's drift baseline, and the monitor reading it the same way."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ml.monitoring import baseline as baselines
from ml.serving.inference import predict_fn
from ml.steps import drift_baseline, evaluate
from tests.ml.drift_support import Trained, train_with_baseline


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    return train_with_baseline(tmp_path_factory.mktemp("drift-baseline"))


def test_evaluate_writes_the_baseline_next_to_the_report(trained: Trained) -> None:
    document = json.loads(trained.baseline_path.read_text())
    report = json.loads((trained.evaluation / evaluate.EVALUATION_FILE).read_text())
    assert "drift" not in json.dumps(report)  # evaluation.json keeps its own shape
    test = trained.test_split()
    assert document["format"] == "promote-code/drift-baseline"
    assert document["evaluation_notes"] == len(test) == report["test_notes"]
    labels = json.loads((trained.model_dir / "labels.json").read_text())
    assert sorted(document["predicted_class"]) == sorted(labels)
    for key in ("confidence", "length", "oov"):
        histogram = document[key]
        assert len(histogram["shares"]) == len(histogram["cuts"]) + 1
        assert sum(histogram["shares"]) == pytest.approx(1.0)
    assert sum(document["predicted_class"].values()) == pytest.approx(1.0)
    # Deciles: about a tenth of the evaluation notes per length bin.
    assert max(document["length"]["shares"]) < 0.2
    assert 0 < document["vocabulary"]["fill"] < 0.05


def test_the_baseline_predictions_are_what_the_endpoint_answers(trained: Trained) -> None:
    texts = trained.test_split()["text"].tolist()
    ids, scores = drift_baseline.served_predictions(trained.model.estimator, texts)
    answers = predict_fn(texts, trained.model)
    assert [trained.model.labels[i] for i in ids] == [a["label"] for a in answers]
    assert scores is not None
    assert scores.tolist() == [a["score"] for a in answers]
    document = json.loads(trained.baseline_path.read_text())
    shares = {
        lb: n / len(texts)
        for lb, n in zip(*np.unique([a["label"] for a in answers], return_counts=True), strict=True)
    }
    assert {k: v for k, v in document["predicted_class"].items() if v} == pytest.approx(shares)


def test_evaluate_and_the_monitor_compute_the_same_text_features(trained: Trained) -> None:
    baseline = baselines.load(trained.baseline_path)
    texts = [*trained.test_split()["text"].head(40), "Ticket: printer vpn outage", "", "a b"]
    spec = json.loads(trained.baseline_path.read_text())["text"]
    vocabulary = drift_baseline.training_vocabulary(
        drift_baseline.read_train_texts(trained.splits / "train"), spec
    )
    assert baseline.vocabulary is not None
    assert np.array_equal(vocabulary, baseline.vocabulary)
    expected = drift_baseline.note_features(texts, spec, vocabulary)
    # The monitor's featurizer caches words across batches: feed it twice, in two batches.
    featurizer = baselines.TextFeaturizer(baseline.text, baseline.vocabulary)
    for _ in range(2):
        head = featurizer.features(texts[:10])
        tail = featurizer.features(texts[10:])
        lengths = np.concatenate([head[0], tail[0]])
        assert head[1] is not None and tail[1] is not None and expected[1] is not None
        rates = np.concatenate([head[1], tail[1]])
        assert lengths.tolist() == expected[0].tolist()
        assert rates.tolist() == expected[1].tolist()
        assert head[2] + tail[2] == expected[2]
        assert head[3] + tail[3] == expected[3]


def test_training_words_are_known_and_foreign_words_are_not(trained: Trained) -> None:
    baseline = baselines.load(trained.baseline_path)
    train_text = drift_baseline.read_train_texts(trained.splits / "train")[0]
    lengths, rates, _, _ = baselines.text_features(
        [train_text, "zyxwvut qqqqrrrr kubernetes invoice"], baseline.text, baseline.vocabulary
    )
    assert rates is not None
    assert rates[0] == 0.0  # every word of a training note was seen in training
    assert rates[1] == 1.0
    assert lengths[1] == 4


def test_without_the_train_split_the_baseline_has_no_oov_part(
    trained: Trained, tmp_path: Path
) -> None:
    evaluate.run(trained.model_dir, trained.splits / "test", tmp_path)
    document = json.loads((tmp_path / drift_baseline.DRIFT_BASELINE_FILE).read_text())
    assert document["oov"] is None
    assert document["vocabulary"] is None
    assert document["length"] == json.loads(trained.baseline_path.read_text())["length"]
    assert baselines.load(tmp_path / drift_baseline.DRIFT_BASELINE_FILE).oov is None


def test_main_takes_the_train_split(trained: Trained, tmp_path: Path) -> None:
    args = [
        "--model-dir", str(trained.model_dir),
        "--test-dir", str(trained.splits / "test"),
        "--output-dir", str(tmp_path),
        "--train-dir", str(trained.splits / "train"),
    ]  # fmt: skip
    assert evaluate.main(args) == 0
    assert (tmp_path / drift_baseline.DRIFT_BASELINE_FILE).read_text() == (
        trained.baseline_path.read_text()
    )  # deterministic
    assert evaluate.main([*args[:-1], str(tmp_path / "missing")]) == 1


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"format": "something-else"}, "not a drift baseline"),
        ({"version": 99}, "version 99; this monitor reads version 1"),
        ({"length": None}, "no 'length' histogram"),
    ],
)
def test_the_monitor_refuses_a_baseline_it_cannot_read(
    trained: Trained, tmp_path: Path, change: dict[str, object], message: str
) -> None:
    document = {**json.loads(trained.baseline_path.read_text()), **change}
    path = tmp_path / "drift_baseline.json"
    path.write_text(json.dumps(document))
    with pytest.raises(baselines.BaselineError, match=rf"drift_baseline\.json: .*{message}"):
        baselines.load(path)
