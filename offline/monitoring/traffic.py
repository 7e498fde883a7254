"""The demo's traffic: each scenario's notes, sent through the real serving code, written
as SageMaker's data capture writes the exchanges.

`serve` sends requests through ml/serving/inference.py (`input_fn` -> `predict_fn` ->
`output_fn`, what the endpoint's server runs); `write_capture` uploads the exchanges as
JSON Lines under `data-capture/<endpoint>/<variant>/yyyy/mm/dd/hh/`, several records a
file. Scenarios: `unchanged` (unseen notes of the same mix: no drift), `one specialty`
(only Orthopedic notes), `another domain` (IT-support tickets, not medical notes).
Everything is seeded: the same arguments give the same capture files.
"""

from __future__ import annotations

import base64
import json
import uuid
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from ml.data.realistic import generate
from ml.serving.inference import CSV, JSON, LoadedModel, input_fn, output_fn, predict_fn

VARIANT = "AllTraffic"
CAPTURE_PREFIX = "data-capture"
RECORDS_PER_FILE = 50
SHIFTED_SPECIALTY = "Orthopedic"
SCENARIOS = ("unchanged", "one specialty", "another domain")

_FOREIGN_WORDS = tuple(
    " ".join(
        (
            "invoice password reset laptop printer vpn outage ticket escalate server license",
            "refund shipment warehouse router firmware deadline spreadsheet quarterly budget",
            "customer portal login timeout database backup migration rollout sprint backlog",
            "keyboard monitor cable wireless upgrade install configure restart helpdesk",
            "account billing subscription renewal contract vendor purchase order approval",
        )
    ).split()
)


def foreign_notes(count: int, seed: int = 7) -> list[str]:
    """IT-support tickets: text of another domain, a few dozen words each (seeded)."""
    rng = np.random.default_rng(seed)
    notes = []
    for _ in range(count):
        words = rng.choice(_FOREIGN_WORDS, size=int(rng.integers(40, 120)))
        notes.append("Ticket: " + " ".join(str(w) for w in words) + ".")
    return notes


def scenario_notes(name: str, count: int, seed: int) -> list[str]:
    """`count` notes of scenario `name` (unseen notes: another seed than training's)."""
    if name == "another domain":
        return foreign_notes(count, seed)
    live = generate(notes=max(count * 3, 1500), seed=seed)
    live = live[live["transcription"].str.strip() != ""]
    if name == "one specialty":
        live = live[live["medical_specialty"].str.strip() == SHIFTED_SPECIALTY]
        if len(live) < count:  # repeat the specialty's notes rather than send fewer
            live = pd.concat([live] * (count // max(1, len(live)) + 1))
    elif name != "unchanged":
        raise ValueError(f"unknown scenario {name!r}; one of {SCENARIOS}")
    return [str(text) for text in live["transcription"].head(count)]


def capture_record(
    request: str,
    content_type: str,
    response: str,
    accept: str,
    *,
    event_id: str,
    when: datetime,
    base64_encoded: bool = False,
) -> dict[str, Any]:
    """One exchange as SageMaker data capture writes it (declared types as CSV/JSON text)."""

    def side(data: str, media: str, mode: str) -> dict[str, str]:
        if base64_encoded:
            encoded, encoding = base64.b64encode(data.encode()).decode("ascii"), "BASE64"
        else:
            encoded, encoding = data, "CSV" if media == CSV else "JSON"
        return {"observedContentType": media, "mode": mode, "data": encoded, "encoding": encoding}

    return {
        "captureData": {
            "endpointInput": side(request, content_type, "INPUT"),
            "endpointOutput": side(response, accept, "OUTPUT"),
        },
        "eventMetadata": {
            "eventId": event_id,
            "inferenceTime": when.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
        },
        "eventVersion": "0",
    }


def serve(model: LoadedModel, notes: list[str], seed: int, start: datetime) -> list[dict[str, Any]]:
    """Send `notes` through the serving code as requests; the capture record of each.

    Request shapes vary as real clients do (seeded): one note as text/csv, or one or two
    notes as JSON `instances`; most ask for JSON answers, some for CSV.
    """
    rng = np.random.default_rng(seed)
    records = []
    position = 0
    step = timedelta(seconds=3600 / max(1, len(notes)))
    while position < len(notes):
        size = 1 if rng.random() < 0.7 else 2
        batch = notes[position : position + size]
        if size == 1 and rng.random() < 0.6:
            body, content_type = batch[0], CSV
        else:
            body, content_type = json.dumps({"instances": batch}), JSON
        accept = CSV if rng.random() < 0.15 else JSON
        response, response_type = output_fn(predict_fn(input_fn(body, content_type), model), accept)
        when = start + step * position
        event = str(uuid.UUID(bytes=rng.bytes(16), version=4))
        records.append(
            capture_record(body, content_type, response, response_type, event_id=event, when=when)
        )
        position += size
    return records


def capture_key(prefix: str, when: datetime, event_id: str) -> str:
    """Where SageMaker puts a capture file: `<prefix><variant>/yyyy/mm/dd/hh/<mm-ss-sss>-<id>.jsonl`
    (`prefix`: the endpoint's, `data-capture/<endpoint>/`)."""
    stamp = when.strftime("%Y/%m/%d/%H/%M-%S-") + f"{when.microsecond // 1000:03d}"
    return f"{prefix}{VARIANT}/{stamp}-{event_id}.jsonl"


def write_capture(s3: Any, bucket: str, prefix: str, records: list[dict[str, Any]]) -> list[str]:
    """Upload `records` as multi-record JSONL files (`RECORDS_PER_FILE` each); their keys."""
    keys = []
    for first in range(0, len(records), RECORDS_PER_FILE):
        chunk = records[first : first + RECORDS_PER_FILE]
        metadata = chunk[0]["eventMetadata"]
        when = datetime.fromisoformat(metadata["inferenceTime"].replace("Z", "+00:00"))
        key = capture_key(prefix, when, metadata["eventId"])
        body = "".join(json.dumps(record) + "\n" for record in chunk)
        s3.put_object(Bucket=bucket, Key=key, Body=body.encode())
        keys.append(key)
    return keys
