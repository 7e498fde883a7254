"""What the staging checks are given, and how a check fails.

`Target`: what is verified, the names and the training image from the stack's outputs;
`Budget`: how long the pipeline and the endpoint may take, and the smoke test's size and
latency; `sample_notes`: the smoke test's notes, spread over the shipped sample data;
`CheckFailedError`: a check did not pass, its message the evidence.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SAMPLE_CSV = Path(__file__).resolve().parent.parent / "data" / "mtsamples_synthetic.csv"


class CheckFailedError(Exception):
    """A check did not pass; the message is its evidence."""


@dataclass(frozen=True)
class Budget:
    pipeline_seconds: float = 3 * 3600
    endpoint_seconds: float = 3600
    poll_seconds: float = 30
    smoke_requests: int = 5
    smoke_p95_ms: float = 2000.0


@dataclass(frozen=True)
class Target:
    """What is verified: names and images from the stack's outputs."""

    stack: str
    commit: str
    pipeline: str
    endpoint: str
    training_image: str

    @classmethod
    def from_outputs(cls, stack: str, commit: str, outputs: Mapping[str, Any]) -> Target:
        missing = [k for k in ("pipeline_name", "endpoint_name", "images") if k not in outputs]
        if missing:
            raise ValueError(
                f"stack {stack} has no output {', '.join(missing)}: deploy this template "
                f"first (pulumi up --stack {stack})"
            )
        if outputs.get("deployed_commit") != commit:
            raise ValueError(
                f"stack {stack} runs {outputs.get('deployed_commit')!r}, not {commit}: "
                f"run `pulumi up --stack {stack}` with PROMOTE_IMAGE_TAG={commit} first"
            )
        return cls(
            stack=stack,
            commit=commit,
            pipeline=str(outputs["pipeline_name"]),
            endpoint=str(outputs["endpoint_name"]),
            training_image=str(outputs["images"]["training"]),
        )


def sample_notes(path: Path, count: int) -> list[str]:
    with path.open(newline="", encoding="utf-8") as handle:
        notes = [row["transcription"] for row in csv.DictReader(handle) if row.get("transcription")]
    if len(notes) < count:
        raise CheckFailedError(
            f"{path}: needs {count} notes with a transcription, has {len(notes)}"
        )
    step = len(notes) // count
    return [notes[i * step] for i in range(count)]
