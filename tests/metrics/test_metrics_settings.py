"""Parsing the metric sources' settings from strings: defaults, presets, overrides, errors."""

from __future__ import annotations

import re

import pytest

from autoscaler.metrics import (
    KNATIVE_OPENCENSUS,
    KNATIVE_OPENTELEMETRY,
    DirectScrapeSource,
    MetricsConfig,
    MetricsSettingsError,
    PrometheusSource,
    make_source,
    parse_metrics_config,
)
from autoscaler.metrics.settings import metrics_config_to_configmap


def test_empty_config_is_the_defaults() -> None:
    assert parse_metrics_config({}) == MetricsConfig()


def test_defaults_round_trip_through_a_configmap() -> None:
    assert parse_metrics_config(metrics_config_to_configmap()) == MetricsConfig()


def test_opentelemetry_preset_and_one_override() -> None:
    config = parse_metrics_config(
        {
            "source": "prometheus",
            "metric_names": "knative-opentelemetry",
            "pod_label": "pod",
            "prometheus_url": "http://prom.monitoring:9090/",
            "prometheus_timeout_s": "2.5",
        }
    )
    assert config.source == "prometheus"
    assert config.prometheus.names.latency_histogram == KNATIVE_OPENTELEMETRY.latency_histogram
    assert config.prometheus.names.latency_unit == "s"
    assert config.prometheus.names.pod_label == "pod"
    assert config.prometheus.prometheus_url == "http://prom.monitoring:9090"
    assert config.prometheus.prometheus_timeout_s == 2.5


def test_request_counter_may_be_emptied() -> None:
    config = parse_metrics_config({"request_counter": ""})
    assert config.prometheus.names.request_counter == ""
    assert config.prometheus.names.latency_histogram == KNATIVE_OPENCENSUS.latency_histogram


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param({"sauce": "1"}, "sauce: unknown metrics setting", id="unknown-key"),
        pytest.param({"source": "statsd"}, "source: 'statsd' is not one of direct, prometheus", id="bad-source"),
        pytest.param(
            {"metric_names": "knative-1.19"}, "metric_names: 'knative-1.19' is not one of", id="bad-preset"
        ),
        pytest.param({"latency_unit": "us"}, "latency_unit: 'us' is not one of ms, s", id="bad-unit"),
        pytest.param({"scrape_timeout_s": "soon"}, "scrape_timeout_s: 'soon' is not a number", id="not-number"),
        pytest.param({"scrape_timeout_s": "0"}, "scrape_timeout_s: '0' is out of range, allowed", id="zero"),
        pytest.param({"prometheus_timeout_s": "nan"}, "prometheus_timeout_s: 'nan' is out of range", id="nan"),
        pytest.param(
            {"concurrency_sample_period_s": "-1"},
            "concurrency_sample_period_s: '-1' is out of range, allowed a number of seconds in [0, 3600]",
            id="negative-sample-period",
        ),
        pytest.param({"prometheus_url": "prom:9090"}, "prometheus_url: 'prom:9090' is not an http", id="url"),
        pytest.param(
            {"revision_label": "kn.revision.name"}, "revision_label: 'kn.revision.name' is not a Prometheus label",
            id="dotted-label",
        ),
        pytest.param(
            {"latency_histogram": "9lives"}, "latency_histogram: '9lives' is not a Prometheus metric", id="metric"
        ),
        pytest.param(
            {"min_window_s": "60", "max_window_s": "30"}, "min_window_s (60) must be <= max_window_s (30)",
            id="window-bounds-crossed",
        ),
    ],
)  # fmt: skip
def test_errors_name_key_and_value(data: dict[str, str], message: str) -> None:
    with pytest.raises(MetricsSettingsError, match=re.escape(message)):
        parse_metrics_config(data)


def test_concurrency_sampling_goes_to_the_direct_scrape_and_0_turns_it_off() -> None:
    assert parse_metrics_config({}).scrape.concurrency_sample_period_s == 2.0
    config = parse_metrics_config({"concurrency_sample_period_s": "0"})
    assert config.scrape.concurrency_sample_period_s == 0.0
    assert config.prometheus == parse_metrics_config({}).prometheus


@pytest.mark.parametrize(
    ("source", "kind"),
    [
        pytest.param("direct", DirectScrapeSource, id="direct"),
        pytest.param("prometheus", PrometheusSource, id="prometheus"),
    ],
)
async def test_make_source_builds_the_configured_source(source: str, kind: type) -> None:
    made = make_source(parse_metrics_config({"source": source}))
    assert isinstance(made, kind)
    await made.close()
