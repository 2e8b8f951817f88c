"""The broker's Prometheus metrics (prometheus_client), one registry per broker core.

Knative's broker reports ``event_count`` and ``event_dispatch_latencies`` per broker and
trigger; we keep that split (labels ``namespace``, ``broker``, ``trigger``) under our own prefix
and add what at-least-once delivery needs to be watched: retries, dead letters and drops.
Delivery latency is measured from acceptance (202) to the subscriber's 2xx, so it includes
retries and backoff: that is the delay a user of the broker sees.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

__all__ = ["BrokerMetrics"]

_LATENCY_BUCKETS_S = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    300.0,
)


class BrokerMetrics:
    """Counters and the latency histogram, registered in ``registry``."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        by_broker = ["namespace", "broker"]
        by_trigger = ["namespace", "broker", "trigger"]
        self.accepted = Counter(
            "modelscale_broker_events_accepted",
            "Events accepted by a broker ingress (answered 202).",
            by_broker,
            registry=self.registry,
        )
        self.rejected = Counter(
            "modelscale_broker_events_rejected",
            "Requests to a broker ingress answered 4xx, by status code.",
            ["namespace", "broker", "code"],
            registry=self.registry,
        )
        self.delivered = Counter(
            "modelscale_broker_events_delivered",
            "Events a trigger's subscriber answered 2xx.",
            by_trigger,
            registry=self.registry,
        )
        self.retried = Counter(
            "modelscale_broker_delivery_retries",
            "Failed attempts that were scheduled for a retry.",
            by_trigger,
            registry=self.registry,
        )
        self.dead_lettered = Counter(
            "modelscale_broker_events_dead_lettered",
            "Events delivered to a dead-letter sink after their retries ran out.",
            by_trigger,
            registry=self.registry,
        )
        self.dropped = Counter(
            "modelscale_broker_events_dropped",
            "Events given up: no dead-letter sink, the sink failed too, or a non-retryable answer.",
            [*by_trigger, "reason"],
            registry=self.registry,
        )
        self.replies = Counter(
            "modelscale_broker_replies",
            "Reply events from subscribers put back into their broker.",
            by_trigger,
            registry=self.registry,
        )
        self.latency = Histogram(
            "modelscale_broker_delivery_latency_seconds",
            "Seconds from acceptance to the subscriber's 2xx.",
            by_trigger,
            buckets=_LATENCY_BUCKETS_S,
            registry=self.registry,
        )
