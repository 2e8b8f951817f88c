"""Estimator: a latency percentile from histogram bucket counts.

Linear interpolation inside the bucket that holds the rank, as Prometheus'
``histogram_quantile`` does (the first bucket starts at 0). A rank that falls in the +Inf
bucket gives ``math.inf``: the percentile is beyond the last bound, which is a miss for any
objective.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from autoscaler.tuner.observation import LATENCY_BUCKETS_MS


def percentile_from_counts(
    counts: Sequence[float], q: float, bounds: Sequence[float] = LATENCY_BUCKETS_MS
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
                return math.inf
            lower = bounds[i - 1] if i > 0 else 0.0
            return lower + (bounds[i] - lower) * (rank - below) / c
        below += c
    return math.inf  # only reached through rounding at the very top
