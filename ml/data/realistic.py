"""A deterministic generator of REALISTIC-SHAPED, SYNTHETIC medical transcriptions.

The shipped `mtsamples_synthetic.csv` (8 classes, short, cleanly separable) keeps
the local demo fast; it says little about real notes. This corpus has the shape
of the public mtsamples dataset without any of its text:

- 40 specialties with the public dataset's class counts as weights (Surgery
  22 % of rows, Hospice - Palliative Care 0.1 %);
- long notes (a few hundred words) with the section headers of real document
  types: operative notes, consults / H&Ps, SOAP notes, discharge summaries,
  imaging reports, letters;
- the public dataset's label noise: the document-type "specialties" (Surgery,
  Consult - History and Phy., SOAP / Chart / Progress Notes, Discharge Summary,
  Radiology, ...) are mostly exact copies of notes filed under a clinical
  specialty (`duplicate_share` of all rows; about half in the public data), plus
  a few exact repeats under the same label and near-exact re-typed copies
  (changed case, spacing or punctuation);
- related specialties share vocabulary (Neurology / Neurosurgery, Orthopedic /
  Podiatry / Chiropractic, ...), so the task is not separable.

Every word is generated: nothing comes from patients or from the mtsamples
corpus. Every row says it is synthetic (`description` starts with
`[SYNTHETIC-REALISTIC]`, `keywords` contain `synthetic`). The same arguments
always give the same rows (numpy's PCG64 stream). The specialties, document types and
words are data, in `ml.data.realistic_vocabulary`; this module holds the generator.

    uv run python -m ml.data.realistic --notes 5000 --output /tmp/realistic.csv
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ml.data.realistic_vocabulary import (
    CLASS_COUNTS,
    DOC_TYPES,
    GENERIC,
    GROUPS,
    HUBS,
    SURGICAL,
    TOPICS,
)

COLUMNS = ("description", "medical_specialty", "sample_name", "transcription", "keywords")
SEED = 20261201
DEFAULT_NOTES = 5000
DUPLICATE_SHARE = 0.45
"""Share of rows that are an exact copy of another row's note under a second label."""
REPEAT_SHARE = 0.01
"""Share of rows that repeat another row exactly, label included."""
NEAR_DUPLICATE_SHARE = 0.02
"""Share of rows that re-type another row's note (case, spacing, punctuation changed)."""


def _doc_type_weights(label: str) -> dict[str, float]:
    if label in HUBS:
        return {HUBS[label]: 1.0}
    if label in ("Autopsy", "Lab Medicine - Pathology"):
        return {"imaging": 0.5, "consult": 0.5}
    if label in SURGICAL:
        return {"operative": 0.5, "consult": 0.25, "soap": 0.1, "discharge": 0.05, "imaging": 0.1}
    return {"consult": 0.5, "soap": 0.25, "discharge": 0.1, "letter": 0.05, "imaging": 0.1}


@dataclass(frozen=True)
class _Vocab:
    generic: np.ndarray
    generic_cdf: np.ndarray
    labels: tuple[str, ...]
    clinical: tuple[str, ...]
    topics: dict[str, np.ndarray]
    doc_words: dict[str, np.ndarray]
    related: dict[str, tuple[str, ...]]


def _vocab() -> _Vocab:
    generic = np.array(GENERIC, dtype=object)
    ranks = np.arange(1, len(generic) + 1, dtype=float)
    zipf = 1.0 / ranks
    related: dict[str, tuple[str, ...]] = {}
    for label in CLASS_COUNTS:
        members = {m for group in GROUPS if label in group for m in group} - {label}
        related[label] = tuple(sorted(members))
    return _Vocab(
        generic=generic,
        generic_cdf=np.cumsum(zipf) / zipf.sum(),
        labels=tuple(CLASS_COUNTS),
        clinical=tuple(label for label in CLASS_COUNTS if label not in HUBS),
        topics={label: np.array(_terms(text), dtype=object) for label, text in TOPICS.items()},
        doc_words={
            name: np.array(words.split(), dtype=object) for name, (_, words) in DOC_TYPES.items()
        },
        related=related,
    )


def _terms(text: str) -> list[str]:
    """Single words plus the multi-word terms a specialty is known by (adjacent pairs)."""
    words = text.split()
    return words + [f"{a} {b}" for a, b in zip(words[::2], words[1::2], strict=False)]


def _note(rng: np.random.Generator, vocab: _Vocab, label: str, doc_type: str) -> str:
    """One note: a header per section, sentences mixing generic, topic and borrowed words."""
    headers, _ = DOC_TYPES[doc_type]
    topic_label = label
    if label in HUBS and rng.random() < 0.7:
        # A document-type note is still about some clinical specialty.
        topic_label = vocab.clinical[int(rng.integers(0, len(vocab.clinical)))]
    related = vocab.related[topic_label]
    if related and rng.random() < 0.7:
        borrowed = related[int(rng.integers(0, len(related)))]
    else:
        borrowed = vocab.labels[int(rng.integers(0, len(vocab.labels)))]
    n_sections = int(rng.integers(max(3, len(headers) - 3), len(headers) + 1))
    lengths = rng.integers(25, 75, size=n_sections)
    total = int(lengths.sum())
    kind = rng.random(total)
    words = vocab.generic[np.searchsorted(vocab.generic_cdf, rng.random(total))]
    for low, high, pool in (
        (0.62, 0.80, vocab.doc_words[doc_type]),
        (0.80, 0.92, vocab.topics[topic_label]),
        (0.92, 1.01, vocab.topics[borrowed]),
    ):
        mask = (kind >= low) & (kind < high)
        words[mask] = pool[rng.integers(0, len(pool), size=int(mask.sum()))]
    tokens: list[str] = words.tolist()
    # Sentence ends about every 14 words, a dose somewhere in each section.
    for position in np.flatnonzero(rng.random(total) < 1 / 14):
        tokens[position] += "."
    starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
    doses = rng.integers(2, 400, size=n_sections)
    for start, length, dose in zip(starts, lengths, doses, strict=True):
        tokens[int(start + length // 2)] = f"{dose} mg"
    parts = [
        f"The patient is a {int(rng.integers(1, 95))}-year-old "
        f"{'male' if rng.random() < 0.5 else 'female'}."
    ]
    for header, start, length in zip(headers, starts, lengths, strict=False):
        body = " ".join(tokens[int(start) : int(start + length)]).rstrip(".")
        parts.append(f"{header}: {body[:1].upper()}{body[1:]}.")
    return "  ".join(parts)


def _retyped(rng: np.random.Generator, text: str) -> str:
    """A near-exact copy: the same words re-typed (case, spacing, punctuation)."""
    variant = int(rng.integers(0, 3))
    if variant == 0:
        return text.upper()
    if variant == 1:
        return text.replace(". ", ".  ").replace(": ", ":   ")
    return text.replace(".", " .").rstrip(" .") + " ,"


def _counts(notes: int) -> dict[str, int]:
    """Rows per label: the public weights, every label at least 3 rows."""
    total = sum(CLASS_COUNTS.values()) * (1 + REPEAT_SHARE + NEAR_DUPLICATE_SHARE)
    return {label: max(3, round(notes * count / total)) for label, count in CLASS_COUNTS.items()}


def generate(
    notes: int = DEFAULT_NOTES,
    seed: int = SEED,
    duplicate_share: float = DUPLICATE_SHARE,
    repeat_share: float = REPEAT_SHARE,
    near_duplicate_share: float = NEAR_DUPLICATE_SHARE,
) -> pd.DataFrame:
    """The corpus: about `notes` rows (label counts rounded); same arguments, same rows."""
    rng = np.random.default_rng(seed)
    vocab = _vocab()
    counts = _counts(notes)
    n_rows = sum(counts.values())
    hub_rows = sum(counts[hub] for hub in HUBS)
    copy_fraction = min(0.95, duplicate_share * n_rows / hub_rows) if hub_rows else 0.0
    rows: list[tuple[str, str]] = []
    by_type: dict[str, list[int]] = {name: [] for name in DOC_TYPES}
    # Clinical specialties first: their notes are what the hubs copy.
    for label in sorted(counts, key=lambda name: (name in HUBS, name)):
        weights = _doc_type_weights(label)
        types = list(weights)
        p = np.array([weights[t] for t in types])
        n_copies = round(counts[label] * copy_fraction) if label in HUBS else 0
        for _ in range(counts[label] - n_copies):
            doc_type = types[int(rng.choice(len(types), p=p / p.sum()))]
            if label not in HUBS:
                by_type[doc_type].append(len(rows))
            rows.append((label, _note(rng, vocab, label, doc_type)))
        sources = by_type[HUBS[label]] if label in HUBS else []
        for _ in range(n_copies if sources else 0):
            rows.append((label, rows[int(rng.choice(sources))][1]))
    for _ in range(round(n_rows * repeat_share)):
        rows.append(rows[int(rng.integers(0, len(rows)))])
    for _ in range(round(n_rows * near_duplicate_share)):
        label, text = rows[int(rng.integers(0, len(rows)))]
        rows.append((label, _retyped(rng, text)))
    order = rng.permutation(len(rows))
    records = []
    for number, position in enumerate(order, start=1):
        label, text = rows[int(position)]
        records.append(
            {
                "description": f"[SYNTHETIC-REALISTIC] {label} note {number}",
                # Leading space as in the public CSV; preprocess strips it.
                "medical_specialty": f" {label}",
                "sample_name": f"Synthetic {label} {number:05d}",
                "transcription": text,
                "keywords": f"synthetic, {label.lower()}",
            }
        )
    return pd.DataFrame(records, columns=list(COLUMNS))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write the realistic synthetic corpus (CSV).")
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--notes", type=int, default=DEFAULT_NOTES)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--duplicate-share", type=float, default=DUPLICATE_SHARE)
    args = parser.parse_args(argv)
    frame = generate(args.notes, args.seed, args.duplicate_share)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(args.output, index=False)
    print(f"wrote {len(frame)} notes to {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
