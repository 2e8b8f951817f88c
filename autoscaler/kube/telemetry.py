"""The controller's own observability: Prometheus metrics and the ``/metrics``, ``/healthz`` and
``/readyz`` endpoints (aiohttp), bound to 127.0.0.1 unless told otherwise.

Each controller has its own registry, so two controllers in one process (tests, a leader and a
stand-by) do not share counters.
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)


class ControllerMetrics:
    """Decisions, applied values per model, errors by kind, tick duration, leadership."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.decisions = Counter(
            "modelscale_tuner_decisions",
            "Per-revision decisions by outcome (applied, unchanged, recommended, off, "
            "paused, fail_static, write_failed, invalid, no_target)",
            ["namespace", "model", "outcome"],
            registry=r,
        )
        self.applied_target = Gauge(
            "modelscale_tuner_applied_target",
            "The concurrency target last applied (autoscaling.knative.dev/target)",
            ["namespace", "model"],
            registry=r,
        )
        self.applied_retention_seconds = Gauge(
            "modelscale_tuner_applied_retention_seconds",
            "The scale-to-zero-pod-retention-period last applied",
            ["namespace", "model"],
            registry=r,
        )
        self.applied_min_scale = Gauge(
            "modelscale_tuner_applied_min_scale",
            "The min-scale last applied",
            ["namespace", "model"],
            registry=r,
        )
        self.errors = Counter(
            "modelscale_tuner_errors",
            "Errors by kind (metrics, write, status, event, cloudevent, config, checkpoint, reconcile)",
            ["kind"],
            registry=r,
        )
        self.writes = Counter(
            "modelscale_tuner_writes", "Writes of scaling values to Kubernetes", registry=r
        )
        self.cloudevents = Counter(
            "modelscale_tuner_cloudevents_sent", "CloudEvents the sink accepted", registry=r
        )
        self.tick_seconds = Histogram(
            "modelscale_tuner_tick_duration_seconds",
            "Time one tick took",
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=r,
        )
        self.leader = Gauge(
            "modelscale_tuner_leader", "1 while this replica is the leader", registry=r
        )

    def value(self, name: str, labels: dict[str, str] | None = None) -> float:
        """A sample's current value (0 when absent): for tests and status lines."""
        v = self.registry.get_sample_value(name, labels or {})
        return float(v) if v is not None else 0.0

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def make_app(
    metrics: ControllerMetrics,
    ready: Callable[[], bool],
    mount: Callable[[web.Application], None] | None = None,
) -> web.Application:
    """The endpoints; ``mount(app)`` adds more routes (the dashboard) before the app starts."""

    async def get_metrics(_: web.Request) -> web.Response:
        resp = web.Response(body=metrics.exposition())
        resp.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return resp

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def readyz(_: web.Request) -> web.Response:
        if ready():
            return web.Response(text="ok\n")
        return web.Response(status=503, text="informers not synced\n")

    app = web.Application()
    app.router.add_get("/metrics", get_metrics)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    if mount is not None:
        mount(app)
    return app


async def start_http(
    metrics: ControllerMetrics,
    ready: Callable[[], bool],
    host: str = "127.0.0.1",
    port: int = 0,
    mount: Callable[[web.Application], None] | None = None,
) -> tuple[web.AppRunner, int]:
    """Serve the endpoints; returns the runner (``await runner.cleanup()`` to stop) and port."""
    runner = web.AppRunner(make_app(metrics, ready, mount), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    server = site._server
    sockets = getattr(server, "sockets", None) or []
    bound = sockets[0].getsockname()[1] if sockets else port
    return runner, int(bound)
