"""One replica's scrape: Prometheus text from a queue-proxy reduced to a ``ReplicaSample``.

Reads, for one revision (samples labelled with another revision are ignored), the request
latency histogram and request counter named by ``MetricNames`` (cumulative, summed over
response codes) and the pre-1.6 queue-proxy gauges (knative/serving pkg/queue prometheus_stats
reporter before v1.6). prometheus_client's text parser does the parsing; a counter parsed from
typed text is named without ``_total`` and its samples with it, untyped text keeps whatever the
exporter wrote, so both spellings are accepted.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

from autoscaler.metrics.names import (
    GAUGE_AVERAGE_CONCURRENCY,
    GAUGE_AVERAGE_PROXIED_CONCURRENCY,
    GAUGE_NAMESPACE_LABEL,
    GAUGE_PROCESS_UPTIME,
    GAUGE_PROXIED_REQUESTS_PER_SECOND,
    GAUGE_REQUESTS_PER_SECOND,
    GAUGE_REVISION_LABEL,
    MetricNames,
)

__all__ = ["ReplicaSample", "parse_replica_text"]

_GAUGES = (
    GAUGE_AVERAGE_CONCURRENCY,
    GAUGE_REQUESTS_PER_SECOND,
    GAUGE_AVERAGE_PROXIED_CONCURRENCY,
    GAUGE_PROXIED_REQUESTS_PER_SECOND,
    GAUGE_PROCESS_UPTIME,
)


@dataclass(frozen=True, slots=True)
class ReplicaSample:
    """Cumulative request figures of one replica at one scrape, and its gauges.

    ``latency_le_ms`` maps each bucket bound (ms, ``math.inf`` for +Inf) to the cumulative
    request count; empty when the replica exports no histogram yet (labelled series appear with
    the first request). ``created_s`` is the earliest ``_created`` timestamp of the histogram
    and counter series: it moves forward when the replica's process restarted.
    """

    latency_le_ms: dict[float, float] = field(default_factory=dict)
    latency_sum_ms: float = 0.0
    latency_count: float = 0.0
    request_count: float | None = None
    created_s: float | None = None
    gauges: dict[str, float] = field(default_factory=dict)

    @property
    def has_histogram(self) -> bool:
        return bool(self.latency_le_ms)

    @property
    def requests(self) -> float:
        """Cumulative requests: the counter when exported, else the histogram's count."""
        return self.request_count if self.request_count is not None else self.latency_count


def _matches(labels: dict[str, str], label: str, value: str) -> bool:
    return labels.get(label, value) == value


def parse_replica_text(
    texts: Iterable[str], names: MetricNames, namespace: str, revision: str
) -> ReplicaSample:
    """Reduce one replica's exposition(s) to the figures of ``namespace/revision``.

    Raises ``ValueError`` when the text is not Prometheus text format.
    """
    hist = names.latency_histogram
    counter = names.request_counter
    counter_names = {counter, f"{counter}_total"} if counter else set()
    created_names = {f"{hist}_created"} | ({f"{counter}_created"} if counter else set())
    le_counts: dict[float, float] = {}
    sum_ms = 0.0
    count = 0.0
    requests: float | None = None
    created: float | None = None
    gauges: dict[str, float] = {}
    for text in texts:
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                if s.name in _GAUGES:
                    if _matches(s.labels, GAUGE_NAMESPACE_LABEL, namespace) and _matches(
                        s.labels, GAUGE_REVISION_LABEL, revision
                    ):
                        gauges[s.name] = gauges.get(s.name, 0.0) + s.value
                    continue
                if not (
                    _matches(s.labels, names.namespace_label, namespace)
                    and _matches(s.labels, names.revision_label, revision)
                ):
                    continue
                if s.name == f"{hist}_bucket":
                    le = float(s.labels["le"]) * names.ms_per_unit
                    le_counts[le] = le_counts.get(le, 0.0) + s.value
                elif s.name == f"{hist}_sum":
                    sum_ms += s.value * names.ms_per_unit
                elif s.name == f"{hist}_count":
                    count += s.value
                elif s.name in counter_names:
                    requests = (requests or 0.0) + s.value
                elif s.name in created_names and math.isfinite(s.value):
                    created = s.value if created is None else min(created, s.value)
    return ReplicaSample(
        latency_le_ms=le_counts,
        latency_sum_ms=sum_ms,
        latency_count=count,
        request_count=requests,
        created_s=created,
        gauges=gauges,
    )
