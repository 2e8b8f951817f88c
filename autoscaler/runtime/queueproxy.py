"""Knative's queue-proxy for one replica: concurrency limit, per-second Stat, metrics, proxying.

Mirrors cmd/queue and pkg/queue of knative/serving. One ``QueueProxy`` per replica, living in the
runtime process:

- ``forward(request, proxied)`` is the in-process entry the ingress and the activator call; it
  counts the request (time-weighted concurrency, activator-proxied apart), waits for a slot in the
  breaker when containerConcurrency > 0 (queue depth 10 × cc, then 503), and proxies to the
  replica over loopback HTTP with a keep-alive connection pool. As Knative's timeout handler
  wraps the whole proxy handler, the revision's timeoutSeconds bounds the whole stay, the wait in
  the breaker included: past it the answer is 504. A caller may bound it sooner (``deadline``:
  the activator's own bound on the same request).
- a queue-proxy that is closing (its replica crashed or is being stopped) refuses what it has not
  sent yet with ``UpstreamUnavailable(sent=False)``, the requests waiting in its breaker included,
  so the ingress and the activator retry them on another replica; a reply cut off mid-body is
  ``UpstreamUnavailable(sent=True)``.
- its own port (127.0.0.1, kernel-chosen) takes plain HTTP the same way; a request carrying
  ``K-Proxy-Request: activator`` counts as proxied.
- its metrics port (127.0.0.1, kernel-chosen) serves ``GET /metrics`` in Prometheus text: the
  autoscaling gauges and the user-facing request metrics (see ``qpmetrics``). Knative splits these
  over ports 9090 and 9091; one port is enough here. The model server's own ``/metrics`` stays
  reachable through the proxy port.
- each ``stat_period_s`` (1 s) it reports a ``Stat`` to ``on_stat(revision_key, stat)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import aiohttp
from aiohttp import web

from autoscaler.clock import Clock
from autoscaler.runtime.breaker import Breaker, BreakerClosed, BreakerOverload, BreakerTimeout
from autoscaler.runtime.proxy import (
    PROXY_HEADER,
    PROXY_HEADER_VALUE,
    ProxyRequest,
    ProxyResponse,
    UpstreamUnavailable,
    error_response,
    forwardable,
)
from autoscaler.runtime.qpmetrics import CONTENT_TYPE, PodIdentity, QueueProxyMetrics
from autoscaler.runtime.spec import RevisionKey
from autoscaler.runtime.stats import RequestStats, Stat

log = logging.getLogger(__name__)

StatSink = Callable[[RevisionKey, Stat], None]
DEFAULT_TIMEOUT_S = 300.0  # Knative's revision timeoutSeconds default
MAX_BODY_BYTES = 64 * 1024 * 1024


class QueueProxy:
    def __init__(
        self,
        key: RevisionKey,
        pod: PodIdentity,
        upstream_port: int,
        container_concurrency: int,
        clock: Clock,
        on_stat: StatSink | None = None,
        stat_period_s: float = 1.0,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        queue_depth: int | None = None,
    ) -> None:
        if container_concurrency < 0:
            raise ValueError(f"containerConcurrency={container_concurrency}: must be >= 0")
        self.key = key
        self.pod = pod
        self.name = pod.pod
        self.upstream = f"http://127.0.0.1:{upstream_port}"
        self.container_concurrency = container_concurrency
        self.clock = clock
        self.on_stat = on_stat
        self.stat_period_s = stat_period_s
        self.timeout_s = timeout_s
        # Knative reports revision_queue_depth only when there is a breaker (cc > 0).
        self.metrics = QueueProxyMetrics(pod, queue_depth=container_concurrency > 0)
        self.breaker = (
            Breaker(container_concurrency, queue_depth, on_depth=self.metrics.set_queue_depth)
            if container_concurrency
            else None
        )
        self.stats = RequestStats(clock.now())
        self.started_at = clock.now()
        self.port: int | None = None
        self.metrics_port: int | None = None
        self._session: aiohttp.ClientSession | None = None
        self._runners: list[web.AppRunner] = []
        self._closing = False
        self._reporter: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self, serve_http: bool = True) -> None:
        """Open the upstream pool, the stat loop and (unless told not to) the two loopback ports."""
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=30),
            auto_decompress=False,
            timeout=aiohttp.ClientTimeout(total=self.timeout_s, sock_connect=5),
            skip_auto_headers=("User-Agent", "Accept-Encoding", "Content-Type"),
        )
        if serve_http:
            self.port = await self._serve(self._proxy_app())
            self.metrics_port = await self._serve(self._metrics_app())
        self._reporter = asyncio.get_running_loop().create_task(self._report_loop())

    async def _serve(self, app: web.Application) -> int:
        # A client that goes away cancels its handler: its request leaves the breaker.
        runner = web.AppRunner(
            app, access_log=None, handle_signals=False, handler_cancellation=True
        )
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, reuse_address=True)
        await site.start()
        self._runners.append(runner)
        return int(runner.addresses[0][1])

    async def close(self) -> None:
        # Nothing new is sent, and the requests waiting for a slot are refused unsent at once
        # (``UpstreamUnavailable``, sent=False): their callers retry them elsewhere.
        self._closing = True
        if self.breaker is not None:
            self.breaker.close()
        if self._reporter is not None:
            self._reporter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reporter
            self._reporter = None
        for runner in self._runners:
            await runner.cleanup()
        self._runners.clear()
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def in_flight(self) -> int:
        return self.stats.in_flight

    async def wait_idle(self, timeout_s: float) -> bool:
        """Wait until no request is in the queue-proxy; False if ``timeout_s`` passed first."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout_s)
        except TimeoutError:
            return False
        return True

    # -- the data path -----------------------------------------------------------------------

    async def forward(
        self, request: ProxyRequest, proxied: bool = False, deadline: float | None = None
    ) -> ProxyResponse:
        """Count, wait for a slot, proxy, all within the revision's timeout (or ``deadline``,
        a clock time, when sooner). Raises ``UpstreamUnavailable`` if the replica is gone."""
        start = self.clock.now()
        self.stats.request_in(start, proxied)
        self._idle.clear()
        status = 500
        end = start + self.timeout_s
        if deadline is not None and deadline < end:
            end = deadline
        try:
            if self._closing:
                raise UpstreamUnavailable(f"replica {self.name} is going away", sent=False)
            if self.breaker is None:
                response = await self._send(request, end)
            else:
                try:
                    await self.breaker.acquire(end - start, self.clock.sleep)
                except BreakerOverload as exc:
                    status = 503
                    return error_response(503, f"revision {self.key}: {exc}")
                except BreakerTimeout:
                    status = 504
                    return self._timeout_response()
                except BreakerClosed as exc:
                    raise UpstreamUnavailable(
                        f"replica {self.name} went away before the request was sent", sent=False
                    ) from exc
                try:
                    response = await self._send(request, end)
                finally:
                    self.breaker.release()
            status = response.status
            return response
        except UpstreamUnavailable:
            status = 502
            raise
        finally:
            now = self.clock.now()
            self.stats.request_out(now, proxied)
            if self.stats.in_flight == 0:
                self._idle.set()
            self.metrics.observe_request(status, (now - start) * 1000.0)

    def _timeout_response(self) -> ProxyResponse:
        return error_response(
            504,
            f"revision {self.key}: request timeout: no answer within the revision's "
            f"timeoutSeconds ({self.timeout_s:g}s)",
        )

    async def _send(self, request: ProxyRequest, end: float) -> ProxyResponse:
        session = self._session
        if session is None or session.closed or self._closing:
            raise UpstreamUnavailable(f"replica {self.name} is going away", sent=False)
        start = self.clock.now()
        remaining = end - start
        if remaining <= 0:
            return self._timeout_response()
        try:
            async with session.request(
                request.method,
                self.upstream + request.path_qs,
                headers=forwardable(request.headers.items()),
                data=request.body or None,
                timeout=aiohttp.ClientTimeout(total=remaining, sock_connect=5),
                allow_redirects=False,  # a proxy passes a redirect back, as Knative's do
            ) as resp:
                body = await resp.read()
                response = ProxyResponse(resp.status, forwardable(resp.headers.items()), body)
        except aiohttp.ClientConnectorError as exc:
            raise UpstreamUnavailable(f"replica {self.name} refused: {exc}", sent=False) from exc
        except TimeoutError:
            response = self._timeout_response()
        except aiohttp.ClientPayloadError as exc:
            raise UpstreamUnavailable(
                f"replica {self.name} cut its response off: {exc}", sent=True
            ) from exc
        except aiohttp.ClientConnectionError as exc:
            raise UpstreamUnavailable(f"replica {self.name} went away: {exc}", sent=True) from exc
        self.metrics.observe_app_request(response.status, (self.clock.now() - start) * 1000.0)
        return response

    # -- the per-second Stat -----------------------------------------------------------------

    def report(self) -> Stat:
        """Close the current period: the Stat is also written to the gauges and the sink."""
        now = self.clock.now()
        stat = self.stats.report(now, self.name, now - self.started_at, self.clock.wall())
        self.metrics.set_stat(stat, self.stat_period_s)
        if self.on_stat is not None:
            try:
                self.on_stat(self.key, stat)
            except Exception:
                log.exception("stat sink failed for %s", self.key)
        return stat

    async def _report_loop(self) -> None:
        while True:
            await self.clock.sleep(self.stat_period_s)
            self.report()

    # -- HTTP on its own ports ---------------------------------------------------------------

    def _proxy_app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        app.router.add_route("*", "/{tail:.*}", self._handle_http)
        return app

    def _metrics_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/metrics", self._handle_metrics)
        return app

    async def _handle_http(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return to_web(error_response(413, f"request body over {MAX_BODY_BYTES} bytes"))
        proxied = request.headers.get(PROXY_HEADER, "").lower() == PROXY_HEADER_VALUE
        preq = ProxyRequest(request.method, request.path_qs, request.headers, body)
        try:
            return to_web(await self.forward(preq, proxied))
        except UpstreamUnavailable as exc:
            return to_web(error_response(502, str(exc)))
        except Exception as exc:  # never aiohttp's text/plain 500
            log.exception("queue-proxy %s failed on %s", self.name, request.path)
            return to_web(error_response(500, f"queue-proxy {self.name}: {exc!r}"))

    async def _handle_metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=self.metrics.render(), headers={"Content-Type": CONTENT_TYPE})


def to_web(response: ProxyResponse) -> web.Response:
    return web.Response(status=response.status, headers=response.headers, body=response.body)
