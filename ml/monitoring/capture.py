"""SageMaker data-capture files -> the notes an endpoint classified and its answers.

An endpoint with data capture writes JSON Lines objects under
`<DestinationS3Uri>/<endpoint>/<variant>/yyyy/mm/dd/hh/<mm-ss-sss>-<uuid>.jsonl`, one line
per request:

    {"captureData": {
        "endpointInput":  {"observedContentType": "text/csv", "mode": "INPUT",
                           "data": "...", "encoding": "CSV"},
        "endpointOutput": {"observedContentType": "application/json", "mode": "OUTPUT",
                           "data": "...", "encoding": "JSON"}},
     "eventMetadata": {"eventId": "...", "inferenceTime": "2026-01-01T10:00:00Z"},
     "eventVersion": "0"}

`encoding` is `CSV` or `JSON` (the body as text) for the content types the endpoint's
`CaptureContentTypeHeader` declares, `BASE64` otherwise. A file's last line may be cut
short (the file was copied while it was written): it is skipped and counted. Any other
line that is not JSON, or JSON that is not a capture record, is an error naming the file
and line: the job was pointed at something that is not capture data.

Request bodies are split into notes by the serving code's own `input_fn`, so a note here
is exactly a note the endpoint classified; the response is read in the two shapes
`output_fn` writes (JSON `predictions`, or CSV `label,probability` lines).
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import json
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ml.serving.inference import InferenceError, input_fn

ENCODINGS = ("CSV", "JSON", "BASE64")
CAPTURE_SUFFIX = ".jsonl"


class CaptureError(ValueError):
    """A file that is not SageMaker data capture; the message names the file and line."""


@dataclass(frozen=True)
class Payload:
    """One side of a captured exchange, decoded to text."""

    content_type: str
    text: str


@dataclass(frozen=True)
class CaptureRecord:
    """One captured request and its response (either side None when not captured)."""

    source: str
    line: int
    event_id: str | None
    inference_time: datetime | None
    request: Payload | None
    response: Payload | None


@dataclass(frozen=True)
class Observation:
    """One classified note: its text, the predicted label, and the score (None if absent)."""

    text: str
    label: str
    score: float | None


@dataclass
class CaptureStats:
    """What a window of capture files held, and what was left out (and why)."""

    files: int = 0
    records: int = 0
    requests: int = 0
    """Requests whose notes and predictions were analysed."""
    skipped: Counter[str] = field(default_factory=Counter)
    """Reason -> records left out (truncated last line, outside the window, ...)."""

    def merge(self, other: CaptureStats) -> None:
        """Add the counts of `other` (another process's files, or another batch)."""
        self.files += other.files
        self.records += other.records
        self.requests += other.requests
        self.skipped.update(other.skipped)


def parse_time(value: str) -> datetime:
    """An ISO 8601 time (`2026-01-01T10:00:00Z`, fractions allowed) as an aware UTC datetime."""
    text = value.strip().replace(" ", "")
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def capture_files(root: Path) -> list[Path]:
    """Every capture file under `root` (a file or a directory tree), in path order."""
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise CaptureError(f"{root}: no such file or directory (the capture data to analyse)")
    return sorted(path for path in root.rglob(f"*{CAPTURE_SUFFIX}") if path.is_file())


def read_records(path: Path, skipped: Counter[str] | None = None) -> Iterator[CaptureRecord]:
    """The capture records of one JSONL file; a cut-off last line is counted in `skipped`."""
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise CaptureError(f"{path}: cannot read: {error.strerror}") from None
    lines = raw.split(b"\n")
    last = max((i for i, line in enumerate(lines) if line.strip()), default=-1)
    for index, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            document = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError):
            if index == last and not raw.endswith(b"\n"):
                # The capture writer appends whole lines; a last line without its newline
                # that does not parse was cut while the file was copied.
                if skipped is not None:
                    skipped["truncated last line"] += 1
                return
            raise CaptureError(
                f"{path}:{index + 1}: not JSON, so not SageMaker data capture (expected one "
                "captureData object per line)"
            ) from None
        yield _record(document, path, index + 1)


def _record(document: Any, path: Path, line: int) -> CaptureRecord:
    capture = document.get("captureData") if isinstance(document, dict) else None
    if not isinstance(capture, dict) or not (
        "endpointInput" in capture or "endpointOutput" in capture
    ):
        raise CaptureError(
            f"{path}:{line}: not SageMaker data capture (no captureData.endpointInput or "
            "endpointOutput); point the monitor at the endpoint's capture prefix"
        )
    metadata = document.get("eventMetadata") or {}
    when = metadata.get("inferenceTime")
    try:
        inference_time = parse_time(when) if isinstance(when, str) else None
    except ValueError:
        raise CaptureError(
            f"{path}:{line}: eventMetadata.inferenceTime {when!r} is not an ISO 8601 time"
        ) from None
    return CaptureRecord(
        source=str(path),
        line=line,
        event_id=metadata.get("eventId"),
        inference_time=inference_time,
        request=_payload(capture.get("endpointInput"), "endpointInput", "INPUT", path, line),
        response=_payload(capture.get("endpointOutput"), "endpointOutput", "OUTPUT", path, line),
    )


def _payload(side: Any, name: str, mode: str, path: Path, line: int) -> Payload | None:
    if side is None:
        return None
    where = f"{path}:{line}: captureData.{name}"
    if not isinstance(side, dict) or not isinstance(side.get("data"), str):
        raise CaptureError(f"{where} has no string `data`: not SageMaker data capture")
    if side.get("mode", mode) != mode:
        raise CaptureError(f"{where}.mode is {side.get('mode')!r}, expected {mode!r}")
    encoding = str(side.get("encoding", "")).upper()
    if encoding not in ENCODINGS:
        raise CaptureError(f"{where}.encoding is {side.get('encoding')!r}; one of {ENCODINGS}")
    data: str = side["data"]
    if encoding == "BASE64":
        try:
            data = base64.b64decode(data, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as error:
            raise CaptureError(f"{where}.data is not base64 of UTF-8 text: {error}") from None
    return Payload(content_type=str(side.get("observedContentType") or ""), text=data)


def predictions(response: Payload) -> list[tuple[str, float | None]]:
    """(label, score) per note of a response body in a shape `output_fn` writes."""
    media = response.content_type.split(";")[0].strip().lower()
    if media == "application/json":
        body = json.loads(response.text)
        items = body["predictions"] if isinstance(body, dict) else None
        if not isinstance(items, list):
            raise ValueError('a JSON response without a "predictions" list')
        found = []
        for item in items:
            score = item.get("score")
            if score is None:
                score = item.get("probability")
            found.append((str(item["label"]), None if score is None else float(score)))
        return found
    if media == "text/csv":
        rows = [row for row in csv.reader(io.StringIO(response.text)) if row]
        # `label,probability`: the probability is empty for a model without one.
        return [(row[0], float(row[1]) if len(row) > 1 and row[1] else None) for row in rows]
    raise ValueError(f"a response of type {response.content_type!r}")


def observations(
    paths: Iterable[Path],
    stats: CaptureStats,
    start: datetime | None = None,
    end: datetime | None = None,
) -> Iterator[Observation]:
    """The classified notes of the records in [start, end) (either bound optional).

    A generator, so a day of traffic is never held in memory at once; `stats` counts
    files, records, analysed requests and what was skipped as it goes.
    """
    for path in paths:
        stats.files += 1
        for record in read_records(path, stats.skipped):
            stats.records += 1
            when = record.inference_time
            if when is not None and (
                (start is not None and when < start) or (end is not None and when >= end)
            ):
                # The hour folders read may hold records just outside the window.
                stats.skipped["outside the window"] += 1
                continue
            found = _exchange(record, stats)
            if found:
                stats.requests += 1
                yield from found


def _exchange(record: CaptureRecord, stats: CaptureStats) -> list[Observation]:
    """The notes of one record paired with their predictions ([] and counted if unusable)."""
    if record.request is None or record.response is None:
        stats.skipped["request or response not captured"] += 1
        return []
    try:
        notes = input_fn(record.request.text, record.request.content_type)
    except InferenceError:
        stats.skipped["request the endpoint rejects"] += 1
        return []
    try:
        answers = predictions(record.response)
    except (ValueError, KeyError, TypeError, AttributeError):
        stats.skipped["response not in a predictions shape"] += 1
        return []
    if len(answers) != len(notes):
        stats.skipped["notes and predictions differ in number"] += 1
        return []
    return [
        Observation(text=note, label=label, score=score)
        for note, (label, score) in zip(notes, answers, strict=True)
    ]
