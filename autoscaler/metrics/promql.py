"""PromQL for the Prometheus source, and its answers turned into observations; pure.

One query per figure and tick, each covering every revision at once, grouped by the namespace
and revision labels (and ``le`` for the histogram), never one query per revision:

- requests: ``increase`` of the request counter (``_total`` or not: OpenCensus' exporter and
  prometheus_client spell counters differently) or, without a counter, of the histogram's
  ``_count``;
- latency buckets: ``increase`` of ``_bucket`` by ``le``, re-bucketed onto Knative's (see
  ``buckets``);
- request time: ``increase`` of ``_sum`` (Little's law, as in ``ledger``: request time over the
  window / window / replicas is the average concurrency per replica);
- replicas: the pods with request-metric series in the window, used when the controller does not
  pass the ready count it read from the API;
- concurrency: the average over the window of the autoscaler's panic-window concurrency
  gauge: the revision's time-weighted concurrency in the KPA's own units, so a request longer
  than the window counts as one request for each second it is in flight, not all at once when
  it finishes (as the request time does, which stands in for it where the gauge cannot be
  used: see ``assemble_observations``). It is a mean of samples of a 6 s average: with the
  autoscaler scraped every 6 s or more often they cover the whole window;
- in flight: the lowest value over the window of the same gauge. The request time above
  comes from completions, so an interval in which none finished reads no concurrency; when
  every sample of this gauge in such an interval was above zero, requests were in flight
  throughout, and the gauge's average (at least its lowest) is their concurrency (so the tuner
  can tell requests held past the objective).

Both read the lowest of the gauge's series per revision among those that moved in the window
(all of them where none moved): an autoscaler replica that no longer decides for a revision
may keep exporting its last value. The gauge is the revision's total, as the KPA reads it,
requests waiting at the activator included: divided by the ready replicas, as the other
figures.

``increase()`` extrapolates to the window's edges, so counts are estimates and need not be whole
numbers; the window is the time since the previous tick, so consecutive ticks do not overlap.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from autoscaler.metrics.buckets import rebucket_cumulative
from autoscaler.metrics.names import MetricNames
from autoscaler.metrics.source import RevisionKey, RevisionRef
from autoscaler.tuner.observation import N_LATENCY_COUNTS, RevisionObservation

__all__ = [
    "QueryAnswers",
    "QuerySet",
    "assemble_observations",
    "build_queries",
    "format_window",
    "parse_vector",
]

Vector = list[tuple[dict[str, str], float]]


@dataclass(frozen=True, slots=True)
class QuerySet:
    """The PromQL of one tick, one query per figure."""

    requests: str
    latency_buckets: str
    latency_sum: str
    replicas: str
    in_flight: str = ""  # empty (both): the names have no panic-concurrency gauge
    concurrency: str = ""

    def items(self) -> tuple[tuple[str, str], ...]:
        gauge = (("in_flight", self.in_flight), ("concurrency", self.concurrency))
        return (
            ("requests", self.requests),
            ("latency_buckets", self.latency_buckets),
            ("latency_sum", self.latency_sum),
            ("replicas", self.replicas),
            *((name, q) for name, q in gauge if q),
        )


@dataclass(frozen=True, slots=True)
class QueryAnswers:
    """The instant vectors Prometheus returned for a ``QuerySet``."""

    requests: Vector
    latency_buckets: Vector
    latency_sum: Vector
    replicas: Vector
    in_flight: Vector = field(default_factory=list)
    concurrency: Vector = field(default_factory=list)


def format_window(window_s: float) -> str:
    """A PromQL range: whole seconds as ``30s``, anything finer in milliseconds (``1500ms``)."""
    ms = max(1, round(window_s * 1000))
    return f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms}ms"


def _string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _alternatives(values: Sequence[str]) -> str:
    return _string("|".join(re.escape(v) for v in sorted(set(values))))


def build_queries(
    names: MetricNames, revisions: Sequence[RevisionRef], window_s: float
) -> QuerySet:
    """The queries of one tick for ``revisions`` over the last ``window_s`` seconds."""
    ns, rev = names.namespace_label, names.revision_label
    sel = (
        f"{ns}=~{_alternatives([r.namespace for r in revisions])}, "
        f"{rev}=~{_alternatives([r.revision for r in revisions])}"
    )
    w = format_window(window_s)
    by = f"{ns}, {rev}"
    hist = names.latency_histogram
    if names.request_counter:
        counter_re = _string(re.escape(names.request_counter) + "(_total)?")
        requests_sel = f"{{__name__=~{counter_re}, {sel}}}"
    else:
        requests_sel = f"{hist}_count{{{sel}}}"
    return QuerySet(
        requests=f"sum by ({by}) (increase({requests_sel}[{w}]))",
        latency_buckets=f"sum by ({by}, le) (increase({hist}_bucket{{{sel}}}[{w}]))",
        latency_sum=f"sum by ({by}) (increase({hist}_sum{{{sel}}}[{w}]))",
        replicas=(
            f"count by ({by}) (group by ({by}, {names.pod_label}) "
            f"(last_over_time({hist}_count{{{sel}}}[{w}])))"
        ),
        in_flight=_live_lowest(by, "min_over_time", names.panic_concurrency, sel, w),
        concurrency=_live_lowest(by, "avg_over_time", names.panic_concurrency, sel, w),
    )


def _live_lowest(by: str, over_time: str, gauge: str, sel: str, w: str) -> str:
    """The lowest per revision of ``over_time`` of the gauge's series that moved in the window
    (a series an autoscaler replica no longer updates keeps its value), or of all of them
    where none moved; empty without a gauge."""
    if not gauge:
        return ""
    series = f"{gauge}{{{sel}}}[{w}]"
    return (
        f"min by ({by}) ({over_time}({series}) unless changes({series}) == 0) "
        f"or min by ({by}) ({over_time}({series}))"
    )


def parse_vector(payload: Any) -> Vector:
    """The samples of a successful ``/api/v1/query`` answer of result type vector.

    Raises ``ValueError`` naming what is wrong with the payload.
    """
    if not isinstance(payload, dict) or payload.get("status") != "success":
        raise ValueError(f"not a successful query answer: {str(payload)[:200]}")
    data = payload.get("data")
    if not isinstance(data, dict) or data.get("resultType") != "vector":
        raise ValueError(f"expected a vector result, got {str(data)[:200]}")
    out: Vector = []
    for item in data.get("result", []):
        try:
            labels = {str(k): str(v) for k, v in item["metric"].items()}
            value = float(item["value"][1])
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"malformed vector sample {str(item)[:200]}: {exc!r}") from None
        out.append((labels, value if math.isfinite(value) else 0.0))
    return out


def _by_revision(names: MetricNames, vector: Vector) -> dict[RevisionKey, float]:
    out: dict[RevisionKey, float] = {}
    for labels, value in vector:
        key = RevisionKey(
            labels.get(names.namespace_label, ""), labels.get(names.revision_label, "")
        )
        out[key] = out.get(key, 0.0) + value
    return out


def _buckets_by_revision(
    names: MetricNames, vector: Vector
) -> dict[RevisionKey, dict[float, float]]:
    out: dict[RevisionKey, dict[float, float]] = {}
    for labels, value in vector:
        key = RevisionKey(
            labels.get(names.namespace_label, ""), labels.get(names.revision_label, "")
        )
        try:
            le = float(labels["le"]) * names.ms_per_unit
        except (KeyError, ValueError):
            continue  # not a bucket series
        per = out.setdefault(key, {})
        per[le] = per.get(le, 0.0) + value
    return out


def _no_series(names: MetricNames, key: RevisionKey, ready: int | None, window_s: float) -> str:
    counter = f" nor {names.request_counter}" if names.request_counter else ""
    where = (
        f"no {names.latency_histogram} series{counter} for {key} in Prometheus "
        f"({names.namespace_label}, {names.revision_label}) over the last "
        f"{format_window(window_s)}"
    )
    if ready is None:
        return where
    return (
        f"{where}, with {ready} ready replicas from the API: either no request has reached "
        "them yet (a queue-proxy exports its series from its first request), or Prometheus is "
        "not scraping the queue-proxies' request metrics (are those on, do the names match?)"
    )


def assemble_observations(
    names: MetricNames,
    revisions: Sequence[RevisionRef],
    answers: QueryAnswers,
    window_s: float,
    now_s: float,
    ready_before: dict[RevisionKey, int] | None = None,
) -> dict[RevisionKey, tuple[RevisionObservation | None, str]]:
    """One observation (or None and why) per revision from the answers.

    ``ready_before``: each revision's ready replicas at the previous tick. The gauge's average
    is the interval's concurrency only when requests finished in it, the revision had ready
    replicas at both ticks (a revision that started from zero in the window had requests
    waiting at the activator, which the gauge counts and no replica served) and the average is
    above zero (a series kept by an autoscaler replica that no longer decides may sit at 0);
    otherwise the request time of the finished requests stands in, as without the gauge.

    A revision with ready replicas and no request-metric series at all in the window (neither
    requests, nor the latency histogram, nor a pod exporting it) has no observation: its
    metrics are missing (Prometheus not scraping the queue-proxies, request metrics off, other
    metric names), which is not the same as no traffic, when the series are there and their
    increase is zero."""
    requests = _by_revision(names, answers.requests)
    in_flight = _by_revision(names, answers.in_flight)
    weighted = _by_revision(names, answers.concurrency)
    sums = _by_revision(names, answers.latency_sum)
    pods = _by_revision(names, answers.replicas)
    buckets = _buckets_by_revision(names, answers.latency_buckets)
    out: dict[RevisionKey, tuple[RevisionObservation | None, str]] = {}
    for ref in revisions:
        key = ref.key
        pods_seen = pods.get(key)
        ready = ref.ready_replicas if ref.ready_replicas is not None else pods_seen
        series = key in requests or key in buckets or key in sums or pods_seen is not None
        if ready is None or (round(ready) >= 1 and not series):
            # ready replicas and no request-metric series at all: not "no traffic" (series
            # whose increase is zero are) but metrics Prometheus does not have
            out[key] = (None, _no_series(names, key, ref.ready_replicas, window_s))
            continue
        busy_s = sums.get(key, 0.0) * names.ms_per_unit / 1000.0
        le = buckets.get(key)
        counts = rebucket_cumulative(le) if le else (0.0,) * N_LATENCY_COUNTS
        n = max(0, round(requests.get(key, 0.0)))
        concurrency = max(0.0, busy_s / window_s / max(1.0, ready))
        held = in_flight.get(key, 0.0)
        note = ""
        known = True
        from_completions = True
        serving = round(ready)
        warm = serving >= 1 and (ready_before or {}).get(key, 0) >= 1
        if n > 0 and warm and weighted.get(key, 0.0) > 0:
            concurrency = weighted[key] / serving
            from_completions = False
            note = f", concurrency time-weighted from {names.panic_concurrency}"
        if n == 0 and serving >= 1 and held > 0:
            # requests in flight all through the window: the gauge's average is their
            # concurrency where the revision was warm, else (some waited at the activator)
            # its lowest
            concurrency = max(held, weighted.get(key, 0.0) if warm else 0.0) / serving
            from_completions = False
            note = f", {held:.3g} in flight at every sample of it with none finished"
        elif n == 0 and serving >= 1 and names.panic_concurrency and key not in in_flight:
            # no sample of the gauge in the window: how many are in flight is unknown, not 0
            known = False
            note = f", none finished and no sample of {names.panic_concurrency} in the window"
        observation = RevisionObservation(
            t_s=now_s,
            interval_s=window_s,
            ready_replicas=round(ready),
            avg_concurrency_per_replica=concurrency,
            request_count=n,
            latency_counts=counts,
            latency_sum_ms=max(0.0, sums[key] * names.ms_per_unit) if key in sums else None,
            applied_target=ref.applied_target,
            target_utilization_percentage=ref.target_utilization_percentage,
            container_concurrency=ref.container_concurrency,
            # from the latency histogram's _sum unless the gauge gave it
            concurrency_from_completions=from_completions,
            in_flight_known=known,
        )
        source = "from the API" if ref.ready_replicas is not None else "with request metrics"
        out[key] = (
            observation,
            f"{round(ready)} replicas {source}, window {format_window(window_s)}{note}",
        )
    return out
