"""Metric collection, pure part: per-pod reports in, revision-wide windows of totals out.

Mirrors knative/serving ``pkg/autoscaler/metrics/collector.go`` (``collection.record`` and
``StableAndPanicConcurrency``/``StableAndPanicRPS``) and the ``Stat`` message of ``stat.proto``.

Each report counts ``average_concurrent_requests - average_proxied_concurrent_requests`` (and
``request_count - proxied_request_count`` for rps): requests that came through the activator are
left out of the pod's report because the activator reports them itself (its own ``Stat`` has no
proxied part), so nothing is counted twice. Example: a pod at concurrency 3 of which 2 came via the
activator, and the activator reporting 2, make a revision total of ``(3 - 2) + 2 = 3``.

Departure from Knative, for push reporting: Knative's scraper reads every pod at one instant and
records one summed value per second, while here each queue-proxy pushes its own report. Reports
are summed over pods within a 1 s bucket, and two reports from the same pod in one bucket are
averaged (the rule of Knative's older per-pod buckets), so a jittery reporter is not counted twice.
All pods are counted; Knative's sampling of large revisions (and its use of ``process_uptime``
to prefer older pods when sampling) is not needed and not done.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from autoscaler.kpa.windows import TimedBuckets, WeightedBuckets


@dataclass(frozen=True, slots=True)
class Stat:
    """One report from a queue-proxy or the activator, per revision, about the last second."""

    pod_name: str
    average_concurrent_requests: float = 0.0
    average_proxied_concurrent_requests: float = 0.0
    request_count: float = 0.0
    proxied_request_count: float = 0.0
    process_uptime_s: float = 0.0
    timestamp: float = 0.0

    @property
    def concurrency(self) -> float:
        """The concurrency this report adds to the revision total (proxied part left out)."""
        return self.average_concurrent_requests - self.average_proxied_concurrent_requests

    @property
    def rps(self) -> float:
        """The requests per second this report adds to the revision total."""
        return self.request_count - self.proxied_request_count


def _make_window(window_s: float, weighted: bool) -> TimedBuckets:
    return WeightedBuckets(window_s) if weighted else TimedBuckets(window_s)


def _zero_like(window: TimedBuckets, weighted: bool) -> TimedBuckets:
    """A window of ``window``'s length and bucket indices, every bucket +0.0: what the same
    writes, all of them zeros, would have left."""
    zero = _make_window(window.window_s, weighted)
    zero.copy_indices_from(window)
    return zero


class MetricCollector:
    """One revision's stable and panic windows of concurrency and rps totals."""

    __slots__ = (
        "_concurrency",
        "_concurrency_panic",
        "_open_bucket",
        "_open_pods",
        "_rps",
        "_rps_idle",
        "_rps_panic",
        "weighted",
    )

    def __init__(
        self, stable_window_s: float, panic_window_s: float, weighted: bool = False
    ) -> None:
        self.weighted = weighted
        self._concurrency = _make_window(stable_window_s, weighted)
        self._concurrency_panic = _make_window(panic_window_s, weighted)
        self._rps = _make_window(stable_window_s, weighted)
        self._rps_panic = _make_window(panic_window_s, weighted)
        # The 1 s bucket being filled and, per pod, (reports, concurrency sum, rps sum) in it.
        self._open_bucket: int | None = None
        self._open_pods: dict[str, tuple[int, float, float]] = {}
        # While every rps report so far was zero (reporters of concurrency alone), the rps
        # windows are not written: a window's bucket indices move alike whatever the values, so
        # they equal the concurrency windows' and every bucket is +0.0. ``_rps_windows`` builds
        # them from that when first read or fed a non-zero value.
        self._rps_idle = True

    def record(self, now: float, stat: Stat) -> None:
        """Add one report received at ``now`` to the revision totals."""
        bucket = math.floor(now)
        concurrency, rps = stat.concurrency, stat.rps
        if self._open_bucket is None or bucket > self._open_bucket:
            self._open_bucket = bucket
            self._open_pods = {}
        if bucket == self._open_bucket:
            seen = self._open_pods.get(stat.pod_name)
            if seen is None:
                self._open_pods[stat.pod_name] = (1, concurrency, rps)
            else:
                # Replace this pod's contribution by the average of its reports in this bucket.
                count, c_sum, r_sum = seen
                self._open_pods[stat.pod_name] = (count + 1, c_sum + concurrency, r_sum + rps)
                concurrency = (c_sum + concurrency) / (count + 1) - c_sum / count
                rps = (r_sum + rps) / (count + 1) - r_sum / count
        # A late report for an already closed bucket is added as it is, as Knative adds.
        if self._rps_idle and rps != 0.0:
            self._rps_windows()
        self._concurrency.record(now, concurrency)
        self._concurrency_panic.record(now, concurrency)
        if not self._rps_idle:
            self._rps.record(now, rps)
            self._rps_panic.record(now, rps)

    def _rps_windows(self) -> None:
        """Write the rps windows a reporter of concurrency alone left unwritten (see __init__)."""
        if self._rps_idle:
            self._rps = _zero_like(self._concurrency, self.weighted)
            self._rps_panic = _zero_like(self._concurrency_panic, self.weighted)
            self._rps_idle = False

    def record_many(
        self,
        times: Sequence[float],
        pod_name: str,
        concurrency: Sequence[float],
        rps: Sequence[float] | None = None,
    ) -> None:
        """``record(t, Stat(pod_name, average_concurrent_requests=c, request_count=r))`` for
        each ``(t, c, r)`` in order, in one call: the same windows, bit for bit. ``rps`` None
        is a request count of 0 in every report (a reporter of concurrency alone).

        For a caller that reports one pod's (or a whole revision's) seconds in batches, as the
        trace simulator does between two decisions.
        """
        count = len(times)
        if count != len(concurrency) or (rps is not None and len(rps) != count):
            raise ValueError(
                f"record_many: {count} times, {len(concurrency)} concurrencies, "
                f"{count if rps is None else len(rps)} rps values: need one of each per "
                "report"
            )
        if not count:
            return
        if self._rps_idle and rps is not None and any(rps):
            self._rps_windows()
        open_bucket = self._open_bucket
        # One report per second, each in a later second than the one before (and than the
        # bucket still open)?
        later = True
        second = open_bucket
        floor = math.floor
        for now in times:
            bucket = floor(now)
            if second is not None and bucket <= second:
                later = False
                break
            second = bucket
        if later:
            # Nothing to average. Stat's ``x - 0.0`` is ``x`` bit for bit, so the values go to
            # the windows as they are.
            self._open_bucket = second
            last_rps = 0.0 if rps is None else rps[-1] - 0.0
            self._open_pods = {pod_name: (1, concurrency[-1] - 0.0, last_rps)}
            self._concurrency.record_many(times, concurrency)
            self._concurrency_panic.record_many(times, concurrency)
            if not self._rps_idle:
                zeros = [0.0] * len(times) if rps is None else rps
                self._rps.record_many(times, zeros)
                self._rps_panic.record_many(times, zeros)
            return
        if rps is None:
            rps = [0.0] * len(times)
        c_out: list[float] = []
        r_out: list[float] = []
        open_pods = self._open_pods
        for now, c_in, r_in in zip(times, concurrency, rps, strict=True):
            bucket = math.floor(now)
            c, r = c_in - 0.0, r_in - 0.0  # as Stat.concurrency and Stat.rps (nothing proxied)
            if open_bucket is None or bucket > open_bucket:
                open_bucket = bucket
                open_pods = {}
            if bucket == open_bucket:
                seen = open_pods.get(pod_name)
                if seen is None:
                    open_pods[pod_name] = (1, c, r)
                else:
                    count, c_sum, r_sum = seen
                    open_pods[pod_name] = (count + 1, c_sum + c, r_sum + r)
                    c = (c_sum + c) / (count + 1) - c_sum / count
                    r = (r_sum + r) / (count + 1) - r_sum / count
            c_out.append(c)
            r_out.append(r)
        self._open_bucket, self._open_pods = open_bucket, open_pods
        self._concurrency.record_many(times, c_out)
        self._concurrency_panic.record_many(times, c_out)
        if not self._rps_idle:
            self._rps.record_many(times, r_out)
            self._rps_panic.record_many(times, r_out)

    def stable_and_panic_concurrency(self, now: float) -> tuple[float, float] | None:
        """``(stable, panic)`` average concurrency, or None with no data for a whole window."""
        stable = self._concurrency.average_unless_empty(now)
        if stable is None:
            return None
        return stable, self._concurrency_panic.window_average(now)

    def value_ranges(
        self, now: float, metric: str
    ) -> tuple[tuple[float, float], tuple[float, float]] | None:
        """``(min, max)`` over the buckets the stable and the panic window of ``metric``
        average at ``now`` (``TimedBuckets.value_range``); None when either has no data."""
        if metric == "rps":
            self._rps_windows()
            windows = (self._rps, self._rps_panic)
        else:
            windows = (self._concurrency, self._concurrency_panic)
        stable = windows[0].value_range(now)
        panic = windows[1].value_range(now)
        if stable is None or panic is None:
            return None
        return stable, panic

    def stable_and_panic_rps(self, now: float) -> tuple[float, float] | None:
        """``(stable, panic)`` average requests per second, or None with no data."""
        self._rps_windows()
        if self._rps.is_empty(now):
            return None
        return self._rps.window_average(now), self._rps_panic.window_average(now)

    def stable_and_panic(self, now: float, metric: str) -> tuple[float, float] | None:
        """The pair for the revision's scaling metric (``rps`` or ``concurrency``)."""
        if metric == "rps":
            return self.stable_and_panic_rps(now)
        return self.stable_and_panic_concurrency(now)

    def reconfigure(self, stable_window_s: float, panic_window_s: float, now: float) -> None:
        """Follow changed windows without losing the recorded data (Knative's ResizeWindow).
        The aggregation algorithm stays the one at creation: Knative picks the buckets' kind
        once per collection, the annotation being immutable on a revision."""
        # Unwritten rps windows stay so: a resize moves a window's indices alike whatever its
        # values, so they still equal the concurrency windows' (see __init__).
        self._concurrency.resize(stable_window_s, now)
        self._concurrency_panic.resize(panic_window_s, now)
        if not self._rps_idle:
            self._rps.resize(stable_window_s, now)
            self._rps_panic.resize(panic_window_s, now)
