"""Which metric source the controller uses: built from the parsed ``MetricsConfig``."""

from __future__ import annotations

from autoscaler.metrics.prometheus import PrometheusSource
from autoscaler.metrics.scrape import DirectScrapeSource
from autoscaler.metrics.settings import MetricsConfig
from autoscaler.metrics.source import MetricSource

__all__ = ["make_source"]


def make_source(config: MetricsConfig) -> MetricSource:
    """The source ``config.source`` names, with its settings. Call inside the event loop's life."""
    if config.source == "prometheus":
        return PrometheusSource(config.prometheus)
    # The direct scrape reads the same names (preset and overrides) the Prometheus source would.
    return DirectScrapeSource(config.scrape, names=config.prometheus.names)
