"""One revision replayed for parity with one-machine mode: KPA timeline and request latencies.

``replay`` takes a list of arrival times and the model's parameters and returns the replica
count the KPA asked for at each of its ticks and each request's latency, from the exact
engine. A parity test can feed the same arrivals to one-machine mode and compare; and
``tick_agreement`` scores two replica-count timelines tick by tick.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from autoscaler.sim.fleet import SimSettings, run_revision
from autoscaler.sim.model import ColdStart, ModelSpec
from autoscaler.sim.policies import StaticPolicy
from autoscaler.sim.traces.workload import ModelTrace


@dataclass(frozen=True)
class ParityResult:
    """``ticks``: (t_s, desired replicas, ready replicas) per KPA tick; latencies per request."""

    ticks: tuple[tuple[float, int, int], ...]
    latency_s: np.ndarray
    cold: np.ndarray
    replica_timeline: tuple[tuple[float, int], ...]
    seed: int


def replay(
    arrivals_s: Sequence[float] | np.ndarray,
    model: ModelSpec,
    *,
    annotations: Mapping[str, str] | None = None,
    service_s: Sequence[float] | None = None,
    cold_start: ColdStart | None = None,
    end_s: float | None = None,
    seed: int = 0,
) -> ParityResult:
    """Replay ``arrivals_s`` on one revision of ``model`` with fixed annotations."""
    arr = np.sort(np.asarray(arrivals_s, dtype=np.float64))
    if service_s is None:
        svc = model.service.sample(np.random.default_rng([seed, 2, 0]), arr.size)
    else:
        svc = np.asarray(service_s, dtype=np.float64)
        if svc.shape != arr.shape:
            raise ValueError("service_s must have one entry per arrival")
    settings = SimSettings(cold_start=cold_start or ColdStart(), engine="exact")
    policy = StaticPolicy("parity", dict(annotations or {}))
    end = end_s if end_s is not None else (float(arr[-1]) + 1.0 if arr.size else 0.0)
    run = run_revision(
        ModelTrace(model, arr, svc), 0, policy, settings, seed, end, record_kpa_ticks=True
    )
    return ParityResult(
        ticks=tuple(run.stats.kpa_ticks or ()),
        latency_s=run.requests.latency_s,
        cold=run.requests.cold,
        replica_timeline=tuple(run.stats.timeline),
        seed=seed,
    )


def tick_agreement(
    reference: Sequence[tuple[float, int]],
    other: Sequence[tuple[float, int]],
    *,
    tolerance: int = 1,
    start_s: float = float("-inf"),
    end_s: float = float("inf"),
) -> float:
    """Share of ``reference`` ticks in ``[start_s, end_s]`` where ``other`` agrees within
    ``tolerance`` replicas. Both are ``(t_s, replicas)`` in time order. The two tickers run at
    their own phases (one-machine mode's starts when its revision does), so a reference tick
    falls between two of the other's: it agrees when it is within ``tolerance`` of either (the
    one at or before it saw less of the traffic, the one after it more; comparing with the
    earlier alone lags by up to a whole period at every change). Before the other's first
    tick, its first; after its last, its last. 1.0 when no reference tick falls in the range.
    """
    if not other:
        raise ValueError("the other timeline is empty")
    times = [t for t, _ in other]
    counts = [n for _, n in other]
    judged = agreed = 0
    for t, n in reference:
        if not start_s <= t <= end_s:
            continue
        before = max(0, bisect.bisect_right(times, t) - 1)
        after = min(len(times) - 1, bisect.bisect_left(times, t))
        judged += 1
        agreed += min(abs(counts[before] - n), abs(counts[after] - n)) <= tolerance
    return agreed / judged if judged else 1.0
