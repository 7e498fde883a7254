"""The endpoint handler: model_fn / input_fn / predict_fn / output_fn."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from ml.data.synthetic import generate
from ml.serving import inference
from ml.serving.server import gunicorn_options, worker_count
from ml.steps import preprocess, train


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("serving")
    (root / "in").mkdir()
    generate(notes_per_specialty=20, seed=5).to_csv(root / "in" / "notes.csv", index=False)
    preprocess.preprocess(root / "in", root / "out")
    train.train(root / "out" / "train", None, root / "model", train.Hyperparameters())
    return root / "model"


CARDIO = "Echocardiogram shows a reduced ejection fraction. Troponin was mildly elevated."
EYE = "Slit lamp examination shows a nuclear sclerotic cataract. Started on timolol drops."


def test_json_round_trip(model_dir: Path) -> None:
    model = inference.model_fn(model_dir)
    notes = inference.input_fn(json.dumps({"instances": [CARDIO, EYE]}), "application/json")
    body, content_type = inference.output_fn(inference.predict_fn(notes, model), "application/json")
    assert content_type == "application/json"
    predictions = json.loads(body)["predictions"]
    assert [p["label"] for p in predictions] == ["Cardiovascular / Pulmonary", "Ophthalmology"]
    # The default linear SVM has no probabilities; its score ranks the labels.
    assert all(p["probability"] is None for p in predictions)
    assert all(0 < p["score"] <= 1 for p in predictions)


def test_csv_round_trip(model_dir: Path) -> None:
    model = inference.model_fn(model_dir)
    request = pd.DataFrame({"t": [CARDIO, EYE]}).to_csv(index=False, header=False)
    notes = inference.input_fn(request.encode(), "text/csv; charset=utf-8")
    assert notes == [CARDIO, EYE]
    body, content_type = inference.output_fn(inference.predict_fn(notes, model), "text/csv")
    assert content_type == "text/csv"
    labels = [line.split(",")[0] for line in body.splitlines()]
    assert labels == ["Cardiovascular / Pulmonary", "Ophthalmology"]


def test_csv_notes_with_commas_are_never_cut() -> None:
    request = (
        "History of HTN, DM, CAD. Presents with chest pain, diaphoresis.\r\n"
        "\n"
        "Cataract, left eye; timolol, 0.5%\n"
        '"Quoted, as one CSV field, with ""quotes"" and\na line break"\n'
        '"two", "fields"\n'
        '"no closing quote, still one note\n'
        "Last line, no newline"
    )
    assert inference.input_fn(request.encode(), "text/csv") == [
        "History of HTN, DM, CAD. Presents with chest pain, diaphoresis.",
        "Cataract, left eye; timolol, 0.5%",
        'Quoted, as one CSV field, with "quotes" and\na line break',
        '"two", "fields"',
        '"no closing quote, still one note',
        "Last line, no newline",
    ]


def test_csv_note_with_commas_is_classified_whole(model_dir: Path) -> None:
    model = inference.model_fn(model_dir)
    notes = inference.input_fn(f"History of HTN, DM. {EYE}\n", "text/csv")
    assert notes == [f"History of HTN, DM. {EYE}"]
    (prediction,) = inference.predict_fn(notes, model)
    assert prediction["label"] == "Ophthalmology"


def test_non_utf8_body_is_a_clear_request_error() -> None:
    with pytest.raises(inference.InferenceError, match="not UTF-8"):
        inference.input_fn("Caf\u00e9 note".encode("latin-1"), "text/csv")


class _NoProbabilities:
    classes_ = (0, 1)

    def predict(self, notes: list[str]) -> list[int]:
        return [1 for _ in notes]


def test_a_model_without_probabilities_gives_null_not_nan() -> None:
    model = inference.LoadedModel(estimator=_NoProbabilities(), labels=("Neurology", "Urology"))
    prediction = inference.predict_fn(["a note"], model)
    assert prediction == [{"label": "Urology", "probability": None, "score": None}]
    body, _ = inference.output_fn(prediction, "application/json")
    # Strict JSON: NaN (what json.dumps writes for float("nan")) is rejected here.
    strict = json.loads(body, parse_constant=lambda token: pytest.fail(f"invalid JSON {token}"))
    assert strict == {"predictions": [{"label": "Urology", "probability": None, "score": None}]}
    assert inference.output_fn(prediction, "text/csv")[0] == "Urology,\n"


def test_json_shapes() -> None:
    assert inference.input_fn('{"text": "a note"}', "application/json") == ["a note"]
    assert inference.input_fn('["one", "two"]', "application/json") == ["one", "two"]


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        ("x", "application/xml", "unsupported content type"),
        ("{not json", "application/json", "not valid JSON"),
        ('{"notes": []}', "application/json", '"instances"'),
        ('{"instances": [1, 2]}', "application/json", "list of strings"),
        ("\n\n", "text/csv", "no note"),
    ],
)
def test_bad_requests_are_clear(body: str, content_type: str, message: str) -> None:
    with pytest.raises(inference.InferenceError, match=message):
        inference.input_fn(body, content_type)


def test_unsupported_accept() -> None:
    with pytest.raises(inference.InferenceError, match="unsupported accept type"):
        inference.output_fn([{"label": "x", "probability": 1.0}], "application/x-protobuf")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.fixture(scope="module")
def served(model_dir: Path) -> Iterator[int]:
    """The image's real `serve` (gunicorn, 2 workers) on 127.0.0.1; its port."""
    port = free_port()
    env = {
        **os.environ,
        "SM_MODEL_DIR": str(model_dir),
        "SAGEMAKER_BIND_TO_PORT": str(port),
        "SERVING_BIND_HOST": "127.0.0.1",
        "SAGEMAKER_MODEL_SERVER_WORKERS": "2",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "ml.serving.server"], env=env, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield port
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


def post(port: int, body: bytes, content_type: str, accept: str = "application/json") -> str:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/invocations",
        data=body,
        headers={"Content-Type": content_type, "Accept": accept},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
        text: str = response.read().decode()
    return text


def test_server_answers_ping_and_invocations(served: int) -> None:
    with urllib.request.urlopen(f"http://127.0.0.1:{served}/ping", timeout=5) as response:
        assert response.status == 200
    answer = post(served, json.dumps({"instances": [EYE]}).encode(), "application/json")
    assert json.loads(answer)["predictions"][0]["label"] == "Ophthalmology"
    bad = urllib.request.Request(
        f"http://127.0.0.1:{served}/invocations", data=b"x", headers={"Content-Type": "image/png"}
    )
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(bad, timeout=5)
    assert raised.value.code == 400


def test_csv_header_row_is_not_a_note(served: int) -> None:
    # The original notebook's request: a `transcription` column with a header row.
    body = pd.DataFrame({"transcription": [EYE, CARDIO]}).to_csv(index=False).encode()
    answer = json.loads(post(served, body, "text/csv"))["predictions"]
    assert [p["label"] for p in answer] == ["Ophthalmology", "Cardiovascular / Pulmonary"]
    as_csv = post(served, body, "text/csv", accept="text/csv").splitlines()
    assert [line.split(",")[0] for line in as_csv] == [
        "Ophthalmology",
        "Cardiovascular / Pulmonary",
    ]


def test_server_answers_parallel_requests_correctly(served: int) -> None:
    notes = [EYE, CARDIO] * 40

    def classify(note: str) -> str:
        answer = post(served, json.dumps({"instances": [note]}).encode(), "application/json")
        label: str = json.loads(answer)["predictions"][0]["label"]
        return label

    with ThreadPoolExecutor(max_workers=16) as pool:
        labels = list(pool.map(classify, notes))
    assert labels == ["Ophthalmology", "Cardiovascular / Pulmonary"] * 40


def test_workers_follow_the_cores_unless_configured() -> None:
    assert worker_count({}) == len(os.sched_getaffinity(0))
    assert worker_count({"SAGEMAKER_MODEL_SERVER_WORKERS": "3"}) == 3
    with pytest.raises(ValueError, match="positive integer"):
        worker_count({"SAGEMAKER_MODEL_SERVER_WORKERS": "0"})
    options = gunicorn_options({"SAGEMAKER_BIND_TO_PORT": "8080"})
    assert options["bind"] == "0.0.0.0:8080"
    assert options["backlog"] >= 2048
    assert options["preload_app"] is True


def test_worker_heartbeats_stay_off_disk() -> None:
    # gunicorn's heartbeat fchmod on a disk-backed /tmp can stall a worker mid-request.
    assert gunicorn_options({})["worker_tmp_dir"] == "/dev/shm"


def test_default_model_scores_are_a_softmax_of_its_margins(model_dir: Path) -> None:
    model = inference.model_fn(model_dir)
    (prediction,) = inference.predict_fn([EYE], model)
    margins = model.estimator.decision_function([EYE])[0]
    shares = np.exp(margins - margins.max())
    assert prediction["score"] == pytest.approx(shares.max() / shares.sum(), abs=1e-6)
    # Folded into a sparse linear model: no dense classes x 2**hash_bits weights to load.
    assert sp.issparse(model.estimator.named_steps["classifier"].coef_)


def raw_post(port: int, headers: list[str], body: bytes) -> tuple[int, str]:
    """Send a hand-written POST /invocations (urllib would fix the headers) -> status, body."""
    request = "\r\n".join(["POST /invocations HTTP/1.1", "Host: localhost", *headers, "", ""])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
        connection.sendall(request.encode("ascii") + body)
        connection.shutdown(socket.SHUT_WR)
        response = b""
        while chunk := connection.recv(65536):
            response += chunk
    assert response, "the server dropped the connection without a response"
    head, _, payload = response.partition(b"\r\n\r\n")
    return int(head.split()[1]), payload.decode()


@pytest.mark.parametrize(
    ("headers", "body", "message"),
    [
        (
            ["Content-Type: text/csv", "Content-Length: 9"],
            "Caf\u00e9 n\u00f6te".encode("latin-1")[:9],
            "not UTF-8",
        ),
        (["Content-Type: text/csv", "Content-Length: abc"], b"a note", "content-length"),
        (["Content-Type: text/csv", "Content-Length: -1"], b"a note", "content-length"),
        (["Content-Type: text/csv", "Content-Length: 100"], b"a note", "ended after 6 of 100"),
    ],
    ids=["latin-1-body", "non-numeric-length", "negative-length", "short-body"],
)
def test_server_answers_bad_bodies_with_400(
    served: int, headers: list[str], body: bytes, message: str
) -> None:
    status, payload = raw_post(served, headers, body)
    assert status == 400
    # gunicorn answers a malformed Content-Length itself (HTML); the app the rest (plain text).
    assert message.lower() in payload.lower()
