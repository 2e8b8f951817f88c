"""One replica's scrape: what a queue-proxy serves reduced to a ``ReplicaSample``.

Reads, for one revision (samples labelled with another revision are ignored), the request
latency histogram and request counter named by ``MetricNames`` (cumulative, summed over
response codes) and the pre-1.6 queue-proxy gauges (knative/serving pkg/queue prometheus_stats
reporter before v1.6). prometheus_client's text parser does the parsing; a counter parsed from
typed text is named without ``_total`` and its samples with it, untyped text keeps whatever the
exporter wrote, so both spellings are accepted.

A value the text format allows but no counter, histogram or gauge of these can hold (NaN,
±Inf, below zero) is not read: in the request metrics it makes the text unusable
(``ValueError``: the replica's scrape fails, and its counts are read at its next good one),
in a gauge it leaves that gauge out.

Since Knative 1.6 the queue-proxy's port 9090 serves the same figures as the autoscaler's
``Stat`` message in protobuf (``application/protobuf``; knative.dev/serving
pkg/autoscaler/metrics/stat.proto, proto3). ``parse_stat_protobuf`` reads it with the project's
wire-format reader (``autoscaler.protowire``) into the gauges the text path yields.
"""

from __future__ import annotations

import math
import struct
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
from autoscaler.protowire import I64, LEN, fields

__all__ = [
    "STAT_FIELDS",
    "ReplicaSample",
    "merge_samples",
    "parse_replica_text",
    "parse_stat_protobuf",
]

_GAUGES = (
    GAUGE_AVERAGE_CONCURRENCY,
    GAUGE_REQUESTS_PER_SECOND,
    GAUGE_AVERAGE_PROXIED_CONCURRENCY,
    GAUGE_PROXIED_REQUESTS_PER_SECOND,
    GAUGE_PROCESS_UPTIME,
)

# The Stat message's double fields (field number: the pre-1.6 gauge of the same figure); field 1
# is the pod's name. ``request_count`` and ``proxied_request_count`` are per second.
STAT_FIELDS: dict[int, str] = {
    2: GAUGE_AVERAGE_CONCURRENCY,  # average_concurrent_requests
    3: GAUGE_AVERAGE_PROXIED_CONCURRENCY,  # average_proxied_concurrent_requests
    4: GAUGE_REQUESTS_PER_SECOND,  # request_count
    5: GAUGE_PROXIED_REQUESTS_PER_SECOND,  # proxied_request_count
    6: GAUGE_PROCESS_UPTIME,  # process_uptime
}


def _usable(value: float) -> bool:
    """A value a count, a duration or one of the gauges can take: finite, not below zero."""
    return math.isfinite(value) and value >= 0.0


def parse_stat_protobuf(body: bytes) -> dict[str, float]:
    """The gauges of a queue-proxy's protobuf ``Stat``, named as the text path names them.

    proto3 leaves out fields at zero, so every gauge is there (0 when absent) but one whose
    value none can take (NaN, ±Inf, below zero); unknown fields are skipped. Raises
    ``ValueError`` when the body is not a well-formed message (truncated, a field of the wrong
    wire type, a group, field number 0).
    """
    gauges = dict.fromkeys(STAT_FIELDS.values(), 0.0)
    for number, wire, value in fields(body):
        if number == 0:
            raise ValueError("field number 0")
        if number in STAT_FIELDS:
            if wire != I64:
                raise ValueError(f"field {number} has wire type {wire}, not a double")
            (gauges[STAT_FIELDS[number]],) = struct.unpack("<d", value)
        elif number == 1 and wire != LEN:
            raise ValueError(f"field 1 (pod_name) has wire type {wire}, not a string")
    return {name: value for name, value in gauges.items() if _usable(value)}


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


def merge_samples(samples: Iterable[ReplicaSample]) -> ReplicaSample:
    """One replica's samples from several URLs as one (summed; the earliest ``_created``)."""
    le_counts: dict[float, float] = {}
    gauges: dict[str, float] = {}
    sum_ms = count = 0.0
    requests: float | None = None
    created: float | None = None
    for s in samples:
        for le, v in s.latency_le_ms.items():
            le_counts[le] = le_counts.get(le, 0.0) + v
        for name, v in s.gauges.items():
            gauges[name] = gauges.get(name, 0.0) + v
        sum_ms += s.latency_sum_ms
        count += s.latency_count
        if s.request_count is not None:
            requests = (requests or 0.0) + s.request_count
        if s.created_s is not None:
            created = s.created_s if created is None else min(created, s.created_s)
    return ReplicaSample(le_counts, sum_ms, count, requests, created, gauges)


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
    unusable: set[str] = set()  # gauges with a value none can take
    for text in texts:
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                if s.name in _GAUGES:
                    if _matches(s.labels, GAUGE_NAMESPACE_LABEL, namespace) and _matches(
                        s.labels, GAUGE_REVISION_LABEL, revision
                    ):
                        if not _usable(s.value):
                            unusable.add(s.name)
                        gauges[s.name] = gauges.get(s.name, 0.0) + s.value
                    continue
                if not (
                    _matches(s.labels, names.namespace_label, namespace)
                    and _matches(s.labels, names.revision_label, revision)
                ):
                    continue
                if s.name in created_names:
                    if math.isfinite(s.value):
                        created = s.value if created is None else min(created, s.value)
                    continue
                is_request_figure = s.name in counter_names or s.name in (
                    f"{hist}_bucket", f"{hist}_sum", f"{hist}_count",
                )  # fmt: skip
                if is_request_figure and not _usable(s.value):
                    raise ValueError(f"{s.name}{s.labels} is {s.value}: not a count")
                if s.name == f"{hist}_bucket":
                    if "le" not in s.labels:
                        raise ValueError(f"{s.name} sample without an le label")
                    le = float(s.labels["le"]) * names.ms_per_unit
                    if math.isnan(le):
                        raise ValueError(f"{s.name} sample with le NaN")
                    le_counts[le] = le_counts.get(le, 0.0) + s.value
                elif s.name == f"{hist}_sum":
                    if not _usable(s.value * names.ms_per_unit):
                        raise ValueError(f"{s.name}{s.labels} is {s.value}: too long in ms")
                    sum_ms += s.value * names.ms_per_unit
                elif s.name == f"{hist}_count":
                    count += s.value
                elif s.name in counter_names:
                    requests = (requests or 0.0) + s.value
    for name in unusable:
        del gauges[name]
    return ReplicaSample(
        latency_le_ms=le_counts,
        latency_sum_ms=sum_ms,
        latency_count=count,
        request_count=requests,
        created_s=created,
        gauges=gauges,
    )
