"""Idle periods: finding them in observations and keeping their decaying histogram.

An idle period is the time from a revision's last request to its next one. From per-tick
observations it is estimated from the gap between two intervals with requests, with at least
one empty interval between them: with ``n`` requests spread over an interval, the last one is
expected ``interval / (n + 1)`` before its end and the first one as long after its start.
Exact arrival times (``RevisionObservation.arrivals_s``) replace the estimate. Gaps shorter
than ``min_idle_s`` are not idle periods: they never let a revision scale to zero.

The histogram's bins are fine for short idle times (10 s to 1 min, then 30 s up to 10 min),
where models called every few minutes live, and coarser up to 4 h; beyond is one overflow bin.
Weights decay (``decay``) so recent idle periods count more.
"""

from __future__ import annotations

import itertools
from bisect import bisect_left
from dataclasses import dataclass, field, replace
from functools import cache

from autoscaler.tuner import decay
from autoscaler.tuner.observation import RevisionObservation

RECENT_IDLE_KEPT = 8
# A burst seen only in part (its window runs past the interval) is scaled up at most this much.
WOKEN_SCALE_MAX = 4.0


@cache
def idle_edges_s() -> tuple[float, ...]:
    """Lower edges of the idle-time bins (s); the last bin is [14400, inf)."""
    edges: list[float] = [float(s) for s in range(0, 60, 10)]
    edges += [float(s) for s in range(60, 600, 30)]
    edges += [float(s) for s in range(600, 1800, 120)]
    edges += [float(s) for s in range(1800, 7200, 300)]
    edges += [float(s) for s in range(7200, 14401, 900)]
    return tuple(edges)


@dataclass(frozen=True, slots=True)
class IdleHistogram:
    """Decaying histogram of idle periods over ``idle_edges_s()``."""

    weights: tuple[float, ...] = ()  # empty until the first sample
    count: int = 0  # samples recorded, undecayed
    ref_s: float = 0.0
    recent_s: tuple[float, ...] = ()  # the last few idle periods, newest last
    # requests seen since the first idle period, decayed like the weights: with them, how many
    # requests an idle period stands for (``requests_per_idle``)
    requests: float = 0.0
    # requests that arrived within a cold start of an idle period's end, decayed like the
    # weights: how many requests a cold start there would delay (``woken_per_idle``)
    woken: float = 0.0
    # its text in the checkpoint, once written (``checkpoint.encode_checkpoint``): most ticks
    # end no idle period, and the histogram is the same object from one tick to the next
    encoded: str | None = field(default=None, init=False, compare=False, repr=False)

    def add(
        self, t_s: float, idle_s: float, half_life_s: float, woken: float = 1.0
    ) -> IdleHistogram:
        """One idle period of ``idle_s`` ended by ``t_s``; ``woken`` requests came within a
        cold start of its end."""
        hist = self if self.count else replace(self, ref_s=t_s)
        hist = hist._rebased(t_s, half_life_s)
        weights = list(hist.weights) or [0.0] * len(idle_edges_s())
        w = decay.sample_weight(t_s, hist.ref_s, half_life_s)
        weights[bin_of(idle_s)] += w
        return replace(
            hist,
            weights=tuple(weights),
            count=self.count + 1,
            recent_s=(*self.recent_s, idle_s)[-RECENT_IDLE_KEPT:],
            woken=hist.woken + max(1.0, woken) * w,
        )

    def count_requests(self, t_s: float, n: float, half_life_s: float) -> IdleHistogram:
        """``n`` requests served at ``t_s`` (counted once the first idle period is in)."""
        if not self.count or n <= 0:
            return self
        hist = self._rebased(t_s, half_life_s)
        requests = hist.requests + n * decay.sample_weight(t_s, hist.ref_s, half_life_s)
        return IdleHistogram(
            hist.weights, hist.count, hist.ref_s, hist.recent_s, requests, hist.woken
        )

    def _rebased(self, t_s: float, half_life_s: float) -> IdleHistogram:
        """The reference moved to ``t_s`` (weights and requests alike) when it must be."""
        if not decay.needs_rebase(t_s, self.ref_s, half_life_s):
            return self
        f = decay.rebase_factor(t_s, self.ref_s, half_life_s)
        return replace(
            self,
            weights=tuple(w * f for w in self.weights),
            requests=self.requests * f,
            woken=self.woken * f,
            ref_s=t_s,
        )

    def requests_per_idle(self) -> float:
        """Requests served per idle period (each ends with one, so at least 1)."""
        total = sum(self.weights)
        return max(1.0, self.requests / total) if total > 0 else 1.0

    def woken_per_idle(self) -> float:
        """Requests a cold start at an idle period's end delays: at least the one that ends
        it, at most the requests an idle period stands for."""
        total = sum(self.weights)
        per = self.woken / total if total > 0 else 1.0
        return min(max(1.0, per), self.requests_per_idle())

    def effective_count(self, now_s: float, half_life_s: float) -> float:
        """How many idle periods the decayed weights stand for as of ``now_s`` (each weighs 1
        when recorded); never more than were recorded (a changed half-life or a clock behind
        the reference would read more)."""
        return min(
            float(self.count), decay.weight_now(sum(self.weights), now_s, self.ref_s, half_life_s)
        )

    def probabilities(self) -> tuple[float, ...]:
        """Share of each bin. Uniform decay leaves the shares unchanged between samples."""
        total = sum(self.weights)
        if total <= 0:
            return ()
        return tuple(w / total for w in self.weights)


def bin_of(idle_s: float) -> int:
    edges = idle_edges_s()
    lo, hi = 0, len(edges) - 1
    while lo < hi:  # the last edge <= idle_s
        mid = (lo + hi + 1) // 2
        if edges[mid] <= idle_s:
            lo = mid
        else:
            hi = mid - 1
    return lo


@dataclass(frozen=True, slots=True)
class Activity:
    """When the revision last had requests."""

    last_request_s: float | None = None  # estimated (or exact) time of the last request
    last_active_end_s: float | None = None  # end of the last interval with requests


def observe_activity(
    obs: RevisionObservation, activity: Activity, min_idle_s: float
) -> tuple[list[float], Activity]:
    """Idle periods that ``obs`` closes, and the activity after it."""
    periods, activity = observe_idle_periods(obs, activity, min_idle_s, 0.0)
    return [idle for idle, _ in periods], activity


def observe_idle_periods(
    obs: RevisionObservation, activity: Activity, min_idle_s: float, window_s: float
) -> tuple[list[tuple[float, float]], Activity]:
    """Idle periods that ``obs`` closes, each with the requests of ``obs`` that arrived within
    ``window_s`` of its end (the ones a cold start there would delay; without exact arrivals
    the interval's requests are taken as evenly spread), and the activity after it."""
    if obs.request_count == 0 and not obs.arrivals_s:
        return [], activity
    if obs.arrivals_s:
        arrivals = sorted(obs.arrivals_s)
        prev = activity.last_request_s
        gaps = list(itertools.pairwise(arrivals))
        if prev is not None and arrivals[0] > prev:
            gaps.insert(0, (prev, arrivals[0]))
        idle = [
            (end - start, _woken(arrivals, end, window_s, obs.t_s))
            for start, end in gaps
            if end - start >= min_idle_s
        ]
        return idle, Activity(arrivals[-1], obs.t_s)
    n = obs.request_count
    spacing = obs.interval_s / (n + 1)
    idle = []
    if (
        activity.last_request_s is not None
        and activity.last_active_end_s is not None
        and obs.start_s > activity.last_active_end_s + 1e-6
    ):
        gap = obs.start_s + spacing - activity.last_request_s
        if gap >= min_idle_s:
            # spread evenly, scaled as a burst seen in part is (at most four times)
            idle.append((gap, max(1.0, n * min(WOKEN_SCALE_MAX, window_s / obs.interval_s))))
    return idle, Activity(last_request_s=obs.t_s - spacing, last_active_end_s=obs.t_s)


def _woken(arrivals: list[float], end_s: float, window_s: float, t_s: float) -> float:
    """Requests among ``arrivals`` (sorted, up to ``t_s``) within ``window_s`` of ``end_s``, the
    one at ``end_s`` included. When the window runs past ``t_s`` the requests after the first
    are scaled up to the whole window by the part seen, at most four times (a burst that goes
    on into the next interval is not seen whole)."""
    if window_s <= 0:
        return 1.0
    first = bisect_left(arrivals, end_s)
    if end_s + window_s <= t_s:
        return float(bisect_left(arrivals, end_s + window_s) - first)
    later = len(arrivals) - first - 1
    return 1.0 + later * window_s / max(t_s - end_s, window_s / WOKEN_SCALE_MAX)
