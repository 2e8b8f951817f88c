"""What the tuner sees of one revision per tick: the ``RevisionObservation`` snapshot.

The controller builds one per revision and tick from the metrics it scrapes. The latency
histogram uses the buckets of Knative's ``revision_request_latencies`` (milliseconds, upstream
``pkg/metrics`` of knative/serving, queue-proxy port 9091), counted for the interval only
(not cumulative: subtract the previous scrape, see ``counts_from_cumulative``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

# Upper bounds (ms) of Knative's request latency buckets; a last bucket (+Inf) follows them.
LATENCY_BUCKETS_MS: tuple[float, ...] = (
    5, 10, 20, 40, 60, 80, 100, 150, 200, 250, 300, 350, 400, 450, 500,
    600, 700, 800, 900, 1000, 2000, 5000, 10000, 20000, 50000, 100000,
)  # fmt: skip
N_LATENCY_COUNTS = len(LATENCY_BUCKETS_MS) + 1  # 27: the finite buckets and +Inf

# Knative's per-pod concurrency "total" when neither the target annotation nor
# containerConcurrency is set (pkg/autoscaler/scaling); the KPA aims at total x utilization.
KNATIVE_DEFAULT_TARGET = 100.0
KNATIVE_DEFAULT_UTILIZATION_PERCENTAGE = 70.0


@dataclass(frozen=True, slots=True)
class RevisionObservation:
    """Metrics of one revision over the interval ``(t_s - interval_s, t_s]``.

    ``avg_concurrency_per_replica`` is time-weighted over the interval (two 500 ms requests in
    one second on one replica count as 1). ``latency_counts`` has one count per bucket of
    ``LATENCY_BUCKETS_MS`` plus +Inf (27 numbers), for requests completed in the interval.
    ``applied_target`` is the ``autoscaling.knative.dev/target`` in force on the revision during
    the interval (None: not set, Knative's default applies). ``arrivals_s`` are exact request
    arrival times when the controller has them (they make idle times exact).
    ``latency_sum_ms`` is the histogram's ``_sum`` over the interval (None: the source has none):
    beyond the last bound (100 s) the buckets say only how many, the sum says how long
    (``tail_mean_ms``).
    ``concurrency_from_completions``: the concurrency is the time the interval's completed
    requests spent in replicas over the interval (the histogram's ``_sum``: each request adds all
    of its duration when it finishes), not the time-weighted concurrency over the interval: a
    request longer than the interval counts all in the interval it finishes in, and the tuner
    keeps no history of such figures to place it by (``lived``).
    ``sum_matches_counts``: the sum and the counts are exact deltas over the same requests, in
    the histogram's own buckets (Knative's), so the sum may bound a percentile
    (``percentile_from_counts``) and is learned with the bins. Not so for counts re-bucketed from
    other bounds, nor for PromQL's ``increase()``, which extrapolates each series on its own.
    ``in_flight_known``: False when no request finished in the interval and the source could
    not tell whether any was in flight (its gauge of requests in flight had no sample); the
    tuner then neither starts nor restarts its count of how long requests have been in flight.
    ``container_concurrency``: the revision's ``containerConcurrency`` (0: none). When non-zero
    Knative caps the per-pod total at it: the target in force is ``min(target, cc)``.
    """

    t_s: float
    interval_s: float
    ready_replicas: int
    avg_concurrency_per_replica: float
    request_count: int
    latency_counts: tuple[float, ...]
    applied_target: float | None = None
    target_utilization_percentage: float = KNATIVE_DEFAULT_UTILIZATION_PERCENTAGE
    arrivals_s: tuple[float, ...] | None = None
    latency_sum_ms: float | None = None
    concurrency_from_completions: bool = False
    sum_matches_counts: bool = False
    in_flight_known: bool = True
    container_concurrency: int = 0

    def __post_init__(self) -> None:
        problems = []
        if not self.interval_s > 0:
            problems.append(f"interval_s must be > 0, got {self.interval_s}")
        if self.ready_replicas < 0:
            problems.append(f"ready_replicas must be >= 0, got {self.ready_replicas}")
        if not (
            self.avg_concurrency_per_replica >= 0
            and math.isfinite(self.avg_concurrency_per_replica)
        ):
            problems.append(
                f"avg_concurrency_per_replica must be finite and >= 0, got {self.avg_concurrency_per_replica}"
            )
        if self.request_count < 0:
            problems.append(f"request_count must be >= 0, got {self.request_count}")
        if len(self.latency_counts) != N_LATENCY_COUNTS:
            problems.append(
                f"latency_counts must have {N_LATENCY_COUNTS} entries (26 buckets and +Inf), "
                f"got {len(self.latency_counts)}"
            )
        elif not min(self.latency_counts) >= 0 and any(c < 0 for c in self.latency_counts):
            # (a least count of 0 or more rules out a negative one in a single pass; NaN, which
            # is not negative, sends the check to the item-by-item test)
            problems.append("latency_counts must not be negative")
        if self.latency_sum_ms is not None and not (
            self.latency_sum_ms >= 0 and math.isfinite(self.latency_sum_ms)
        ):
            problems.append(f"latency_sum_ms must be finite and >= 0, got {self.latency_sum_ms}")
        if self.applied_target is not None and not self.applied_target > 0:
            problems.append(f"applied_target must be > 0, got {self.applied_target}")
        if self.container_concurrency < 0:
            problems.append(f"container_concurrency must be >= 0, got {self.container_concurrency}")
        if not 1 <= self.target_utilization_percentage <= 100:
            problems.append(
                "target_utilization_percentage must be in [1, 100], "
                f"got {self.target_utilization_percentage}"
            )
        if problems:
            raise ValueError("invalid RevisionObservation: " + "; ".join(problems))

    @property
    def start_s(self) -> float:
        return self.t_s - self.interval_s

    @property
    def utilization(self) -> float:
        return self.target_utilization_percentage / 100.0

    def target_in_force(self, target: float) -> float:
        """The per-pod total Knative uses for ``target``: capped by containerConcurrency."""
        cc = self.container_concurrency
        return min(target, float(cc)) if cc > 0 else target

    @property
    def exact_sum_ms(self) -> float | None:
        """The sum where it may bound percentiles (``sum_matches_counts``), else None."""
        return self.latency_sum_ms if self.sum_matches_counts else None

    @property
    def tail_sum_ms(self) -> float:
        """Latency summed over the requests beyond the last bound (0 without a sum)."""
        return tail_sum_ms(self.latency_counts, self.latency_sum_ms)


def tail_sum_ms(counts: Sequence[float], sum_ms: float | None) -> float:
    """The part of a histogram's sum that belongs to its +Inf bucket.

    The finite buckets' share is estimated at their midpoints; what is left is the +Inf
    bucket's, never less than the last bound for each of its requests. Zero when the +Inf
    bucket is empty or no sum is known.
    """
    n_inf = counts[-1] if counts else 0.0
    if sum_ms is None or n_inf <= 0:
        return 0.0
    finite = 0.0
    lower = 0.0
    for bound, c in zip(LATENCY_BUCKETS_MS, counts, strict=False):
        finite += c * (lower + bound) / 2.0
        lower = bound
    return max(sum_ms - finite, n_inf * LATENCY_BUCKETS_MS[-1])


def counts_from_cumulative(
    previous: Sequence[float] | None, current: Sequence[float]
) -> tuple[float, ...]:
    """Per-interval bucket counts from two scrapes of cumulative (``le``) bucket counts.

    Both sequences hold 27 cumulative counts (the last one is +Inf). A counter that went down
    (a replica restarted) is taken as a reset: the current scrape counts from zero.
    """
    if len(current) != N_LATENCY_COUNTS:
        raise ValueError(f"expected {N_LATENCY_COUNTS} cumulative counts, got {len(current)}")
    if previous is not None and len(previous) != N_LATENCY_COUNTS:
        raise ValueError(f"expected {N_LATENCY_COUNTS} cumulative counts, got {len(previous)}")
    if previous is not None and all(c >= p for c, p in zip(current, previous, strict=True)):
        delta = [c - p for c, p in zip(current, previous, strict=True)]
    else:
        delta = list(current)
    out = []
    below = 0.0
    for cum in delta:
        out.append(max(0.0, cum - below))
        below = max(below, cum)
    return tuple(out)
