"""Metric sources: what the tuner's controller observes of each revision, once per tick.

- ``source``: the ``MetricSource`` protocol, ``RevisionRef``/``RevisionKey``/``ReplicaEndpoint``
  and ``MetricsUnavailable``.
- ``scrape``: ``DirectScrapeSource``, every replica's queue-proxy read directly; ``exposition``
  (text to figures) and ``ledger`` (scrapes to interval figures) are its pure parts.
- ``prometheus``: ``PrometheusSource``, the Prometheus HTTP API; ``promql`` is its pure part.
- ``names``: metric and label names of Knative ≤ 1.18 and ≥ 1.19; ``buckets``: re-bucketing onto
  Knative's latency buckets; ``settings``: parsing; ``factory``: ``make_source``.

Nothing here runs at import time.
"""

from autoscaler.metrics.factory import make_source
from autoscaler.metrics.names import KNATIVE_OPENCENSUS, KNATIVE_OPENTELEMETRY, MetricNames
from autoscaler.metrics.prometheus import PrometheusSource
from autoscaler.metrics.scrape import DirectScrapeSource
from autoscaler.metrics.settings import (
    MetricsConfig,
    MetricsSettingsError,
    PrometheusSettings,
    ScrapeSettings,
    parse_metrics_config,
)
from autoscaler.metrics.source import (
    MetricSource,
    MetricsUnavailable,
    ReplicaEndpoint,
    RevisionKey,
    RevisionRef,
)

__all__ = [
    "KNATIVE_OPENCENSUS",
    "KNATIVE_OPENTELEMETRY",
    "DirectScrapeSource",
    "MetricNames",
    "MetricSource",
    "MetricsConfig",
    "MetricsSettingsError",
    "MetricsUnavailable",
    "PrometheusSettings",
    "PrometheusSource",
    "ReplicaEndpoint",
    "RevisionKey",
    "RevisionRef",
    "ScrapeSettings",
    "make_source",
    "parse_metrics_config",
]
