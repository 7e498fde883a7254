"""Drift of captured traffic against a model's baseline: one score and a verdict.

Four components, each a distribution compared with the baseline's:

- `predicted_class`: the shares of the labels the endpoint answered (a label the baseline
  does not know gets its own bin, so a different model behind the endpoint shows);
- `confidence`: the endpoint's `score`, in the baseline's decile bins;
- `length`: tokens per note, in the baseline's decile bins;
- `oov`: each note's share of words outside the training vocabulary (fixed bins).

The statistic is the Jensen-Shannon distance (base 2): the square root of the JS
divergence between the two histograms, in [0, 1] (0 identical, 1 disjoint). Chosen over
the population stability index because
- it is bounded and symmetric, so one threshold means the same for every component and
  the score is the largest component distance;
- it is finite when a bin is empty on one side (a specialty never predicted, a length
  never seen): PSI divides by the empty share and needs an arbitrary epsilon, which then
  decides the score (a disappearing rare class scores anywhere from 0.1 to 10);
- PSI's rules of thumb (0.1 / 0.25) assume about ten equally filled bins; over forty
  classes a few hundred notes of unchanged traffic already exceed 0.25 by sampling noise
  alone, while the JS distance's sampling floor stays well below the default threshold
  (`no_drift_p95` in the report: the 95th percentile of the distance between the baseline
  and samples of the same size drawn from it, seeded, so a reader sees how much of a
  score is noise).

The score is the maximum over the components that have data (a response without scores,
CSV with a margin model, leaves `confidence` out); drift is a score above the threshold, as
the drift alarm (`GreaterThanThreshold`) reads the published score. Fewer than `min_notes`
notes gives "insufficient data" and no score: too little traffic is not a verdict. Everything
is deterministic: counts do not depend on batch boundaries and the noise floor is seeded.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, Final

import numpy as np

from ml import limits
from ml.monitoring.baseline import Baseline, Histogram, TextFeaturizer
from ml.monitoring.capture import Observation

# The defaults are the stack settings' (ml/limits.py `DRIFT_THRESHOLD`, `DRIFT_MIN_RECORDS`),
# chosen on the realistic corpus (1500 notes, a 125-note evaluation split): unseen traffic of
# the same mix scores 0.17-0.26 from 100 to 3000 notes (most of it the small baseline's own
# sampling error), one specialty only 0.5-0.8, notes of another domain near 1, so drift is
# a score above 0.35; over forty classes the class distribution's sampling floor
# (`no_drift_p95`) is 0.29 at 100 notes and 0.20 at 200, too close to the threshold below 200.
DEFAULT_THRESHOLD: Final = limits.DRIFT_THRESHOLD.default
DEFAULT_MIN_NOTES: Final = limits.DRIFT_MIN_RECORDS.default
BATCH = 2048
"""Notes featurised at once: bounded memory for a day of traffic, vectorised work."""
UNKNOWN_LABEL = "(not in baseline)"
NOISE_DRAWS = 200
NOISE_SEED = 20260101

COMPONENTS = ("predicted_class", "confidence", "length", "oov")
NO_DRIFT, DRIFT, INSUFFICIENT = "no drift", "drift", "insufficient data"


def js_distance(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon distance (base 2) between two histograms (counts or shares)."""
    p = np.asarray(p, dtype=float)
    q = np.asarray(q, dtype=float)
    p, q = p / p.sum(), q / q.sum()
    m = (p + q) / 2
    divergence = 0.0
    for side in (p, q):
        present = side > 0
        divergence += 0.5 * float(np.sum(side[present] * np.log2(side[present] / m[present])))
    return float(np.sqrt(min(1.0, max(0.0, divergence))))


def no_drift_p95(shares: np.ndarray, n: int) -> float:
    """The 95th percentile of the distance between `shares` and n-note samples of them."""
    rng = np.random.default_rng(NOISE_SEED)
    p = np.asarray(shares, dtype=float)
    draws = rng.multinomial(n, p / p.sum(), size=NOISE_DRAWS)
    return float(np.percentile([js_distance(p, draw) for draw in draws], 95))


@dataclass(frozen=True)
class Component:
    name: str
    bins: list[str]
    baseline: list[float]
    current: list[float]
    """Shares of the analysed notes per bin ([] when the component has no data)."""
    notes: int
    distance: float | None
    no_drift_p95: float | None
    note: str | None = None


@dataclass(frozen=True)
class DriftResult:
    verdict: str
    score: float | None
    threshold: float
    min_notes: int
    notes: int
    worst: str | None
    components: dict[str, Component]
    summary: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "score": self.score,
            "threshold": self.threshold,
            "min_notes": self.min_notes,
            "notes": self.notes,
            "worst_component": self.worst,
            "statistic": "Jensen-Shannon distance (base 2), max over components",
            "components": {
                name: {
                    "distance": c.distance,
                    "no_drift_p95": c.no_drift_p95,
                    "notes": c.notes,
                    "bins": c.bins,
                    "baseline": c.baseline,
                    "current": c.current,
                    **({"note": c.note} if c.note else {}),
                }
                for name, c in self.components.items()
            },
            "summary": self.summary,
        }


@dataclass
class DriftAccumulator:
    """Bins observations against `baseline` batch by batch; `result()` compares."""

    baseline: Baseline
    labels: list[str] = field(init=False)
    class_counts: np.ndarray = field(init=False)
    confidence_counts: np.ndarray | None = field(init=False)
    length_counts: np.ndarray = field(init=False)
    oov_counts: np.ndarray | None = field(init=False)
    notes: int = 0
    scored: int = 0
    score_sum: float = 0.0
    length_sum: float = 0.0
    tokens: float = 0.0
    unknown_tokens: float = 0.0

    def __post_init__(self) -> None:
        base = self.baseline
        self.labels = [*sorted(base.class_shares), UNKNOWN_LABEL]
        self._index = {label: i for i, label in enumerate(self.labels)}
        self.class_counts = np.zeros(len(self.labels), dtype=np.int64)
        self.confidence_counts = (
            None if base.confidence is None else np.zeros(len(base.confidence.shares), np.int64)
        )
        self.length_counts = np.zeros(len(base.length.shares), dtype=np.int64)
        self.oov_counts = None if base.oov is None else np.zeros(len(base.oov.shares), np.int64)
        self._featurizer = TextFeaturizer(base.text, base.vocabulary)

    def add(self, batch: list[Observation]) -> None:
        if not batch:
            return
        unknown = self._index[UNKNOWN_LABEL]
        ids = np.fromiter((self._index.get(o.label, unknown) for o in batch), np.int64, len(batch))
        self.class_counts += np.bincount(ids, minlength=len(self.labels))
        scores = np.array([o.score for o in batch if o.score is not None], dtype=float)
        if self.confidence_counts is not None and self.baseline.confidence and scores.size:
            self.confidence_counts += self.baseline.confidence.bin(scores)
            self.scored += int(scores.size)
            self.score_sum += float(scores.sum())
        base = self.baseline
        lengths, rates, tokens, unknown_tokens = self._featurizer.features([o.text for o in batch])
        self.length_counts += base.length.bin(lengths)
        self.length_sum += float(lengths.sum())
        if self.oov_counts is not None and base.oov is not None and rates is not None:
            self.oov_counts += base.oov.bin(rates)
        self.tokens += tokens
        self.unknown_tokens += unknown_tokens
        self.notes += len(batch)

    def add_all(self, observations: Iterable[Observation]) -> None:
        for batch in batches(observations, BATCH):
            self.add(batch)

    def merge(self, other: DriftAccumulator) -> None:
        """Add the counts of `other` (same baseline), e.g. from another process."""
        self.class_counts += other.class_counts
        if self.confidence_counts is not None and other.confidence_counts is not None:
            self.confidence_counts += other.confidence_counts
        self.length_counts += other.length_counts
        if self.oov_counts is not None and other.oov_counts is not None:
            self.oov_counts += other.oov_counts
        self.notes += other.notes
        self.scored += other.scored
        self.score_sum += other.score_sum
        self.length_sum += other.length_sum
        self.tokens += other.tokens
        self.unknown_tokens += other.unknown_tokens

    def __getstate__(self) -> dict[str, Any]:
        # The word cache stays in its process; counts are what a merge needs.
        state = dict(self.__dict__)
        state.pop("_featurizer", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._featurizer = TextFeaturizer(self.baseline.text, self.baseline.vocabulary)

    def result(
        self, threshold: float = DEFAULT_THRESHOLD, min_notes: int = DEFAULT_MIN_NOTES
    ) -> DriftResult:
        base = self.baseline
        baseline_classes = np.array([base.class_shares.get(lb, 0.0) for lb in self.labels])
        components = {
            "predicted_class": self._component(
                "predicted_class", self.labels, baseline_classes, self.class_counts, min_notes
            ),
            "confidence": self._histogram_component(
                "confidence", base.confidence, self.confidence_counts, min_notes
            ),
            "length": self._histogram_component(
                "length", base.length, self.length_counts, min_notes
            ),
            "oov": self._histogram_component("oov", base.oov, self.oov_counts, min_notes),
        }
        scored = {n: c.distance for n, c in components.items() if c.distance is not None}
        summary = {
            "baseline": {**base.summary, "notes": base.notes, "source": base.source},
            "current": {
                # Rounded: sums merged from several processes may differ in the last bits.
                "confidence_mean": _rounded(self.score_sum, self.scored),
                "length_mean": _rounded(self.length_sum, self.notes),
                "oov_token_rate": (
                    _rounded(self.unknown_tokens, self.tokens)
                    if base.vocabulary is not None
                    else None
                ),
                "unknown_label_share": _rounded(float(self.class_counts[-1]), self.notes),
            },
        }
        if self.notes < min_notes or not scored:
            return DriftResult(
                INSUFFICIENT, None, threshold, min_notes, self.notes, None, components, summary
            )
        worst = max(scored, key=lambda name: (scored[name], name))
        score = scored[worst]
        # Above the threshold, as the alarm (GreaterThanThreshold) reads it.
        verdict = DRIFT if score > threshold else NO_DRIFT
        return DriftResult(
            verdict, score, threshold, min_notes, self.notes, worst, components, summary
        )

    def _histogram_component(
        self, name: str, histogram: Histogram | None, counts: np.ndarray | None, min_notes: int
    ) -> Component:
        if histogram is None or counts is None:
            why = "no scores in the baseline" if name == "confidence" else "no vocabulary"
            return Component(name, [], [], [], 0, None, None, f"left out: {why}")
        fmt = "{:.0f}" if name == "length" else "{:.3g}"
        shares = np.asarray(histogram.shares, dtype=float)
        return self._component(name, histogram.labels(fmt), shares, counts, min_notes)

    @staticmethod
    def _component(
        name: str, bins: list[str], baseline: np.ndarray, counts: np.ndarray, min_notes: int
    ) -> Component:
        n = int(counts.sum())
        baseline_list = [round(float(v), 6) for v in baseline]
        if n < min_notes:
            note = f"left out: {n} notes with this data, fewer than {min_notes}"
            current = [round(float(c) / n, 6) for c in counts] if n else []
            return Component(name, bins, baseline_list, current, n, None, None, note)
        return Component(
            name,
            bins,
            baseline_list,
            [round(float(c) / n, 6) for c in counts],
            n,
            round(js_distance(baseline, counts), 6),
            round(no_drift_p95(baseline, n), 6),
        )


def _rounded(total: float, count: float) -> float | None:
    return round(total / count, 6) if count else None


def batches(items: Iterable[Observation], size: int) -> Iterator[list[Observation]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch
