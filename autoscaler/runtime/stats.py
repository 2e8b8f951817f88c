"""Per-second request statistics: the ``Stat`` a queue-proxy (or the activator) reports.

Mirrors Knative's pkg/queue/stats.go and the ``Stat`` message of pkg/autoscaler/metrics: the
average concurrency over a report period is *time-weighted* (the integral of the number of
requests in flight over the period, divided by its length), so two 500 ms requests in one second
average 1.0. Requests marked as coming through the activator are also tracked apart ("proxied"),
so the autoscaler can subtract them from pod reports and count the activator's own report instead.

``RequestStats`` is pure: every call takes ``now`` (seconds, monotonic). The ``Stat`` it reports is
the KPA's own (``autoscaler.kpa.Stat``), so the scaling loop records it as it is.
"""

from __future__ import annotations

from autoscaler.kpa import Stat

__all__ = ["ACTIVATOR_FIRST_POD_NAME", "ACTIVATOR_POD_NAME", "RequestStats", "Stat"]

ACTIVATOR_POD_NAME = "activator"
# The name the activator's report of a revision's first request goes under. Knative's collector
# adds every report in a 1 s bucket, so the first request (reported at once) and the period's
# report less that request sum to the period's concurrency. Ours averages one pod's reports
# within a bucket (a pod scraped twice in a second counts once), so the first request's report
# goes under a name of its own, and the two are added as Knative adds them.
ACTIVATOR_FIRST_POD_NAME = "activator-first-request"


class RequestStats:
    """Time-weighted concurrency and request counts since the last report."""

    def __init__(self, now: float) -> None:
        self._last = now
        self._period_start = now
        self.in_flight = 0
        self.proxied_in_flight = 0
        self._area = 0.0
        self._proxied_area = 0.0
        self._count = 0
        self._proxied_count = 0

    def _advance(self, now: float) -> None:
        dt = now - self._last
        if dt > 0:
            self._area += self.in_flight * dt
            self._proxied_area += self.proxied_in_flight * dt
            self._last = now

    def begin(self, now: float) -> None:
        """Start a new period at ``now`` with nothing counted in it (requests in flight stay):
        a revision's first request after a quiet spell, whose period covers the time since it,
        as Knative's activator makes a revision's stats at its first request."""
        self._advance(now)
        self._period_start = now
        self._area = self._proxied_area = 0.0
        self._count = self._proxied_count = 0

    def request_in(self, now: float, proxied: bool = False) -> None:
        self._advance(now)
        self.in_flight += 1
        self._count += 1
        if proxied:
            self.proxied_in_flight += 1
            self._proxied_count += 1

    def request_out(self, now: float, proxied: bool = False) -> None:
        self._advance(now)
        self.in_flight -= 1
        if proxied:
            self.proxied_in_flight -= 1

    def report(self, now: float, pod_name: str, process_uptime_s: float, wall: float) -> Stat:
        """The Stat for the period since the last report; starts a new period."""
        self._advance(now)
        period = now - self._period_start
        if period > 0:
            avg = self._area / period
            proxied_avg = self._proxied_area / period
        else:  # no time has passed: the instantaneous value is the best estimate
            avg = float(self.in_flight)
            proxied_avg = float(self.proxied_in_flight)
        stat = Stat(
            pod_name=pod_name,
            average_concurrent_requests=avg,
            average_proxied_concurrent_requests=proxied_avg,
            request_count=float(self._count),
            proxied_request_count=float(self._proxied_count),
            process_uptime_s=process_uptime_s,
            timestamp=wall,
        )
        self._period_start = now
        self._area = self._proxied_area = 0.0
        self._count = self._proxied_count = 0
        return stat
