"""Endpoint inference handler: model_fn, input_fn, predict_fn, output_fn.

The SageMaker inference-toolkit contract, for the model artifact `train.py`
writes (`model.joblib` + `labels.json`). Requests:

- `text/csv`: one note per line (a single CSV column; quoted fields may span lines);
- `application/json`: `{"instances": ["note", ...]}`, `{"text": "note"}`, or `["note", ...]`.

Responses (`Accept`): `application/json` (default) gives
`{"predictions": [{"label": ..., "probability": ...}, ...]}`; `text/csv` gives
one `label,probability` line per note.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np

JSON = "application/json"
CSV = "text/csv"
SUPPORTED_CONTENT_TYPES = (CSV, JSON)
MAX_NOTES_PER_REQUEST = 1000


class InferenceError(ValueError):
    """A request the handler cannot serve (maps to HTTP 4xx); the message says why."""


@dataclass(frozen=True)
class LoadedModel:
    estimator: Any
    labels: tuple[str, ...]


def model_fn(model_dir: str | Path) -> LoadedModel:
    directory = Path(model_dir)
    labels = tuple(json.loads((directory / "labels.json").read_text()))
    # The artifact our own training job wrote to the stack's artifacts bucket.
    estimator = joblib.load(directory / "model.joblib")
    return LoadedModel(estimator=estimator, labels=labels)


def _media_type(value: str | None, default: str) -> str:
    return (value or default).split(";")[0].strip().lower() or default


def input_fn(request_body: str | bytes, content_type: str | None = CSV) -> list[str]:
    body = request_body.decode("utf-8") if isinstance(request_body, bytes) else request_body
    media = _media_type(content_type, CSV)
    if media == CSV:
        notes = [row[0] for row in csv.reader(io.StringIO(body)) if row and row[0].strip()]
    elif media == JSON:
        try:
            payload = json.loads(body)
        except json.JSONDecodeError as error:
            raise InferenceError(f"request body is not valid JSON: {error}") from None
        notes = _notes_from_json(payload)
    else:
        raise InferenceError(
            f"unsupported content type {content_type!r}; use one of {SUPPORTED_CONTENT_TYPES}"
        )
    if not notes:
        raise InferenceError("the request contains no note to classify")
    if len(notes) > MAX_NOTES_PER_REQUEST:
        raise InferenceError(f"at most {MAX_NOTES_PER_REQUEST} notes per request, got {len(notes)}")
    return notes


def _notes_from_json(payload: Any) -> list[str]:
    if isinstance(payload, dict):
        if "instances" in payload:
            payload = payload["instances"]
        elif "text" in payload:
            payload = [payload["text"]]
        else:
            raise InferenceError('JSON object must have "instances" (a list) or "text"')
    if not isinstance(payload, list) or not all(isinstance(item, str) for item in payload):
        raise InferenceError("JSON instances must be a list of strings")
    return [item for item in payload if item.strip()]


def predict_fn(notes: list[str], model: LoadedModel) -> list[dict[str, Any]]:
    estimator = model.estimator
    if hasattr(estimator, "predict_proba"):
        probabilities = np.asarray(estimator.predict_proba(notes))
        ids = probabilities.argmax(axis=1)
        scores = probabilities.max(axis=1)
        classes = np.asarray(estimator.classes_)[ids]
    else:
        classes = np.asarray(estimator.predict(notes))
        scores = np.full(len(notes), np.nan)
    return [
        {"label": model.labels[int(label_id)], "probability": round(float(score), 6)}
        for label_id, score in zip(classes, scores, strict=True)
    ]


def output_fn(prediction: list[dict[str, Any]], accept: str | None = JSON) -> tuple[str, str]:
    """The response body and its content type."""
    media = _media_type(accept, JSON)
    if media in (JSON, "*/*"):
        return json.dumps({"predictions": prediction}), JSON
    if media == CSV:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        for item in prediction:
            writer.writerow([item["label"], item["probability"]])
        return buffer.getvalue(), CSV
    raise InferenceError(
        f"unsupported accept type {accept!r}; use one of {SUPPORTED_CONTENT_TYPES}"
    )
