"""Fixtures for the metric-source tests: queue-proxy exporters and a real Prometheus server.

``QueueProxyExporter`` is this topic's one stand-in: a real aiohttp server on 127.0.0.1 serving
Prometheus text made by prometheus_client, with the metric and label names a Knative ≤ 1.18
queue-proxy (and one-machine mode) exposes, or with ``flavor="opentelemetry"`` those of Knative
≥ 1.19. Tests drive its real counters and histograms (``serve``), restart it (fresh counters)
or take it down. Its ``/stat`` path is the port 9090 of a Knative ≥ 1.6 queue-proxy: the
autoscaler ``Stat`` in protobuf (``encode_stat``, the wire format written out by hand), always
or only when asked for (``stat_mode``), or a body a test sets (``stat_body``). ``prometheus`` starts Debian's Prometheus on a free loopback port scraping
given exporters every second.
"""

from __future__ import annotations

import asyncio
import struct
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import aiohttp
import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from autoscaler.metrics import ReplicaEndpoint
from autoscaler.metrics.testing import (
    PROMETHEUS,
    prometheus_installed,
    start_prometheus,
    static_config,
)
from autoscaler.metrics.testing import PrometheusServer as RealPrometheus
from autoscaler.tuner.observation import LATENCY_BUCKETS_MS

# Bounds (s) an OpenTelemetry HTTP duration histogram uses by default (semantic conventions).
OTEL_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)

Flavor = Literal["opencensus", "opentelemetry"]
# How ``/stat`` answers: protobuf whatever the Accept header (current Knative), protobuf when
# the Accept header asks for it and the pre-1.6 text gauges otherwise (some releases between)
StatMode = Literal["protobuf", "negotiate"]


def encode_stat(pod: str, **fields: float) -> bytes:
    """A knative.dev/serving ``Stat`` (stat.proto, proto3) in the protobuf wire format: 1
    pod_name, 2 average_concurrent_requests, 3 average_proxied_concurrent_requests, 4
    request_count, 5 proxied_request_count, 6 process_uptime; zero fields left out, as proto3
    does. Each double is a key byte (field << 3 | wire type 1) and 8 bytes little-endian."""
    numbers = {
        "average_concurrent_requests": 2,
        "average_proxied_concurrent_requests": 3,
        "request_count": 4,
        "proxied_request_count": 5,
        "process_uptime": 6,
    }
    name = pod.encode()
    out = bytes([1 << 3 | 2, len(name)]) + name
    for key, value in fields.items():
        if value:
            out += bytes([numbers[key] << 3 | 1]) + struct.pack("<d", value)
    return out


@dataclass
class QueueProxyExporter:
    """One replica's queue-proxy metrics endpoint, served on its own port."""

    namespace: str
    revision: str
    pod: str
    flavor: Flavor = "opencensus"
    configuration: str = "cfg"
    service: str = "svc"
    url: str = ""
    _registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    _metrics: dict[str, Any] = field(default_factory=dict)
    stat_mode: StatMode = "protobuf"
    stat: dict[str, float] = field(default_factory=dict)  # the Stat's fields at ``/stat``
    stat_body: bytes | None = None  # served at ``/stat`` instead, as protobuf
    stat_accepts: list[str] = field(default_factory=list)  # Accept headers ``/stat`` got
    stat_url: str = ""
    text_body: str | None = None  # served at ``/metrics`` instead of the registry's text
    _runner: web.AppRunner | None = None
    _port: int = 0

    def __post_init__(self) -> None:
        self.restart()

    # -- metrics -------------------------------------------------------------------------
    def restart(self) -> None:
        """A new process: fresh counters and histograms (the old values are gone)."""
        self._registry = CollectorRegistry()
        r = self._registry
        if self.flavor == "opencensus":
            labels = [
                "namespace_name", "service_name", "configuration_name", "revision_name",
                "pod_name", "container_name", "response_code", "response_code_class",
            ]  # fmt: skip
            self._metrics = {
                "latency": Histogram(
                    "revision_app_request_latencies", "Response time in ms", labels,
                    buckets=LATENCY_BUCKETS_MS, registry=r,
                ),
                "count": Counter("revision_app_request_count", "Requests", labels, registry=r),
            }  # fmt: skip
            gauge_labels = [
                "destination_namespace", "destination_configuration",
                "destination_revision", "destination_pod",
            ]  # fmt: skip
            for name in (
                "queue_average_concurrent_requests",
                "queue_requests_per_second",
                "queue_average_proxied_concurrent_requests",
                "queue_proxied_operations_per_second",
            ):
                self._metrics[name] = Gauge(name, name, gauge_labels, registry=r).labels(
                    self.namespace, self.configuration, self.revision, self.pod
                )
        else:
            labels = [
                "k8s_namespace_name", "kn_service_name", "kn_configuration_name",
                "kn_revision_name", "k8s_pod_name", "http_response_status_code",
            ]  # fmt: skip
            self._metrics = {
                "latency": Histogram(
                    "kn_serving_invocation_duration_seconds", "Invocation duration", labels,
                    buckets=OTEL_BUCKETS_S, registry=r,
                ),
            }  # fmt: skip

    def _labels(self, code: int) -> list[str]:
        if self.flavor == "opencensus":
            return [
                self.namespace, self.service, self.configuration, self.revision,
                self.pod, "user-container", str(code), f"{code // 100}xx",
            ]  # fmt: skip
        return [
            self.namespace,
            self.service,
            self.configuration,
            self.revision,
            self.pod,
            str(code),
        ]

    def touch(self, code: int = 200) -> None:
        """Create the labelled series at zero (as after a first scrape with no requests)."""
        self._metrics["latency"].labels(*self._labels(code))
        if "count" in self._metrics:
            self._metrics["count"].labels(*self._labels(code))

    def serve(self, duration_ms: float, code: int = 200, times: int = 1) -> None:
        """Record ``times`` completed requests of ``duration_ms`` each."""
        value = duration_ms if self.flavor == "opencensus" else duration_ms / 1000.0
        for _ in range(times):
            self._metrics["latency"].labels(*self._labels(code)).observe(value)
            if "count" in self._metrics:
                self._metrics["count"].labels(*self._labels(code)).inc()

    def count_more(self, amount: float, code: int = 200) -> None:
        """Add ``amount`` (any float not below zero, +Inf included) to the request counter."""
        self._metrics["count"].labels(*self._labels(code)).inc(amount)

    def set_gauges(self, concurrency: float, requests_per_second: float) -> None:
        self._metrics["queue_average_concurrent_requests"].set(concurrency)
        self._metrics["queue_requests_per_second"].set(requests_per_second)

    def set_panic_concurrency(self, value: float) -> None:
        """The autoscaler's per-revision gauge of requests in flight over its panic window,
        with its names and labels (in a cluster the autoscaler's pod serves it; here this
        endpoint does, as one more target)."""
        if "panic" not in self._metrics:
            if self.flavor == "opencensus":
                name = "autoscaler_panic_request_concurrency"
                labels = ["namespace_name", "configuration_name", "revision_name"]
                values = [self.namespace, self.configuration, self.revision]
            else:
                name = "kn_revision_concurrency_panic"
                labels = ["k8s_namespace_name", "kn_revision_name"]
                values = [self.namespace, self.revision]
            gauge = Gauge(
                name, "Requests in flight over the panic window", labels, registry=self._registry
            )
            self._metrics["panic"] = gauge.labels(*values)
        self._metrics["panic"].set(value)

    def text(self) -> str:
        return generate_latest(self._registry).decode()

    # -- HTTP ----------------------------------------------------------------------------
    async def _handle(self, request: web.Request) -> web.Response:
        if self.text_body is not None:
            return web.Response(text=self.text_body, content_type="text/plain")
        return web.Response(body=generate_latest(self._registry), content_type="text/plain")

    async def _handle_stat(self, request: web.Request) -> web.Response:
        accept = request.headers.get("Accept", "")
        self.stat_accepts.append(accept)
        if self.stat_mode == "negotiate" and "application/protobuf" not in accept:
            return await self._handle(request)
        body = self.stat_body if self.stat_body is not None else encode_stat(self.pod, **self.stat)
        return web.Response(body=body, content_type="application/protobuf")

    async def start(self) -> QueueProxyExporter:
        app = web.Application()
        app.router.add_get("/metrics", self._handle)
        app.router.add_get("/stat", self._handle_stat)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self._port, reuse_address=True)
        await site.start()
        self._port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{self._port}/metrics"
        self.stat_url = f"http://127.0.0.1:{self._port}/stat"
        return self

    async def stop(self) -> None:
        """Take the replica down: its port refuses connections."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self._port}"

    @property
    def endpoint(self) -> ReplicaEndpoint:
        return ReplicaEndpoint(self.pod, (self.url,))

    @property
    def cluster_endpoint(self) -> ReplicaEndpoint:
        """As a cluster's Pod gives it: the Stat's URL (port 9090) for the gauges, then the
        request metrics' (port 9091)."""
        return ReplicaEndpoint(self.pod, (self.stat_url, self.url), gauge_urls=(self.stat_url,))


ExporterFactory = Callable[..., Awaitable[QueueProxyExporter]]


@pytest.fixture
async def exporter() -> AsyncIterator[ExporterFactory]:
    """``await exporter(namespace, revision, pod, flavor=...)``: a started exporter."""
    started: list[QueueProxyExporter] = []

    async def make(namespace: str, revision: str, pod: str, **kw: Any) -> QueueProxyExporter:
        e = await QueueProxyExporter(namespace, revision, pod, **kw).start()
        started.append(e)
        return e

    yield make
    for e in started:
        await e.stop()


# -- Prometheus --------------------------------------------------------------------------
@dataclass
class PrometheusServer:
    """A started server (autoscaler.metrics.testing) with async queries for these tests."""

    server: RealPrometheus

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def process(self) -> subprocess.Popen[bytes]:
        return self.server.process

    async def query(self, promql: str) -> list[dict[str, Any]]:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{self.url}/api/v1/query", params={"query": promql}) as resp,
        ):
            body = await resp.json()
        assert body["status"] == "success", body
        return list(body["data"]["result"])

    async def wait_for(
        self,
        promql: str,
        predicate: Callable[[list[dict[str, Any]]], bool],
        timeout_s: float = 20.0,
    ) -> list[dict[str, Any]]:
        """Poll ``promql`` until ``predicate`` holds for its result (a deadline, not a sleep)."""
        deadline = time.monotonic() + timeout_s
        result: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            result = await self.query(promql)
            if predicate(result):
                return result
            await asyncio.sleep(0.2)
        raise AssertionError(f"timed out waiting on {promql!r}; last result {result}")


PrometheusFactory = Callable[..., Awaitable[PrometheusServer]]


@pytest.fixture
async def prometheus(tmp_path: Path) -> AsyncIterator[PrometheusFactory]:
    """``await prometheus(targets, *extra_args)``: a ready Prometheus scraping ``targets``."""
    if not prometheus_installed():
        pytest.skip(f"{PROMETHEUS} is not installed")
    servers: list[RealPrometheus] = []

    async def start(targets: Sequence[str], *extra_args: str) -> PrometheusServer:
        n = len(servers)
        try:
            server = await asyncio.to_thread(
                start_prometheus, tmp_path, static_config(targets), *extra_args,
                name=f"prometheus-{n}",
            )  # fmt: skip
        except RuntimeError as exc:
            raise AssertionError(str(exc)) from None
        servers.append(server)
        return PrometheusServer(server)

    yield start
    for s in servers:
        await asyncio.to_thread(s.stop)


@pytest.fixture
def make_exporter() -> Callable[..., QueueProxyExporter]:
    """An exporter that is not served: for the pure tests, which read its ``text()``."""
    return QueueProxyExporter
