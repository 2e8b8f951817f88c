"""Where request metrics live: metric and label names of the two Knative generations.

Knative ≤ 1.18 (OpenCensus, queue-proxy port 9091, and one-machine mode) names the user-facing
request metrics ``revision_app_request_latencies`` (histogram, milliseconds) and
``revision_app_request_count`` with labels ``namespace_name``, ``revision_name``, ``pod_name``
(knative/serving pkg/metrics). Knative ≥ 1.19 (OpenTelemetry) has the histogram
``kn.serving.invocation.duration`` in seconds with attributes ``k8s.namespace.name``,
``kn.revision.name``, ``k8s.pod.name``; in Prometheus form the dots become underscores and the
unit is appended (``kn_serving_invocation_duration_seconds``), and there is no separate request
counter: the histogram's ``_count`` is the request count.

The pre-1.6 queue-proxy gauges (port 9090) are listed here too; only the direct scrape reads them
(from a queue-proxy of Knative ≥ 1.6, decoded from the protobuf ``Stat`` under the same names).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = [
    "GAUGE_AVERAGE_CONCURRENCY",
    "GAUGE_AVERAGE_PROXIED_CONCURRENCY",
    "GAUGE_PROCESS_UPTIME",
    "GAUGE_PROXIED_REQUESTS_PER_SECOND",
    "GAUGE_REQUESTS_PER_SECOND",
    "KNATIVE_OPENCENSUS",
    "KNATIVE_OPENTELEMETRY",
    "PRESETS",
    "MetricNames",
]

LatencyUnit = Literal["ms", "s"]


@dataclass(frozen=True, slots=True)
class MetricNames:
    """The names one generation of Knative uses for request metrics in Prometheus form.

    ``latency_histogram`` is the histogram's base name (``_bucket``, ``_sum``, ``_count`` are
    appended). ``request_counter`` empty means: count requests with the histogram's ``_count``.
    """

    namespace_label: str
    revision_label: str
    pod_label: str
    latency_histogram: str
    latency_unit: LatencyUnit
    request_counter: str = ""
    # The autoscaler's per-revision gauge of the requests in flight over its panic window
    # (labelled by namespace and revision like the request metrics): the concurrency of an
    # interval in which no request finished. Empty: not read.
    panic_concurrency: str = ""

    @property
    def ms_per_unit(self) -> float:
        return 1000.0 if self.latency_unit == "s" else 1.0


KNATIVE_OPENCENSUS = MetricNames(
    namespace_label="namespace_name",
    revision_label="revision_name",
    pod_label="pod_name",
    latency_histogram="revision_app_request_latencies",
    latency_unit="ms",
    request_counter="revision_app_request_count",
    panic_concurrency="autoscaler_panic_request_concurrency",
)

KNATIVE_OPENTELEMETRY = MetricNames(
    namespace_label="k8s_namespace_name",
    revision_label="kn_revision_name",
    pod_label="k8s_pod_name",
    latency_histogram="kn_serving_invocation_duration_seconds",
    latency_unit="s",
    request_counter="",
    panic_concurrency="kn_revision_concurrency_panic",
)

# Selectable by the ``metric_names`` setting.
PRESETS: dict[str, MetricNames] = {
    "knative-opencensus": KNATIVE_OPENCENSUS,  # Knative ≤ 1.18 and one-machine mode
    "knative-opentelemetry": KNATIVE_OPENTELEMETRY,  # Knative ≥ 1.19
}

# Pre-1.6 queue-proxy gauges: the last report period's averages (about one second), labelled
# destination_namespace, destination_configuration, destination_revision, destination_pod.
GAUGE_AVERAGE_CONCURRENCY = "queue_average_concurrent_requests"
GAUGE_REQUESTS_PER_SECOND = "queue_requests_per_second"
GAUGE_AVERAGE_PROXIED_CONCURRENCY = "queue_average_proxied_concurrent_requests"
GAUGE_PROXIED_REQUESTS_PER_SECOND = "queue_proxied_operations_per_second"
GAUGE_PROCESS_UPTIME = "process_uptime"  # seconds; going down means the pod restarted
GAUGE_NAMESPACE_LABEL = "destination_namespace"
GAUGE_REVISION_LABEL = "destination_revision"
