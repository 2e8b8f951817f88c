"""A deterministic synthetic plant for closed-loop tests of the tuner.

A model whose latency percentile is flat (``base_ms``) up to a true knee concurrency ``knee``
and grows as ``(c / knee) ** growth_exponent`` beyond it; the KPA part is Knative's steady
state: ``replicas = ceil(load / (target x utilization))`` and per-replica concurrency
``load / replicas``. Each interval's latencies are a fixed spread whose 95th percentile is the
model's, bucketed with Knative's bounds, so the tuner sees realistic histograms.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from autoscaler.tuner import (
    KNATIVE_DEFAULT_TARGET,
    LATENCY_BUCKETS_MS,
    ModelScalerSpec,
    Recommendation,
    RevisionObservation,
    RevisionState,
    TunerConfig,
    new_state,
    recommend,
)

UTILIZATION = 0.7


def latency_samples(p95_ms: float, n: int, low: float = 0.6) -> np.ndarray:
    """``n`` latencies spread from ``low`` x p95 upward; their p95 is ``p95_ms``."""
    u = (np.arange(n) + 0.5) / n
    return p95_ms * (low + (1.0 - low) * u / 0.95)


def latency_counts(p95_ms: float, n: int, low: float = 0.6) -> tuple[float, ...]:
    """``latency_samples`` bucketed with Knative's bounds."""
    samples = latency_samples(p95_ms, n, low)
    idx = np.searchsorted(np.asarray(LATENCY_BUCKETS_MS), samples, side="left")
    counts = np.bincount(idx, minlength=len(LATENCY_BUCKETS_MS) + 1)
    return tuple(float(c) for c in counts)


def obs(
    t: float,
    c: float,
    replicas: int,
    p95: float,
    target: float | None,
    n: int = 400,
    cc: int = 0,
) -> RevisionObservation:
    """A 30 s interval: ``n`` requests at ``p95`` ms, ``c`` in flight per replica."""
    return RevisionObservation(
        t_s=t,
        interval_s=30.0,
        ready_replicas=replicas,
        avg_concurrency_per_replica=c,
        request_count=n,
        latency_counts=latency_counts(p95, n) if n else (0.0,) * 27,
        applied_target=target,
        container_concurrency=cc,
    )


@dataclass
class KneePlant:
    knee: float
    load: float
    base_ms: float = 50.0
    growth_exponent: float = 2.0
    requests_per_tick: int = 400
    with_sum: bool = True  # the histogram's _sum reaches the tuner
    spread_low: float = 0.6  # an interval's latencies run from this x its p95 upward

    def p95_ms(self, c: float) -> float:
        if c <= self.knee:
            return self.base_ms
        return self.base_ms * (c / self.knee) ** self.growth_exponent

    def max_concurrency(self, objective_ms: float) -> float:
        """The highest per-replica concurrency whose p95 meets ``objective_ms``."""
        return self.knee * (objective_ms / self.base_ms) ** (1 / self.growth_exponent)

    def least_replicas(self, objective_ms: float) -> int:
        return max(1, math.ceil(self.load / self.max_concurrency(objective_ms) - 1e-9))

    def replicas(self, target: float) -> int:
        return max(1, math.ceil(self.load / (target * UTILIZATION) - 1e-9))

    def observe(self, t_s: float, interval_s: float, target: float | None) -> RevisionObservation:
        r = self.replicas(target if target is not None else KNATIVE_DEFAULT_TARGET)
        c = self.load / r
        return RevisionObservation(
            t_s=t_s,
            interval_s=interval_s,
            ready_replicas=r,
            avg_concurrency_per_replica=c,
            request_count=self.requests_per_tick,
            latency_counts=latency_counts(self.p95_ms(c), self.requests_per_tick, self.spread_low),
            latency_sum_ms=(
                float(
                    latency_samples(self.p95_ms(c), self.requests_per_tick, self.spread_low).sum()
                )
                if self.with_sum
                else None
            ),
            applied_target=target,
            sum_matches_counts=self.with_sum,  # the counts bucket the very samples summed
        )


@dataclass
class Loop:
    """Runs the policy against the plant, applying what it asks for (mode Auto)."""

    plant: KneePlant
    spec: ModelScalerSpec
    config: TunerConfig = field(default_factory=TunerConfig)
    tick_s: float = 30.0
    target: float | None = None
    state: RevisionState = field(default_factory=lambda: new_state("rev-1"))
    now_s: float = 0.0
    history: list[tuple[float, float, int, float, Recommendation]] = field(default_factory=list)

    def tick(self) -> Recommendation:
        self.now_s += self.tick_s
        obs = self.plant.observe(self.now_s, self.tick_s, self.target)
        rec, self.state = recommend(obs, self.spec, self.config, self.state, self.now_s)
        self.history.append(
            (
                self.now_s,
                obs.avg_concurrency_per_replica,
                obs.ready_replicas,
                self.plant.p95_ms(obs.avg_concurrency_per_replica),
                rec,
            )
        )
        if rec.should_apply:
            self.target = rec.target
        return rec

    def run(self, ticks: int) -> None:
        for _ in range(ticks):
            self.tick()
