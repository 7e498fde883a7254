"""Reading the notes: the mtsamples-format CSVs, cleaned, and the hash of what was read.

Input: CSV files in the mtsamples format (description, medical_specialty,
sample_name, transcription, keywords; only the last two that matter are
required), UTF-8 unless `--encoding`, comma-separated unless `--delimiter`. Unusable
input (encoding, delimiter, columns, a missing path) stops the step with one line
naming the file and the fix (`DataError`). `clean` normalises whitespace and drops
(and counts, in the data report) the rows without a text or a label; `input_sha256`
is the content hash of the dataset read, the lineage of every model trained on it.

Part of preprocess.py's code bundle (stdlib + pandas); ml/data/upload.py reads its CSVs with
the same functions.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import re
from pathlib import Path
from typing import Any

import pandas as pd

TEXT_COLUMN = "transcription"
LABEL_COLUMN = "medical_specialty"
REQUIRED_COLUMNS = (LABEL_COLUMN, TEXT_COLUMN)
MTSAMPLES_COLUMNS = ("description", "medical_specialty", "sample_name", "transcription", "keywords")

_WHITESPACE = re.compile(r"\s+")


class DataError(ValueError):
    """The input data cannot be used; the message says what is wrong and where."""


def _codec(encoding: str) -> str:
    """The codec to read `encoding` with (a UTF-8 byte-order mark is skipped)."""
    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        raise DataError(f"--encoding {encoding!r} is not a known text encoding") from None
    return "utf-8-sig" if name == "utf-8" else name


def _first_bad_byte(path: Path, codec: str) -> tuple[int, int, int] | None:
    """(offset, byte, line) of the first byte `codec` cannot decode, or None; streamed."""
    decoder = codecs.getincrementaldecoder(codec)()
    offset, lines = 0, 0
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as error:
                at = max(error.start, 0)
                return offset + at, chunk[at], lines + chunk[:at].count(b"\n") + 1
            offset += len(chunk)
            lines += chunk.count(b"\n")
    return None


def _decode_error(path: Path, encoding: str, codec: str) -> DataError:
    found = _first_bad_byte(path, codec)
    where = f" (byte 0x{found[1]:02x} on line {found[2]})" if found else ""
    hint = "cp1252" if _first_bad_byte(path, "cp1252") is None else "latin-1"
    return DataError(
        f"{path}: not {encoding} text{where}; it looks like {hint}: convert it "
        f"(iconv -f {hint} -t utf-8) or pass --encoding {hint}"
    )


def read_notes(path: Path, encoding: str = "utf-8", delimiter: str = ",") -> pd.DataFrame:
    """Read one mtsamples-format CSV; fail in one line on encoding, delimiter or columns.

    Streamed from the file and only the two columns used are kept: a 400 MB export (140k
    notes) is not held as bytes, text and a parser buffer at once.
    """
    if not path.is_file():
        raise DataError(f"{path}: no such file (give the path of a mtsamples-format CSV)")
    codec = _codec(encoding)
    try:
        with path.open(encoding=codec, newline="") as handle:
            header = handle.readline().rstrip("\r\n")
    except UnicodeDecodeError:
        raise _decode_error(path, encoding, codec) from None
    for name, sep in (("semicolon", ";"), ("tab", "\t"), ("pipe", "|")):
        fields = [field.strip().strip('"') for field in header.split(sep)]
        if sep != delimiter and all(column in fields for column in REQUIRED_COLUMNS):
            shown = "\\t" if sep == "\t" else sep
            raise DataError(
                f"{path}: the file is {name}-delimited; save it comma-separated "
                f"or pass --delimiter '{shown}'"
            )
    if not header.strip():
        raise DataError(f"{path}: the file is empty (expected a CSV with a header row)")
    columns = next(csv.reader([header], delimiter=delimiter))
    missing = [column for column in REQUIRED_COLUMNS if column not in columns]
    if missing:
        raise DataError(
            f"{path}: missing column(s) {missing}; found {columns} "
            f"(the mtsamples format has {list(MTSAMPLES_COLUMNS)})"
        )
    try:
        return pd.read_csv(
            path,
            dtype=str,
            keep_default_na=False,
            sep=delimiter,
            encoding=codec,
            usecols=list(REQUIRED_COLUMNS),
        )
    except UnicodeDecodeError:
        raise _decode_error(path, encoding, codec) from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the file is empty (expected a CSV with a header row)") from None
    except pd.errors.ParserError as error:
        raise DataError(f"{path}: not a valid CSV ({str(error).strip()})") from None


def clean(
    frame: pd.DataFrame, source: str = "input", report: dict[str, Any] | None = None
) -> pd.DataFrame:
    """Normalise whitespace, drop notes without text or label; columns text, label."""
    # Row by row: a vectorised chain (replace, then strip) would hold two full copies of
    # every note at once (~0.8 GB more at 140k notes).
    text = frame[TEXT_COLUMN].astype(str).map(_normalised_space)
    label = frame[LABEL_COLUMN].astype(str).map(_normalised_space)
    # keep_default_na=False keeps "NA" notes as text; an exported float NaN reads as "nan".
    no_text = text.isin(["", "nan", "NaN"])
    no_label = ~no_text & label.isin(["", "nan", "NaN"])
    if report is not None:
        report["rows_read"] = report.get("rows_read", 0) + len(frame)
        report["dropped_empty_text"] = report.get("dropped_empty_text", 0) + int(no_text.sum())
        report["dropped_empty_label"] = report.get("dropped_empty_label", 0) + int(no_label.sum())
    cleaned = pd.DataFrame({"text": text, "label": label})[~no_text & ~no_label]
    cleaned = cleaned.reset_index(drop=True)
    if cleaned.empty:
        raise DataError(
            f"{source}: no usable notes (every row lacks a {TEXT_COLUMN} or a {LABEL_COLUMN})"
        )
    return cleaned


def _normalised_space(value: str) -> str:
    return _WHITESPACE.sub(" ", value).strip()


def input_sha256(root: Path, files: list[Path]) -> str:
    """sha256 over the files read, in sorted order of their names relative to `root`.

    Each file contributes its name, its size and its bytes (NUL-separated), so renaming a
    file, or moving bytes from one file to the next, changes the hash; the absolute path
    of the input directory (a container mount) does not.
    """
    digest = hashlib.sha256()
    for name, path in sorted((path.relative_to(root).as_posix(), path) for path in files):
        data = path.read_bytes()
        digest.update(f"{name}\0{len(data)}\0".encode())
        digest.update(data)
    return digest.hexdigest()
