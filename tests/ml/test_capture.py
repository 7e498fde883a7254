"""The data-capture parser on records in SageMaker's format (ml/monitoring/capture.py)."""

from __future__ import annotations

import base64
import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from ml.monitoring import capture

CSV, JSON = "text/csv", "application/json"


def side(data: str, media: str, mode: str, encoding: str | None = None) -> dict[str, str]:
    if encoding == "BASE64":
        data = base64.b64encode(data.encode()).decode()
    return {
        "observedContentType": media,
        "mode": mode,
        "data": data,
        "encoding": encoding or ("CSV" if media == CSV else "JSON"),
    }


def record(
    request: str,
    response: str,
    *,
    content_type: str = CSV,
    accept: str = JSON,
    encoding: str | None = None,
    when: str = "2026-01-05T09:15:00.123Z",
    event: str = "7c3f2a4e-0b1d-4e8a-9a61-2f0c7d1e5b90",
) -> dict[str, Any]:
    """A capture line as an endpoint with CaptureContentTypeHeader writes it."""
    return {
        "captureData": {
            "endpointInput": side(request, content_type, "INPUT", encoding),
            "endpointOutput": side(response, accept, "OUTPUT", encoding),
        },
        "eventMetadata": {"eventId": event, "inferenceTime": when},
        "eventVersion": "0",
    }


def answer(*labels: str, score: float | None = 0.31) -> str:
    return json.dumps(
        {"predictions": [{"label": lb, "probability": None, "score": score} for lb in labels]}
    )


def write(path: Path, lines: list[str], *, final_newline: bool = True) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + ("\n" if final_newline else ""))
    return path


def observations(paths: list[Path], **kwargs: Any) -> tuple[list[Any], capture.CaptureStats]:
    stats = capture.CaptureStats()
    return list(capture.observations(paths, stats, **kwargs)), stats


def test_csv_and_json_requests_are_split_as_the_endpoint_splits_them(tmp_path: Path) -> None:
    lines = [
        # Two notes, one per line, commas kept (the serving code's text/csv rule).
        json.dumps(record("Knee pain, swelling.\nChest pain.", answer("Orthopedic", "Cardio"))),
        json.dumps(
            record(
                json.dumps({"instances": ["Rash on arm."]}),
                answer("Dermatology"),
                content_type=JSON,
            )
        ),
    ]
    found, stats = observations([write(tmp_path / "a.jsonl", lines)])
    assert [(o.text, o.label, o.score) for o in found] == [
        ("Knee pain, swelling.", "Orthopedic", 0.31),
        ("Chest pain.", "Cardio", 0.31),
        ("Rash on arm.", "Dermatology", 0.31),
    ]
    assert (stats.files, stats.records, stats.requests) == (1, 2, 2)
    assert not stats.skipped


def test_base64_encoded_payloads_are_decoded(tmp_path: Path) -> None:
    line = json.dumps(record("Cataract, left eye.", answer("Ophthalmology"), encoding="BASE64"))
    found, _ = observations([write(tmp_path / "b.jsonl", [line])])
    assert [(o.text, o.label) for o in found] == [("Cataract, left eye.", "Ophthalmology")]


def test_csv_responses_give_labels_and_no_score_without_probabilities(tmp_path: Path) -> None:
    line = json.dumps(record("Note one\nNote two", "Urology,\nNephrology,0.8\n", accept=CSV))
    found, _ = observations([write(tmp_path / "c.jsonl", [line])])
    assert [(o.label, o.score) for o in found] == [("Urology", None), ("Nephrology", 0.8)]


def test_multi_record_files_are_read_in_path_order(tmp_path: Path) -> None:
    first = write(
        tmp_path / "ep" / "AllTraffic" / "2026" / "01" / "05" / "09" / "10-00-000-a.jsonl",
        [json.dumps(record(f"note {i}", answer(f"L{i}"))) for i in range(3)],
    )
    second = write(
        tmp_path / "ep" / "AllTraffic" / "2026" / "01" / "05" / "09" / "20-00-000-b.jsonl",
        [json.dumps(record(f"note {i}", answer(f"L{i}"))) for i in range(3, 5)],
    )
    assert capture.capture_files(tmp_path) == [first, second]
    found, stats = observations(capture.capture_files(tmp_path))
    assert [o.label for o in found] == ["L0", "L1", "L2", "L3", "L4"]
    assert (stats.files, stats.records) == (2, 5)


def test_a_truncated_last_line_is_skipped_and_counted(tmp_path: Path) -> None:
    whole = json.dumps(record("Knee pain.", answer("Orthopedic")))
    cut = json.dumps(record("Chest pain.", answer("Cardio")))[:57]
    path = write(tmp_path / "t.jsonl", [whole, cut], final_newline=False)
    found, stats = observations([path])
    assert [o.label for o in found] == ["Orthopedic"]
    assert stats.skipped == Counter({"truncated last line": 1})


def test_a_broken_line_before_the_last_is_an_error_naming_file_and_line(tmp_path: Path) -> None:
    whole = json.dumps(record("Knee pain.", answer("Orthopedic")))
    path = write(tmp_path / "m.jsonl", [whole, whole[:40], whole])
    with pytest.raises(capture.CaptureError, match=r"m\.jsonl:2: not JSON"):
        observations([path])


@pytest.mark.parametrize(
    "content",
    [
        '{"text": "a note", "label": "Urology"}',  # JSON Lines, but not capture
        '{"captureData": {"endpointInput": {"mode": "INPUT"}}}',  # no data
        "description,medical_specialty\nx,y",  # a CSV file
    ],
)
def test_something_that_is_not_capture_data_is_a_clear_error(tmp_path: Path, content: str) -> None:
    path = tmp_path / "notes.jsonl"
    path.write_text(content + "\n")
    with pytest.raises(capture.CaptureError, match=r"notes\.jsonl:1: .*(not SageMaker|not JSON)"):
        observations([path])


def test_an_unknown_encoding_is_an_error(tmp_path: Path) -> None:
    line = record("x", answer("A"))
    line["captureData"]["endpointInput"]["encoding"] = "GZIP"
    with pytest.raises(capture.CaptureError, match=r"e\.jsonl:1: .*encoding is 'GZIP'"):
        observations([write(tmp_path / "e.jsonl", [json.dumps(line)])])


def test_records_outside_the_window_and_unusable_exchanges_are_counted(tmp_path: Path) -> None:
    lines = [
        json.dumps(record("early", answer("A"), when="2026-01-05T08:59:59Z")),
        json.dumps(record("inside", answer("B"), when="2026-01-05T09:30:00Z")),
        json.dumps(record("late", answer("C"), when="2026-01-05T10:00:00Z")),
        json.dumps(record("two\nnotes", answer("D"))),  # one prediction for two notes
        json.dumps(record("bad", "payload too large", accept="text/plain")),
        json.dumps(record("   ", answer("E"))),  # a request the endpoint rejects (no note)
    ]
    found, stats = observations(
        [write(tmp_path / "w.jsonl", lines)],
        start=datetime(2026, 1, 5, 9, tzinfo=UTC),
        end=datetime(2026, 1, 5, 10, tzinfo=UTC),
    )
    assert [o.text for o in found] == ["inside"]
    assert stats.requests == 1
    assert stats.skipped == Counter(
        {
            "outside the window": 2,
            "notes and predictions differ in number": 1,
            "response not in a predictions shape": 1,
            "request the endpoint rejects": 1,
        }
    )


def test_a_missing_directory_is_an_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(capture.CaptureError, match="nowhere: no such file"):
        capture.capture_files(tmp_path / "nowhere")
