"""Estimator: a latency percentile from histogram bucket counts.

Linear interpolation inside the bucket that holds the rank, as Prometheus'
``histogram_quantile`` does (the first bucket starts at 0). A rank that falls in the +Inf
bucket (beyond Knative's last bound, 100 s) is read, when the histogram's sum tells the
bucket's mean ``m`` (``tail_sum``), as if the bucket's requests spread evenly from the last
bound ``L`` to ``2m - L``: right for a tail that starts at the bound (requests of 50 s to 3 min),
high for one far beyond it (requests of 8 min +- 1 %), so an objective judged by it errs on the
safe side. Without the sum it is ``math.inf``: beyond the last bound, a miss for any objective.

With the histogram's whole sum (``latency_sum``), a rank in a finite bucket is also bounded by
it: every request is at least its bucket's lower bound, so the rank's bucket holds at most the
sum less those lower bounds, and at most a ``1 - f`` share of its requests can lie above the
bucket's ``f`` point. Knative's buckets widen to 2.5 times their lower bound past a second;
requests of a model that takes 19.9 s, all served in 20.5 s, land in (20, 50] s, and linear
interpolation puts their p95 at 48.5 s. The sum bounds it at 30 s (the truth is 20.5 s). The
estimate is the lower of the two, so it is never above the linear one and, where the sum
lowers it, still not below the true percentile.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from autoscaler.tuner.observation import LATENCY_BUCKETS_MS


def percentile_from_counts(
    counts: Sequence[float],
    q: float,
    bounds: Sequence[float] = LATENCY_BUCKETS_MS,
    tail_sum: float = 0.0,
    latency_sum: float | None = None,
) -> float | None:
    """The ``q``-th percentile (0 < q < 100) of bucketed samples; None when there are none.

    ``counts`` has one entry per bound plus one for +Inf. Example: 100 requests, 90 in
    (0, 5] and 10 in (100, 150]: p95 is at rank 95, the 5th of the 10 in (100, 150],
    so 100 + 50 x 5/10 = 125 ms.
    """
    if not 0 < q < 100:
        raise ValueError(f"percentile must be in (0, 100), got {q}")
    if len(counts) != len(bounds) + 1:
        raise ValueError(f"expected {len(bounds) + 1} counts, got {len(counts)}")
    total = math.fsum(counts)
    if total <= 0:
        return None
    rank = q / 100.0 * total
    below = 0.0
    for i, c in enumerate(counts):
        if c <= 0:
            continue
        if below + c >= rank:
            if i >= len(bounds):
                return _tail(c, (rank - below) / c, bounds, tail_sum)
            lower = bounds[i - 1] if i > 0 else 0.0
            f = (rank - below) / c
            linear = lower + (bounds[i] - lower) * f
            if latency_sum is None:
                return linear
            return min(linear, _sum_bound(counts, i, f, bounds, latency_sum))
        below += c
    return _tail(counts[-1], 1.0, bounds, tail_sum)  # only reached through rounding at the top


def _sum_bound(
    counts: Sequence[float], i: int, f: float, bounds: Sequence[float], latency_sum: float
) -> float:
    """The highest the ``f`` point of bucket ``i`` can be with this sum: the other buckets'
    requests at their lower bounds leave the bucket's mean at most ``m``; then at most a
    ``1 - f`` share of its requests reach ``x`` when ``f L + (1 - f) x <= m``. Infinite when the
    sum is below what the counts already require (sum and counts from different requests)."""
    lowers = [0.0, *bounds]
    floor = math.fsum([c * lo for c, lo in zip(counts, lowers, strict=True)])
    lower = lowers[i]
    if f >= 1.0 or latency_sum < floor * (1.0 - 1e-9):
        return math.inf
    return lower + max(0.0, latency_sum - floor) / (counts[i] * (1.0 - f))


def _tail(count: float, fraction: float, bounds: Sequence[float], tail_sum: float) -> float:
    """The ``fraction`` point of the +Inf bucket spread evenly over ``[L, 2m - L]``; inf when
    its sum is unknown."""
    if count <= 0 or tail_sum <= 0:
        return math.inf
    last = bounds[-1]
    mean = max(last, tail_sum / count)
    return last + 2.0 * (mean - last) * min(1.0, max(0.0, fraction))
