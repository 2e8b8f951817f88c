"""Interval figures from cumulative scrapes: the per-pod memory of the direct scrape, pure.

A queue-proxy's counters and histogram are cumulative since its process started. The tuner wants
what happened in one tick's interval, so the ledger keeps each pod's previous ``ReplicaSample``
and subtracts it:

- a pod's first scrape after the revision's first tick counts from zero (it started in the
  interval); the revision's very first tick only records the baseline and gives no observation,
  since counts from before it cannot be placed in time;
- a pod whose counters or ``process_uptime`` went down, or whose series' ``_created`` time
  moved forward, restarted: its scrape counts from zero;
- a pod no longer among the revision's replicas is dropped; a pod that did not answer keeps its
  previous sample, so its requests are counted (late, not lost) when it answers again.

Average concurrency per replica uses Little's law on the latency histogram: the time requests
spent in a pod during the interval is the growth of the histogram's ``_sum`` (each completed
request adds its duration), and that time divided by the interval is the pod's time-weighted
average concurrency. Two 500 ms requests in one second on one replica: 1.0 s / 1 s = 1.0. This
covers the whole interval, where the pre-1.6 gauge ``queue_average_concurrent_requests`` is
only the last report period (about one second) of it: at a 30 s tick one second in thirty. The
gauge is used for a pod that exports no histogram, and for an interval in which no request
finished. The price of ``_sum``: a request is counted when it completes, with all of its
duration, so a long request straddling two ticks lands in the second; over consecutive ticks
the totals agree. In an interval with none finished, ``_sum`` reads 0 however many requests are
in flight; but a request in flight at the previous scrape that has not finished is in flight
all through the interval, so the lower of a pod's gauges at the two scrapes is taken as its
concurrency then (the tuner's "in flight past the objective with none finished"). The
revision's figure is the mean over the pods that answered (for each, its request time over its own span since its previous
scrape), i.e. the sum of request time / interval / replicas when every pod answered every tick.

Between ticks the source may sample the revision's pods (``sample``, every
``concurrency_sample_period_s``, with the replicas listed at that moment), as Knative's autoscaler
scrapes them every second. With at least ``MIN_SAMPLE_ROUNDS`` rounds in the interval, no gap
between them (or the interval's ends) over half the interval, and the gauge on every pod
answering at the tick, the concurrency per replica is the sum of the gauges over the rounds and
the tick's own scrape, divided by the pods counted in them: request time over replica time,
time-weighted, as the Prometheus source's autoscaler gauge. A long request counts in each
interval it lived in, not all in the one it finished in; a pod started within the interval
counts from the first round that found it; and the observation is not flagged
``concurrency_from_completions``. Requests finished over gauges that all read zero (requests
shorter than the gaps between samples) fall back to ``_sum``, and so does an interval whose
rounds do not cover it (a controller that stopped leading and leads again).

Every call takes ``now_s``; the ledger does no I/O and reads no clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from itertools import pairwise

from autoscaler.metrics.buckets import cumulative_delta, native_buckets, rebucket_cumulative
from autoscaler.metrics.exposition import ReplicaSample
from autoscaler.metrics.names import (
    GAUGE_AVERAGE_CONCURRENCY,
    GAUGE_PROCESS_UPTIME,
    GAUGE_REQUESTS_PER_SECOND,
)
from autoscaler.metrics.source import RevisionKey, RevisionRef
from autoscaler.tuner.observation import N_LATENCY_COUNTS, RevisionObservation

__all__ = ["MIN_SAMPLE_ROUNDS", "IntervalResult", "ScrapeLedger"]

# Sampling rounds an interval needs before its gauges stand for its concurrency.
MIN_SAMPLE_ROUNDS = 3


@dataclass(frozen=True, slots=True)
class IntervalResult:
    """One revision's outcome for one tick: the observation, or None and why."""

    observation: RevisionObservation | None
    reason: str


@dataclass(slots=True)
class _PodMemory:
    sample: ReplicaSample
    t_s: float


@dataclass(slots=True)
class _RevisionMemory:
    last_t_s: float
    pods: dict[str, _PodMemory] = field(default_factory=dict)
    listed: set[str] = field(default_factory=set)  # the replicas at the previous tick
    # sampling rounds since the previous tick: (time, sum of the gauges, pods counted)
    rounds: list[tuple[float, float, int]] = field(default_factory=list)


def _restarted(previous: ReplicaSample, current: ReplicaSample) -> bool:
    """Did the pod's process restart between the two scrapes (its counters started over)?"""
    if (
        previous.created_s is not None
        and current.created_s is not None
        and current.created_s > previous.created_s
    ):
        return True
    uptime_before = previous.gauges.get(GAUGE_PROCESS_UPTIME)
    uptime_now = current.gauges.get(GAUGE_PROCESS_UPTIME)
    if uptime_before is not None and uptime_now is not None and uptime_now < uptime_before:
        return True
    if current.requests < previous.requests or current.latency_count < previous.latency_count:
        return True
    if current.latency_sum_ms < previous.latency_sum_ms:
        return True
    return any(current.latency_le_ms.get(le, 0.0) < v for le, v in previous.latency_le_ms.items())


@dataclass(frozen=True, slots=True)
class _PodInterval:
    busy_s: float  # time requests spent in the pod over its span
    span_s: float
    requests: float
    latency_counts: tuple[float, ...]
    latency_sum_ms: float | None  # None: the pod exports no histogram


def _pod_interval(
    previous: ReplicaSample | None, current: ReplicaSample, span_s: float
) -> _PodInterval:
    if current.has_histogram:
        base_sum = previous.latency_sum_ms if previous is not None else 0.0
        busy_s = max(0.0, current.latency_sum_ms - base_sum) / 1000.0
        delta = cumulative_delta(
            previous.latency_le_ms if previous is not None else None, current.latency_le_ms
        )
        counts = rebucket_cumulative(delta)
        sum_ms: float | None = busy_s * 1000.0
    else:  # no histogram: the last period's gauge stands for the whole span
        busy_s = current.gauges.get(GAUGE_AVERAGE_CONCURRENCY, 0.0) * span_s
        counts = (0.0,) * N_LATENCY_COUNTS
        sum_ms = None
    if current.request_count is not None or current.has_histogram:
        base = previous.requests if previous is not None else 0.0
        requests = max(0.0, current.requests - base)
    else:
        requests = current.gauges.get(GAUGE_REQUESTS_PER_SECOND, 0.0) * span_s
    return _PodInterval(
        busy_s=busy_s,
        span_s=span_s,
        requests=requests,
        latency_counts=counts,
        latency_sum_ms=sum_ms,
    )


class ScrapeLedger:
    """The previous scrape of every pod of every revision, and the interval arithmetic."""

    def __init__(self) -> None:
        self._revisions: dict[RevisionKey, _RevisionMemory] = {}

    def retain(self, keys: Iterable[RevisionKey]) -> None:
        """Forget revisions that are no longer observed."""
        keep = set(keys)
        for key in [k for k in self._revisions if k not in keep]:
            del self._revisions[key]

    def sample(
        self, key: RevisionKey, samples: Mapping[str, ReplicaSample | None], now_s: float
    ) -> None:
        """One sampling round between ticks (pod -> sample, None: no answer): the gauges of the
        pods that answered. Before the revision's first tick (no baseline) there is no interval
        to sample, and a round not after the last tick belongs to none."""
        memory = self._revisions.get(key)
        if memory is None or now_s <= memory.last_t_s:
            return
        gauges = [
            s.gauges[GAUGE_AVERAGE_CONCURRENCY]
            for s in samples.values()
            if s is not None and GAUGE_AVERAGE_CONCURRENCY in s.gauges
        ]
        memory.rounds.append((now_s, sum(gauges), len(gauges)))

    def record(
        self, ref: RevisionRef, samples: Mapping[str, ReplicaSample | None], now_s: float
    ) -> IntervalResult:
        """Fold one tick's scrapes of ``ref``'s replicas (pod -> sample, None: no answer)."""
        answered = {pod: s for pod, s in samples.items() if s is not None}
        memory = self._revisions.get(ref.key)
        if memory is None:
            self._revisions[ref.key] = _RevisionMemory(
                last_t_s=now_s,
                pods={pod: _PodMemory(s, now_s) for pod, s in answered.items()},
                listed={r.pod for r in ref.replicas},
            )
            return IntervalResult(None, "first scrape of the revision: baseline only")
        if now_s <= memory.last_t_s:
            # the same tick again (a revision read twice in one tick), or a clock set back
            back = memory.last_t_s - now_s
            return IntervalResult(
                None,
                "no time has passed since the previous read of this revision"
                + (f" (the clock went back {back:g} s)" if back > 0 else ""),
            )
        listed = {r.pod for r in ref.replicas}
        for pod in [p for p in memory.pods if p not in listed]:
            del memory.pods[pod]  # vanished: its last requests cannot be read any more
        if ref.replicas and not answered:
            # Keep the baseline: the next answer covers this interval too.
            return IntervalResult(None, f"none of the {len(ref.replicas)} replicas answered")

        # Nothing below changes the memory until the observation is made: a tick that raises
        # leaves the baselines and rounds as they were, and the next one counts its interval.
        interval_s = now_s - memory.last_t_s
        rounds = [r for r in memory.rounds if memory.last_t_s < r[0] < now_s]
        scraped: dict[str, _PodMemory] = {}
        times = [memory.last_t_s, *(r[0] for r in rounds), now_s]
        sampled = (
            len(rounds) >= MIN_SAMPLE_ROUNDS
            and max(b - a for a, b in pairwise(times)) <= interval_s / 2.0
        )
        gauge_sum = sum(r[1] for r in rounds)  # with the tick's own scrape below
        gauge_pods = sum(r[2] for r in rounds)
        held = 0.0  # requests in flight at both ends of the interval, on pods seen at both
        gauged = False  # some pod tells what was in flight all through (the gauge at both ends)
        concurrency_sum = 0.0
        requests = 0.0
        counts = [0.0] * N_LATENCY_COUNTS
        sum_ms: float | None = None
        native = True  # every histogram in Knative's own buckets: the sum matches the counts
        for pod, sample in answered.items():
            before = memory.pods.get(pod)
            previous: ReplicaSample | None = None
            since_s = memory.last_t_s  # a new pod started within the interval
            if before is not None:
                since_s = before.t_s
                if not _restarted(before.sample, sample):
                    previous = before.sample
            part = _pod_interval(previous, sample, now_s - since_s)
            if previous is None:
                if before is not None or pod not in memory.listed:
                    # restarted or started in the interval: nothing it holds was in flight
                    # throughout (a pod listed before that never answered tells nothing)
                    gauged = gauged or GAUGE_AVERAGE_CONCURRENCY in sample.gauges
            elif all(GAUGE_AVERAGE_CONCURRENCY in g for g in (previous.gauges, sample.gauges)):
                gauged = True
                held += min(
                    previous.gauges[GAUGE_AVERAGE_CONCURRENCY],
                    sample.gauges[GAUGE_AVERAGE_CONCURRENCY],
                )
            concurrency_sum += part.busy_s / part.span_s
            end_gauge = sample.gauges.get(GAUGE_AVERAGE_CONCURRENCY)
            if end_gauge is None:
                sampled = False  # a pod whose requests no gauge tells
            else:
                gauge_sum += end_gauge
                gauge_pods += 1
            requests += part.requests
            counts = [a + b for a, b in zip(counts, part.latency_counts, strict=True)]
            if part.latency_sum_ms is not None:
                sum_ms = (sum_ms or 0.0) + part.latency_sum_ms
                native = native and native_buckets(sample.latency_le_ms)
            scraped[pod] = _PodMemory(sample, now_s)

        replicas = len(answered)
        concurrency = concurrency_sum / replicas if replicas else 0.0
        note = ""
        none_finished = round(requests) == 0 and replicas > 0
        known = not (none_finished and not gauged)
        if not known:
            note = f", none finished and no {GAUGE_AVERAGE_CONCURRENCY} to tell what is in flight"
        from_completions = sum_ms is not None
        if sampled and replicas and (gauge_sum > 0 or round(requests) == 0):
            # the gauges sampled through the interval: time-weighted (requests that finished
            # over gauges all at zero were shorter than the gaps: _sum tells them better)
            concurrency = gauge_sum / gauge_pods
            from_completions = False
            known = True
            note = f", concurrency from {len(rounds) + 1} samples of {GAUGE_AVERAGE_CONCURRENCY}"
        elif none_finished and held > 0:
            # none finished: whatever was in flight at the previous scrape still is, so it was
            # in flight all through the interval (the gauge is the last second's average; the
            # lower of the two ends is taken)
            concurrency = max(concurrency, held / replicas)
            from_completions = False  # the gauge's figure
            note = f", {held:.3g} in flight at both ends with none finished"
        observation = RevisionObservation(
            t_s=now_s,
            interval_s=interval_s,
            ready_replicas=replicas,
            avg_concurrency_per_replica=concurrency,
            request_count=round(requests),
            latency_counts=tuple(counts),
            latency_sum_ms=sum_ms,
            applied_target=ref.applied_target,
            target_utilization_percentage=ref.target_utilization_percentage,
            container_concurrency=ref.container_concurrency,
            concurrency_from_completions=from_completions,
            sum_matches_counts=sum_ms is not None and native,
            in_flight_known=known,
        )
        memory.pods.update(scraped)
        memory.rounds = []
        memory.last_t_s = now_s
        memory.listed = listed
        missing = len(ref.replicas) - replicas
        reason = f"{replicas} replicas scraped" + (f", {missing} did not answer" if missing else "")
        reason += note
        return IntervalResult(observation, reason)
