"""Data errors a user can act on: one line naming the file and the fix, before any upload."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from ml.data import upload
from ml.data.synthetic import generate
from ml.steps import notes_csv, preprocess

SMALL = generate(notes_per_specialty=10, seed=4)


def write_csv(frame: pd.DataFrame, path: Path, **kwargs: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False, **kwargs)
    return path


def run_main(tmp_path: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str]:
    status = preprocess.main(
        ["--input-dir", str(tmp_path / "in"), "--output-dir", str(tmp_path / "out"), *extra]
    )
    return status, capsys.readouterr().err


def test_non_utf8_input_names_the_encoding_and_accepts_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frame = SMALL.copy()
    frame.loc[0, "transcription"] = (
        "Patient reports caf\u00e9 intake; na\u00efve to \u00b5g dosing."
    )
    write_csv(frame, tmp_path / "in" / "notes.csv", encoding="cp1252")
    status, err = run_main(tmp_path, capsys)
    assert status == 1
    assert err.count("\n") == 1
    assert "notes.csv: not utf-8 text" in err
    assert "--encoding cp1252" in err
    assert "(byte 0xe9 on line 2)" in err  # the first note's "café", below the header
    assert "Traceback" not in err
    status, err = run_main(tmp_path, capsys, "--encoding", "cp1252")
    assert status == 0, err
    written = pd.read_csv(tmp_path / "out" / "train" / "train.csv", keep_default_na=False)
    test = pd.read_csv(tmp_path / "out" / "test" / "test.csv", keep_default_na=False)
    notes = set(written["text"]) | set(test["text"])
    notes |= set(pd.read_csv(tmp_path / "out" / "validation" / "validation.csv")["text"])
    assert frame.loc[0, "transcription"] in notes


def test_semicolon_delimited_file_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_csv(SMALL, tmp_path / "in" / "notes.csv", sep=";")
    status, err = run_main(tmp_path, capsys)
    assert status == 1
    assert "semicolon-delimited" in err
    assert "--delimiter ';'" in err
    assert err.count("\n") == 1
    assert run_main(tmp_path, capsys, "--delimiter", ";")[0] == 0


def test_missing_path_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, err = run_main(tmp_path, capsys)
    assert status == 1
    assert err == f"preprocess-data failed: {tmp_path / 'in'}: input directory does not exist\n"
    with pytest.raises(notes_csv.DataError, match="no such file"):
        notes_csv.read_notes(tmp_path / "absent.csv")


def test_single_class_dataset_fails_in_validation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    one = SMALL[SMALL["medical_specialty"] == SMALL["medical_specialty"].iloc[0]]
    write_csv(one, tmp_path / "in" / "notes.csv")
    status, err = run_main(tmp_path, capsys)
    assert status == 1
    assert "needs at least two labels" in err
    assert not (tmp_path / "out" / "train").exists()


def test_rare_class_is_dropped_with_a_warning_and_empty_rows_counted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    extra = pd.DataFrame(
        {
            "description": ["[SYNTHETIC] x", "[SYNTHETIC] y", "[SYNTHETIC] z"],
            "medical_specialty": ["Autopsy", "Urology", "Urology"],
            "transcription": ["A single autopsy note.", "", "   "],
            "sample_name": ["a", "b", "c"],
            "keywords": ["synthetic"] * 3,
        }
    )
    write_csv(pd.concat([SMALL, extra]), tmp_path / "in" / "notes.csv")
    result = preprocess.preprocess(tmp_path / "in", tmp_path / "out")
    assert result["report"]["rare_labels_dropped"] == {"Autopsy": 1}
    assert result["report"]["dropped_empty_text"] == 2
    assert "warning: dropping labels" in capsys.readouterr().err
    assert result["labels"] == 8


@pytest.mark.parametrize("policy", preprocess.CONFLICT_POLICIES)
def test_conflict_policies(tmp_path: Path, policy: str) -> None:
    frame = SMALL.copy()
    copies = frame.iloc[:12].copy()
    copies["medical_specialty"] = " Surgery"
    more = frame.iloc[12:15].copy()
    more["medical_specialty"] = " Surgery"
    more["transcription"] = more["transcription"] + " Incision closed."
    write_csv(pd.concat([frame, copies, more]), tmp_path / "in" / "notes.csv")
    result = preprocess.preprocess(tmp_path / "in", tmp_path / "out", policy=policy)
    assert result["report"]["conflicting_texts"] == 12
    train_rows = pd.read_csv(tmp_path / "out" / "train" / "train.csv")
    per_text = train_rows.groupby("text")["label"].nunique()
    if policy == "keep-all":
        assert per_text.max() == 2
    else:
        assert per_text.max() == 1
    if policy == "drop":
        kept = set(train_rows["text"])
        assert not kept & set(copies["transcription"].str.strip())


def test_upload_refuses_a_single_class_dataset_before_uploading(tmp_path: Path) -> None:
    one = SMALL[SMALL["medical_specialty"] == SMALL["medical_specialty"].iloc[0]]
    path = write_csv(one, tmp_path / "one.csv")

    class Recorder:
        def __init__(self) -> None:
            self.calls: list[str] = []

        def put_object(self, **kwargs: Any) -> None:
            self.calls.append(kwargs["Key"])

    client = Recorder()
    with pytest.raises(notes_csv.DataError, match="at least two labels"):
        upload.upload_dataset(path, "bucket", client)
    assert client.calls == []
    assert upload.main(["--bucket", "b", "--csv", str(tmp_path / "absent.csv")]) == 1
