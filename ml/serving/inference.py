"""Endpoint inference handler: model_fn, input_fn, predict_fn, output_fn.

The SageMaker inference-toolkit contract, for the model artifact `train.py`
writes (`model.joblib` + `labels.json`). Requests:

- `text/csv`: one note per line, taken as is (commas included, never cut at one); a
  line that is exactly one quoted CSV field (`"a, b"`, with `""` for a quote) is
  unquoted, and such a field may span lines; a first line that is only a column name
  (`transcription`, `text`, `note`, `notes`, as the original notebook sends it) is a
  header row, not a note;
- `application/json`: `{"instances": ["note", ...]}` (the original's request shape),
  `{"text": "note"}`, or `["note", ...]`.

Responses (`Accept`, every type in SUPPORTED_ACCEPT_TYPES): `application/json`
(default, also for `*/*`) gives, in request order,

    {"predictions": [{"label": "Ophthalmology", "probability": null, "score": 0.31}, ...]}

(`probability`: the model's probability of that label, null for a model without one,
such as the default linear SVM; `score`: that probability, else a softmax of the SVM's
margins in [0, 1], for ranking, not calibrated); `text/csv` gives one
`label,probability` line per note. A bad request is a 400 with a one-line
`text/plain` reason.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np

JSON = "application/json"
CSV = "text/csv"
SUPPORTED_CONTENT_TYPES = (CSV, JSON)
SUPPORTED_ACCEPT_TYPES = (JSON, CSV)
"""What the model package registers as its request and response types."""
CSV_HEADER_NAMES = frozenset({"transcription", "text", "note", "notes"})
MAX_NOTES_PER_REQUEST = 1000

_QUOTED_FIELD = re.compile(r'[ \t]*"((?:[^"]|"")*)"[ \t]*(?:\r\n|\r|\n|$)')
"""One whole quoted CSV field (`""` escapes a quote; newlines allowed) and its line end."""
_LINE_END = re.compile(r"\r\n|\r|\n")


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


def _csv_notes(body: str) -> list[str]:
    """The notes of a text/csv body: one per line, unless a line is one quoted CSV field.

    Notes are free text, so an unquoted line is the note itself, commas and
    all. Only a line that is exactly one quoted field (which may run over
    several lines) is unquoted; anything else that starts with a quote (two
    fields, no closing quote) is also taken as is rather than cut.
    """
    notes: list[str] = []
    position = 0
    while position < len(body):
        quoted = _QUOTED_FIELD.match(body, position)
        if quoted is not None:
            note = quoted[1].replace('""', '"')
            position = quoted.end()
        else:
            line_end = _LINE_END.search(body, position)
            end = line_end.start() if line_end else len(body)
            note = body[position:end]
            position = line_end.end() if line_end else len(body)
        if note.strip():
            notes.append(note)
    return notes


def input_fn(request_body: str | bytes, content_type: str | None = CSV) -> list[str]:
    if isinstance(request_body, bytes):
        try:
            body = request_body.decode("utf-8")
        except UnicodeDecodeError as error:
            raise InferenceError(f"request body is not UTF-8 text: {error}") from None
    else:
        body = request_body
    media = _media_type(content_type, CSV)
    if media == CSV:
        notes = _csv_notes(body)
        if notes and notes[0].strip().strip('"').strip().lower() in CSV_HEADER_NAMES:
            notes = notes[1:]
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
    """Label, probability (None without one) and score (probability, else softmax of margins)."""
    estimator = model.estimator
    probabilities: Any = None
    if not hasattr(estimator, "predict_proba") and not hasattr(estimator, "decision_function"):
        return [
            {"label": model.labels[int(label_id)], "probability": None, "score": None}
            for label_id in estimator.predict(notes)
        ]
    if hasattr(estimator, "predict_proba"):
        probabilities = np.asarray(estimator.predict_proba(notes))
        confidence = probabilities
    else:
        # A linear SVM has margins, not probabilities: a softmax ranks them in [0, 1].
        margins = np.atleast_2d(np.asarray(estimator.decision_function(notes), dtype=float))
        shifted = np.exp(margins - margins.max(axis=1, keepdims=True))
        confidence = shifted / shifted.sum(axis=1, keepdims=True)
    ids = confidence.argmax(axis=1)
    classes = np.asarray(estimator.classes_)[ids]
    return [
        {
            "label": model.labels[int(label_id)],
            # null in JSON when the model has none (NaN would make the body invalid JSON).
            "probability": None
            if probabilities is None
            else round(float(probabilities[row, i]), 6),
            "score": round(float(confidence[row, i]), 6),
        }
        for row, (label_id, i) in enumerate(zip(classes, ids, strict=True))
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
