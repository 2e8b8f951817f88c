"""The queue-proxy's Prometheus metrics, one registry per queue-proxy.

Names and labels are Knative's (see the reference, section 3):

- the pre-1.6 autoscaling gauges ``queue_average_concurrent_requests``,
  ``queue_requests_per_second``, ``queue_average_proxied_concurrent_requests``,
  ``queue_proxied_operations_per_second`` and ``process_uptime``, labelled
  ``destination_namespace, destination_configuration, destination_revision, destination_pod``,
  set from each per-second ``Stat``;
- the user-facing ``revision_request_count`` / ``revision_request_latencies`` (whole time in the
  queue-proxy, queueing included), ``revision_app_request_count`` /
  ``revision_app_request_latencies`` (time spent in the model server) in milliseconds with
  Knative's buckets, and ``revision_queue_depth``, labelled ``namespace_name, service_name,
  configuration_name, revision_name, pod_name, container_name`` (+ ``response_code,
  response_code_class`` on the request metrics). As in Knative, ``revision_queue_depth`` is the
  breaker's in-flight count (requests waiting for a slot plus those holding one), and is not
  reported at all when containerConcurrency is 0 (no breaker).

prometheus_client writes a counter's samples with the ``_total`` suffix
(``revision_request_count_total``); the family is ``revision_request_count``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from autoscaler.runtime.stats import Stat

LATENCY_BUCKETS_MS = (
    5, 10, 20, 40, 60, 80, 100, 150, 200, 250, 300, 350, 400, 450, 500,
    600, 700, 800, 900, 1000, 2000, 5000, 10000, 20000, 50000, 100000,
)  # fmt: skip
DESTINATION_LABELS = (
    "destination_namespace",
    "destination_configuration",
    "destination_revision",
    "destination_pod",
)
REVISION_LABELS = (
    "namespace_name",
    "service_name",
    "configuration_name",
    "revision_name",
    "pod_name",
    "container_name",
)
RESPONSE_LABELS = (*REVISION_LABELS, "response_code", "response_code_class")
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass(frozen=True)
class PodIdentity:
    namespace: str
    service: str
    configuration: str
    revision: str
    pod: str
    container: str = "kserve-container"


class QueueProxyMetrics:
    def __init__(self, pod: PodIdentity, queue_depth: bool = True) -> None:
        self.pod = pod
        self.registry = CollectorRegistry(auto_describe=False)
        r = self.registry
        dest = (pod.namespace, pod.configuration, pod.revision, pod.pod)
        self._rev = (
            pod.namespace,
            pod.service,
            pod.configuration,
            pod.revision,
            pod.pod,
            pod.container,
        )

        def gauge(name: str, doc: str) -> Gauge:
            return Gauge(name, doc, DESTINATION_LABELS, registry=r).labels(*dest)

        self.avg_concurrency = gauge(
            "queue_average_concurrent_requests", "Time-weighted average concurrent requests"
        )
        self.rps = gauge("queue_requests_per_second", "Requests per second")
        self.avg_proxied = gauge(
            "queue_average_proxied_concurrent_requests",
            "Time-weighted average concurrent requests that came through the activator",
        )
        self.proxied_ops = gauge(
            "queue_proxied_operations_per_second", "Activator-proxied requests per second"
        )
        self.uptime = gauge("process_uptime", "Seconds since the queue-proxy started")
        self.request_count = Counter(
            "revision_request_count",
            "Requests through the queue-proxy",
            RESPONSE_LABELS,
            registry=r,
        )
        self.request_latency = Histogram(
            "revision_request_latencies",
            "Time in the queue-proxy, queueing included, in milliseconds",
            RESPONSE_LABELS,
            buckets=LATENCY_BUCKETS_MS,
            registry=r,
        )
        self.app_request_count = Counter(
            "revision_app_request_count",
            "Requests served by the model server",
            RESPONSE_LABELS,
            registry=r,
        )
        self.app_request_latency = Histogram(
            "revision_app_request_latencies",
            "Time in the model server, in milliseconds",
            RESPONSE_LABELS,
            buckets=LATENCY_BUCKETS_MS,
            registry=r,
        )
        self._by_status: dict[int, tuple[Any, Any, Any, Any]] = {}
        self.queue_depth: Any = None
        if queue_depth:
            self.queue_depth = Gauge(
                "revision_queue_depth",
                "Requests in the serving and waiting queue",
                REVISION_LABELS,
                registry=r,
            ).labels(*self._rev)
            self.queue_depth.set(0)

    def set_queue_depth(self, depth: int) -> None:
        if self.queue_depth is not None:
            self.queue_depth.set(depth)

    def set_stat(self, stat: Stat, period_s: float) -> None:
        self.avg_concurrency.set(stat.average_concurrent_requests)
        self.avg_proxied.set(stat.average_proxied_concurrent_requests)
        self.rps.set(stat.request_count / period_s if period_s > 0 else 0.0)
        self.proxied_ops.set(stat.proxied_request_count / period_s if period_s > 0 else 0.0)
        self.uptime.set(stat.process_uptime_s)

    def _labels(self, status: int) -> tuple[str, ...]:
        return (*self._rev, str(status), f"{status // 100}xx")

    def _children(self, status: int) -> tuple[Any, Any, Any, Any]:
        # Looking up labelled children takes a lock and builds a key each time; a revision sees a
        # handful of status codes, so the children are resolved once per code (hot path).
        children = self._by_status.get(status)
        if children is None:
            labels = self._labels(status)
            children = (
                self.request_count.labels(*labels),
                self.request_latency.labels(*labels),
                self.app_request_count.labels(*labels),
                self.app_request_latency.labels(*labels),
            )
            self._by_status[status] = children
        return children

    def observe_request(self, status: int, latency_ms: float) -> None:
        count, latency, _, _ = self._children(status)
        count.inc()
        latency.observe(latency_ms)

    def observe_app_request(self, status: int, latency_ms: float) -> None:
        _, _, count, latency = self._children(status)
        count.inc()
        latency.observe(latency_ms)

    def render(self) -> bytes:
        return generate_latest(self.registry)
