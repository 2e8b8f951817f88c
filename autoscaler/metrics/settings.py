"""The metric sources' settings, parsed from a ``dict[str, str]`` (a ConfigMap's data) in one place.

Keys (all optional):

- ``source``: ``direct`` (scrape the replicas) or ``prometheus`` (the Prometheus HTTP API).
- ``scrape_timeout_s``: per-replica timeout of the direct scrape.
- ``concurrency_sample_period_s``: the direct scrape also reads each replica's concurrency gauge
  this often between ticks, for a time-weighted concurrency (``ScrapeLedger``); 0: only at
  ticks (concurrency from completed requests).
- ``prometheus_url``, ``prometheus_timeout_s``: the Prometheus server and the time one query
  may take.
- ``metric_names``: ``knative-opencensus`` (Knative ≤ 1.18, one-machine mode) or
  ``knative-opentelemetry`` (Knative ≥ 1.19); then each name can be overridden on its own:
  ``namespace_label``, ``revision_label``, ``pod_label``, ``latency_histogram``,
  ``latency_unit`` (``ms`` | ``s``), ``request_counter`` (empty: the histogram's ``_count``).
- ``default_window_s``: the query window of the first tick (later ticks use the time since the
  previous one), clamped to ``[min_window_s, max_window_s]``. ``min_window_s`` should be at
  least two Prometheus scrape intervals, or ``increase()`` sees a single sample and says nothing.

Every error names the key, the value and what is allowed.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from autoscaler.metrics.names import KNATIVE_OPENCENSUS, PRESETS, MetricNames

__all__ = [
    "MetricsConfig",
    "MetricsSettingsError",
    "PrometheusSettings",
    "ScrapeSettings",
    "metrics_config_to_configmap",
    "parse_metrics_config",
]

SourceKind = Literal["direct", "prometheus"]
_SOURCES = ("direct", "prometheus")
_METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_NAME_KEYS = (
    "namespace_label",
    "revision_label",
    "pod_label",
    "latency_histogram",
    "request_counter",
)


class MetricsSettingsError(ValueError):
    """A metrics setting is unknown or its value is not allowed; the message names both."""


@dataclass(frozen=True, slots=True)
class ScrapeSettings:
    """The direct scrape of each replica's queue-proxy."""

    scrape_timeout_s: float = 2.0
    # Between ticks, read each replica's concurrency gauge this often (0: never).
    concurrency_sample_period_s: float = 2.0


@dataclass(frozen=True, slots=True)
class PrometheusSettings:
    """The Prometheus HTTP API source and the names it queries."""

    prometheus_url: str = "http://127.0.0.1:9090"
    prometheus_timeout_s: float = 5.0
    names: MetricNames = KNATIVE_OPENCENSUS
    default_window_s: float = 30.0
    min_window_s: float = 2.0
    max_window_s: float = 3600.0


@dataclass(frozen=True, slots=True)
class MetricsConfig:
    """All metric-source settings: which source, and each source's own."""

    source: SourceKind = "direct"
    metric_names: str = "knative-opencensus"
    scrape: ScrapeSettings = field(default_factory=ScrapeSettings)
    prometheus: PrometheusSettings = field(default_factory=PrometheusSettings)


# key -> (low, high) for the numeric settings, exclusive of 0 below except _ZERO_ALLOWED.
_NUMBERS: dict[str, tuple[float, float]] = {
    "scrape_timeout_s": (0.0, 60.0),
    "concurrency_sample_period_s": (0.0, 3600.0),
    "prometheus_timeout_s": (0.0, 300.0),
    "default_window_s": (0.0, 86400.0),
    "min_window_s": (0.0, 86400.0),
    "max_window_s": (0.0, 86400.0),
}
_ZERO_ALLOWED = ("concurrency_sample_period_s",)  # 0 switches it off
_SCRAPE_KEYS = ("scrape_timeout_s", "concurrency_sample_period_s")
_KNOWN = ("source", "prometheus_url", "metric_names", "latency_unit", *_NUMBERS, *_NAME_KEYS)


def _number(key: str, raw: str) -> float:
    lo, hi = _NUMBERS[key]
    zero = key in _ZERO_ALLOWED
    allowed = f"a number of seconds in {'[' if zero else '('}{lo:g}, {hi:g}]"
    try:
        value = float(raw)
    except ValueError:
        raise MetricsSettingsError(f"{key}: {raw!r} is not {allowed}") from None
    if not math.isfinite(value) or not (lo <= value if zero else lo < value) or value > hi:
        raise MetricsSettingsError(f"{key}: {raw!r} is out of range, allowed {allowed}")
    return value


def _choice(key: str, raw: str, allowed: tuple[str, ...]) -> str:
    if raw not in allowed:
        raise MetricsSettingsError(f"{key}: {raw!r} is not one of {', '.join(allowed)}")
    return raw


def _url(key: str, raw: str) -> str:
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise MetricsSettingsError(f"{key}: {raw!r} is not an http:// or https:// URL with a host")
    return raw.rstrip("/")


def _name(key: str, raw: str) -> str:
    if key == "request_counter" and raw == "":
        return raw  # empty: count with the histogram's _count
    pattern = _LABEL_NAME if key.endswith("_label") else _METRIC_NAME
    if not pattern.match(raw):
        raise MetricsSettingsError(
            f"{key}: {raw!r} is not a Prometheus {'label' if key.endswith('_label') else 'metric'} "
            f"name (allowed: {pattern.pattern})"
        )
    return raw


def parse_metrics_config(data: Mapping[str, str]) -> MetricsConfig:
    """Parse ``data``; absent keys keep their defaults, unknown keys are an error."""
    raw = {str(k): str(v).strip() for k, v in data.items()}
    for key, value in raw.items():
        if key not in _KNOWN:
            raise MetricsSettingsError(
                f"{key}: unknown metrics setting (value {value!r}; known: {', '.join(sorted(_KNOWN))})"
            )
    source = _choice("source", raw.get("source", "direct"), _SOURCES)
    preset_name = _choice(
        "metric_names", raw.get("metric_names", "knative-opencensus"), tuple(PRESETS)
    )
    overrides: dict[str, Any] = {k: _name(k, raw[k]) for k in _NAME_KEYS if k in raw}
    if "latency_unit" in raw:
        overrides["latency_unit"] = _choice("latency_unit", raw["latency_unit"], ("ms", "s"))
    names = dataclasses.replace(PRESETS[preset_name], **overrides)
    numbers = {k: _number(k, raw[k]) for k in _NUMBERS if k in raw}
    scrape = ScrapeSettings(**{k: v for k, v in numbers.items() if k in _SCRAPE_KEYS})
    prom_values: dict[str, Any] = {k: v for k, v in numbers.items() if k not in _SCRAPE_KEYS}
    if "prometheus_url" in raw:
        prom_values["prometheus_url"] = _url("prometheus_url", raw["prometheus_url"])
    prometheus = PrometheusSettings(names=names, **prom_values)
    if prometheus.min_window_s > prometheus.max_window_s:
        raise MetricsSettingsError(
            f"min_window_s ({prometheus.min_window_s:g}) must be <= max_window_s "
            f"({prometheus.max_window_s:g})"
        )
    return MetricsConfig(
        source=source,  # type: ignore[arg-type]  # checked by _choice
        metric_names=preset_name,
        scrape=scrape,
        prometheus=prometheus,
    )


def metrics_config_to_configmap(config: MetricsConfig | None = None) -> dict[str, str]:
    """The ConfigMap ``data`` that parses back to ``config`` (defaults when None)."""
    config = config or MetricsConfig()
    p = config.prometheus
    out = {
        "source": config.source,
        "metric_names": config.metric_names,
        "scrape_timeout_s": f"{config.scrape.scrape_timeout_s:g}",
        "concurrency_sample_period_s": f"{config.scrape.concurrency_sample_period_s:g}",
        "prometheus_url": p.prometheus_url,
        "prometheus_timeout_s": f"{p.prometheus_timeout_s:g}",
        "default_window_s": f"{p.default_window_s:g}",
        "min_window_s": f"{p.min_window_s:g}",
        "max_window_s": f"{p.max_window_s:g}",
        "latency_unit": p.names.latency_unit,
    }
    out.update({k: getattr(p.names, k) for k in _NAME_KEYS})
    return out
