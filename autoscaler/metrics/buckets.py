"""Latency histograms onto Knative's buckets: from cumulative ``le`` counts to 27 interval counts.

``RevisionObservation.latency_counts`` uses the buckets of Knative's
``revision_request_latencies`` (milliseconds, ``LATENCY_BUCKETS_MS`` plus +Inf). A source whose
histogram has the same bounds maps one to one. Any other bounds (Knative ≥ 1.19's
OpenTelemetry histogram in seconds, or a replica with custom buckets) are re-bucketed with
one approximation: requests are taken as spread evenly inside each source bucket. So a source
bucket (75 ms, 100 ms] holding 10 requests gives 2 to Knative's (60, 80] and 8 to (80, 100].
Where bounds coincide the result is exact. Requests above the source's largest finite bound L
are only known to be slower than L; they go to the first Knative bucket above L (the least
latency the data supports), not to +Inf.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping

from autoscaler.tuner.observation import LATENCY_BUCKETS_MS, N_LATENCY_COUNTS

__all__ = ["cumulative_delta", "native_buckets", "rebucket_cumulative"]

_NATIVE = frozenset(float(b) for b in LATENCY_BUCKETS_MS)


def native_buckets(cumulative_ms: Mapping[float, float]) -> bool:
    """Whether a histogram has Knative's own finite bounds, which map one to one."""
    return frozenset(b for b in cumulative_ms if math.isfinite(b)) == _NATIVE


def cumulative_delta(
    previous: Mapping[float, float] | None, current: Mapping[float, float]
) -> dict[float, float]:
    """``current - previous`` per ``le`` bound (``previous`` None: ``current`` as is).

    Bounds missing from ``previous`` count from zero; the caller decides about resets.
    """
    if previous is None:
        return dict(current)
    return {le: max(0.0, c - previous.get(le, 0.0)) for le, c in current.items()}


def rebucket_cumulative(cumulative_ms: Mapping[float, float]) -> tuple[float, ...]:
    """Per-bucket counts on Knative's 26 bounds plus +Inf from cumulative counts by ``le`` (ms).

    ``cumulative_ms`` maps each upper bound in milliseconds (``math.inf`` for +Inf) to the
    number of requests at or below it. Bounds may be any; counts that go down with the bound
    (``increase()`` extrapolates each series on its own) are raised to a running maximum.
    """
    finite = sorted(b for b in cumulative_ms if math.isfinite(b))
    values: list[float] = []
    running = 0.0
    for b in finite:
        running = max(running, cumulative_ms[b])
        values.append(running)
    total = max(running, cumulative_ms.get(math.inf, running))
    if not finite:
        counts = [0.0] * N_LATENCY_COUNTS
        counts[-1] = total
        return tuple(counts)

    # The cumulative function F at the source bounds, starting from F(0) = 0.
    xs = [0.0]
    ys = [0.0]
    for b, v in zip(finite, values, strict=True):
        if b <= 0.0:
            ys[0] = v  # requests of zero duration: at the origin
            continue
        xs.append(b)
        ys.append(v)
    largest = xs[-1]

    def cdf(x: float) -> float:
        if x >= largest:
            return ys[-1]
        i = bisect.bisect_left(xs, x)  # xs[i - 1] < x <= xs[i]
        x0, x1, y0, y1 = xs[i - 1], xs[i], ys[i - 1], ys[i]
        return y0 + (y1 - y0) * (x - x0) / (x1 - x0)

    counts = []
    below = 0.0
    for bound in LATENCY_BUCKETS_MS:
        at = cdf(float(bound))
        counts.append(max(0.0, at - below))
        below = max(below, at)
    counts.append(max(0.0, total - below))
    # Requests above the largest finite source bound: into the first Knative bucket above it.
    tail = total - ys[-1]
    first_above = bisect.bisect_right(LATENCY_BUCKETS_MS, largest)
    if tail > 0 and first_above < len(LATENCY_BUCKETS_MS):
        counts[first_above] += tail
        counts[-1] = max(0.0, counts[-1] - tail)
    return tuple(counts)
