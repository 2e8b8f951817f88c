"""The concurrency a revision's requests lived through, for requests longer than a tick.

A request finishing now began its latency ago. When requests last minutes and the tuner ticks
every 30 s, the interval they finish in is not the one they were served in: after a back-off,
the requests finishing over the next minutes began at the old, higher concurrency, and judging
their latency at the new concurrency would back off again and learn a knee where there is
none. ``ConcurrencyHistory`` keeps the recent intervals' per-replica concurrency, so a
latency is put where its requests were served: the time-weighted concurrency over the
lifetime of a request finishing mid-interval (``lived_concurrency``). Requests no longer than
the interval are judged at the interval's own concurrency, as before, and so is a concurrency
counted from completions (the direct scrape's Little's law on the histogram's ``_sum``), which
counts each finished request's whole life in the interval it finished in and gives no
time-weighted figure to place it by.

Worked case: 30 s ticks, requests of 150 s; 6 conc/replica until t=300, then a back-off to 3.
The interval (300, 330] finishes requests that lived through (165, 315]: 6 for 135 s and 3
for 15 s, so 5.7 conc/replica, not 3.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass

from autoscaler.tuner.observation import RevisionObservation

# Spans kept at most; beyond it the two oldest merge into one (older history coarser).
MAX_SPANS = 64


@dataclass(frozen=True, slots=True)
class ConcurrencyHistory:
    """``(start_s, end_s, concurrency per replica)`` of recent intervals with replicas ready,
    oldest first, none overlapping the next."""

    spans: tuple[tuple[float, float, float], ...] = ()

    def add(
        self, start_s: float, end_s: float, concurrency: float, keep_s: float
    ) -> ConcurrencyHistory:
        """With the interval ``(start_s, end_s]``. Spans that ended ``keep_s`` before it are
        dropped; a span it overlaps ends where it starts (a metrics window longer than the tick,
        or clock rounding). An interval ending no later than the last span (observed again, or
        out of order) changes nothing."""
        if not end_s > start_s or (self.spans and end_s <= self.spans[-1][1]):
            return self
        if not self.spans or self.spans[-1][1] <= start_s:
            # none overlaps it: the spans that ended too long ago go, the oldest ones (spans
            # are ordered and do not overlap, so they end in order)
            spans = list(self.spans[bisect_right(self.spans, end_s - keep_s, key=_end) :])
        else:
            spans = [
                (a, min(b, start_s), c)
                for a, b, c in self.spans
                if b > end_s - keep_s and a < start_s
            ]
        spans.append((start_s, end_s, concurrency))
        while len(spans) > MAX_SPANS:
            (a0, b0, c0), (a1, b1, c1) = spans[0], spans[1]
            if a1 - b0 > 0.01 * (b1 - a0):  # a gap: merged, it would count as covered
                del spans[0]
                continue
            w0, w1 = b0 - a0, b1 - a1
            spans[0:2] = [(a0, b1, (c0 * w0 + c1 * w1) / (w0 + w1))]
        return ConcurrencyHistory(tuple(spans))

    def average(self, from_s: float, to_s: float) -> float | None:
        """Time-weighted concurrency over what the spans cover of ``(from_s, to_s]``."""
        total = covered = 0.0
        for a, b, c in self.spans:
            lo, hi = max(a, from_s), min(b, to_s)
            if hi > lo:
                total += c * (hi - lo)
                covered += hi - lo
        return total / covered if covered > 0 else None


def _end(span: tuple[float, float, float]) -> float:
    return span[1]


def lifetime_s(obs: RevisionObservation, unfinished_for_s: float = 0.0) -> float:
    """How long the requests judged in ``obs`` had been in a replica: their mean latency (the
    histogram's sum over its count), or, with none finished, how long some have been in flight
    (0: unknown)."""
    finished = sum(obs.latency_counts) or obs.request_count
    if finished > 0:
        return (obs.latency_sum_ms or 0.0) / finished / 1000.0
    return unfinished_for_s


def lived_concurrency(
    obs: RevisionObservation, history: ConcurrencyHistory, unfinished_for_s: float = 0.0
) -> float:
    """The per-replica concurrency the requests judged in ``obs`` were served at (``history``
    includes ``obs``): the interval's own for requests no longer than it, and for a
    concurrency counted from completions (each finished request adds its whole duration at its
    finish; there is no time-weighted history to place it by)."""
    c = obs.avg_concurrency_per_replica
    life = lifetime_s(obs, unfinished_for_s)
    if life <= obs.interval_s or obs.concurrency_from_completions:
        return c
    mid = obs.t_s - obs.interval_s / 2.0
    lived = history.average(mid - life, mid)
    return c if lived is None else lived


def history_keep_s(objective_ms: float, interval_s: float) -> float:
    """How far back the history reaches: requests up to four times the objective (those of an
    overloaded revision) find their whole lifetime in it."""
    return max(4.0 * objective_ms / 1000.0, 2.0 * interval_s)
