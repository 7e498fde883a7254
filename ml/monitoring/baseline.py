"""The drift baseline a model ships with, and the text features computed against it.

evaluate-model writes `drift_baseline.json` next to `evaluation.json` for every model: on
the evaluation split, the predicted-class shares, the confidence (the endpoint's `score`)
histogram, the note-length histogram and the out-of-vocabulary histogram; plus the
training vocabulary. The document carries its own definitions (bin cuts, the tokenizer,
the hash space), so the monitor bins live traffic exactly as the baseline was binned,
whatever version of the code wrote it.

Vocabulary of a hashed model: the trainer hashes n-grams and keeps no vocabulary, so the
baseline stores the set of hash buckets the training notes' words fall into: every word
the model's own tokenizer (its `token_pattern` and `lowercase`) finds in the train split,
hashed with the same murmurhash3 scikit-learn's HashingVectorizer uses, into
`VOCABULARY_BUCKETS` (2**20) buckets, stored as a bitmap (packbits + zlib + base64, tens
of kB). A word is "out of vocabulary" when its bucket was never hit in training. The
bitmap's memory is fixed whatever the corpus size, and its only error is one-sided: an
unseen word sharing a bucket with a training word counts as known, with probability the
bitmap's fill (`vocabulary.fill`, about 3 % for 30 000 training words), so the OOV rate
is under-estimated by at most that share and never over-estimated.

`TextFeaturizer` is the one definition of a note's length (its tokens) and OOV rate on the
monitor's side; ml/steps/drift_baseline.py (in evaluate.py's code bundle, which cannot import
this) computes the same from the same spec, and tests/ml/test_drift_baseline.py holds the two
equal.
"""

from __future__ import annotations

import base64
import binascii
import json
import zlib
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.feature_extraction.text import HashingVectorizer

BASELINE_FILE = "drift_baseline.json"
FORMAT = "promote-code/drift-baseline"
VERSION = 1
VOCABULARY_BUCKETS = 2**20


class BaselineError(ValueError):
    """A drift baseline that cannot be used; the message names the file and key."""


@dataclass(frozen=True)
class TextSpec:
    """How notes are tokenized and hashed: the model's tokenizer, the vocabulary's buckets."""

    token_pattern: str
    lowercase: bool
    buckets: int

    def vectorizer(self) -> HashingVectorizer:
        # Unigram counts, unsigned and unnormalised: row sums are token counts.
        return HashingVectorizer(
            token_pattern=self.token_pattern,
            lowercase=self.lowercase,
            n_features=self.buckets,
            ngram_range=(1, 1),
            alternate_sign=False,
            norm=None,
            dtype=np.float32,
        )


@dataclass(frozen=True)
class Histogram:
    """Shares per bin; bin i holds values v with cuts[i-1] <= v < cuts[i]."""

    cuts: tuple[float, ...]
    shares: tuple[float, ...]

    def bin(self, values: np.ndarray) -> np.ndarray:
        """Counts of `values` per bin of this histogram."""
        index = np.searchsorted(np.asarray(self.cuts, dtype=float), values, side="right")
        return np.bincount(index, minlength=len(self.cuts) + 1)

    def labels(self, fmt: str = "{:.3g}") -> list[str]:
        """Human-readable bin names for the plot: '<c0', 'c0-c1', ..., '>=cn'."""
        cuts = [fmt.format(c) for c in self.cuts]
        if not cuts:
            return ["all"]
        return [f"<{cuts[0]}"] + [f"{a}-{b}" for a, b in pairwise(cuts)] + [f">={cuts[-1]}"]


@dataclass(frozen=True)
class Baseline:
    """A parsed drift baseline."""

    source: str
    notes: int
    class_shares: dict[str, float]
    confidence: Histogram | None
    length: Histogram
    oov: Histogram | None
    text: TextSpec
    vocabulary: np.ndarray | None
    """Bool per bucket of `text.buckets`: hit by a training word. None: no OOV component."""
    summary: dict[str, Any]
    """The baseline's means (confidence, length, OOV token rate), for the report."""


def load(path: Path) -> Baseline:
    """Read and check `path` (a drift_baseline.json)."""
    try:
        document = json.loads(path.read_text())
    except OSError as error:
        raise BaselineError(f"{path}: cannot read the drift baseline: {error.strerror}") from None
    except json.JSONDecodeError as error:
        raise BaselineError(f"{path}: not JSON ({error}); expected {BASELINE_FILE}") from None
    return parse(document, str(path))


def parse(document: Any, source: str) -> Baseline:
    """A baseline from its JSON document (`source` names it in errors)."""
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise BaselineError(f"{source}: not a drift baseline (format is not {FORMAT!r})")
    if document.get("version") != VERSION:
        raise BaselineError(
            f"{source}: drift baseline version {document.get('version')!r}; this monitor "
            f"reads version {VERSION} (retrain the model or update the monitor image)"
        )
    try:
        text = TextSpec(
            token_pattern=str(document["text"]["token_pattern"]),
            lowercase=bool(document["text"]["lowercase"]),
            buckets=int(document["text"]["buckets"]),
        )
        vocabulary = _vocabulary(document.get("vocabulary"), text.buckets, source)
        return Baseline(
            source=source,
            notes=int(document["evaluation_notes"]),
            class_shares={str(k): float(v) for k, v in document["predicted_class"].items()},
            confidence=_histogram(document.get("confidence")),
            length=_required_histogram(document["length"], source, "length"),
            oov=_histogram(document.get("oov")) if vocabulary is not None else None,
            text=text,
            vocabulary=vocabulary,
            summary={
                "confidence_mean": (document.get("confidence") or {}).get("mean"),
                "length_mean": document["length"].get("mean"),
                "oov_token_rate": (document.get("oov") or {}).get("token_rate"),
            },
        )
    except (KeyError, TypeError, ValueError) as error:
        if isinstance(error, BaselineError):
            raise
        raise BaselineError(f"{source}: malformed drift baseline ({error!r})") from None


def _histogram(raw: Any) -> Histogram | None:
    if raw is None:
        return None
    cuts = tuple(float(c) for c in raw["cuts"])
    shares = tuple(float(s) for s in raw["shares"])
    if len(shares) != len(cuts) + 1:
        raise ValueError(f"{len(cuts)} cuts need {len(cuts) + 1} shares, got {len(shares)}")
    return Histogram(cuts, shares)


def _required_histogram(raw: Any, source: str, key: str) -> Histogram:
    found = _histogram(raw)
    if found is None:
        raise BaselineError(f"{source}: the drift baseline has no {key!r} histogram")
    return found


def _vocabulary(raw: Any, buckets: int, source: str) -> np.ndarray | None:
    if raw is None:
        return None
    try:
        packed = zlib.decompress(base64.b64decode(raw["data"], validate=True))
    except (binascii.Error, zlib.error) as error:
        raise BaselineError(f"{source}: vocabulary.data is not zlib+base64 ({error})") from None
    bits = np.unpackbits(np.frombuffer(packed, dtype=np.uint8))
    if bits.size < buckets:
        raise BaselineError(f"{source}: vocabulary has {bits.size} bits, needs {buckets}")
    return bits[:buckets].astype(bool)


class TextFeaturizer:
    """Token counts and OOV shares of notes, in `spec`'s terms.

    The same numbers as hashing whole notes (ml/steps/drift_baseline.py does that), faster on a
    stream: the model's tokenizer splits each note, and each distinct word is hashed once
    and remembered as known or not (the cache is emptied past `CACHE_WORDS` words, so
    memory stays bounded on traffic full of unseen words).
    """

    CACHE_WORDS = 2_000_000

    def __init__(self, spec: TextSpec, vocabulary: np.ndarray | None) -> None:
        self._vectorizer = spec.vectorizer()
        self._analyzer = self._vectorizer.build_analyzer()
        self._vocabulary = vocabulary
        self._known: dict[str, bool] = {}

    def features(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray | None, float, float]:
        """Per note: token count and OOV share (None without a vocabulary); and the totals
        (tokens, tokens out of vocabulary) for the pooled OOV rate."""
        tokenized = [self._analyzer(text) for text in texts]
        lengths = np.fromiter((len(tokens) for tokens in tokenized), float, len(texts))
        if self._vocabulary is None:
            return lengths, None, float(lengths.sum()), 0.0
        self._learn({token for tokens in tokenized for token in tokens})
        known = self._known
        unknown = np.fromiter(
            (len(tokens) - sum(map(known.__getitem__, tokens)) for tokens in tokenized),
            float,
            len(texts),
        )
        rates = np.divide(unknown, lengths, out=np.zeros_like(lengths), where=lengths > 0)
        return lengths, rates, float(lengths.sum()), float(unknown.sum())

    def _learn(self, words: set[str]) -> None:
        new = sorted(words.difference(self._known))
        if not new:
            return
        if len(self._known) + len(new) > self.CACHE_WORDS:
            self._known.clear()
        assert self._vocabulary is not None
        # One word per row: each row's single column is the word's bucket, as hashing the
        # whole note would put it.
        buckets = self._vectorizer.transform(new).indices
        self._known.update(zip(new, self._vocabulary[buckets].tolist(), strict=True))


def text_features(
    texts: list[str], spec: TextSpec, vocabulary: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray | None, float, float]:
    """`TextFeaturizer(spec, vocabulary).features(texts)`, for one batch."""
    return TextFeaturizer(spec, vocabulary).features(texts)
