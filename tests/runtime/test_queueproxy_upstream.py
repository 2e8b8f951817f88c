"""The queue-proxy against a stand-in replica on 127.0.0.1 (real HTTP, no model server process).

The stand-in holds each request until its gate opens, so a test decides exactly which requests
are in the model and which wait in the breaker: what a closing queue-proxy does with them, the
revision timeout over the wait in the breaker, a reply cut off mid-body, and
``revision_queue_depth``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiohttp import web
from dataplane_testkit import request, wait_until
from prometheus_client.parser import text_string_to_metric_families

from autoscaler.clock import ManualClock
from autoscaler.runtime.proxy import ProxyResponse, UpstreamUnavailable
from autoscaler.runtime.qpmetrics import PodIdentity
from autoscaler.runtime.queueproxy import QueueProxy
from autoscaler.runtime.spec import RevisionKey

KEY = RevisionKey("default", "gpu-00001")


@dataclass
class Upstream:
    """A replica that answers 200 once ``gate`` is set, counting what reached it."""

    port: int = 0
    gate: asyncio.Event = field(default_factory=asyncio.Event)
    arrived: int = 0

    async def handle(self, _: web.Request) -> web.Response:
        self.arrived += 1
        await self.gate.wait()
        return web.json_response({"predictions": [1]})


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    up = Upstream()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", up.handle)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    up.port = int(runner.addresses[0][1])
    yield up
    up.gate.set()
    await runner.cleanup()


def queue_proxy(
    port: int, cc: int, clock: ManualClock | None = None, timeout_s: float = 300.0
) -> QueueProxy:
    pod = PodIdentity("default", "gpu", "gpu", KEY.name, "gpu-00001-deployment-a")
    return QueueProxy(KEY, pod, port, cc, clock or ManualClock(), timeout_s=timeout_s)


def metric(qp: QueueProxy, name: str) -> dict[str, float] | None:
    """``{sample name + response code: value}`` of a family, None when it is not exported."""
    for family in text_string_to_metric_families(qp.metrics.render().decode()):
        if family.name == name:
            return {s.name + s.labels.get("response_code", ""): s.value for s in family.samples}
    return None


async def test_closing_refuses_waiting_requests_unsent_so_they_are_retried(
    upstream: Upstream,
) -> None:
    qp = queue_proxy(upstream.port, cc=1)
    await qp.start(serve_http=False)
    tasks = [asyncio.create_task(qp.forward(request())) for _ in range(3)]
    assert qp.breaker is not None
    await wait_until(lambda: upstream.arrived == 1 and qp.breaker.waiting == 2, 5, "1 + 2 waiting")
    await qp.close()  # the replica crashed: the pool reaps its queue-proxy
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(r, UpstreamUnavailable) for r in results), results
    # The one in the model was sent; the two waiting never were (any caller may retry them).
    assert [r.sent for r in results] == [True, False, False]  # type: ignore[union-attr]
    with pytest.raises(UpstreamUnavailable) as late:
        await qp.forward(request())
    assert not late.value.sent
    assert (qp.breaker.in_flight, qp.breaker.waiting, qp.in_flight) == (0, 0, 0)
    assert upstream.arrived == 1


async def test_the_revision_timeout_covers_the_wait_in_the_breaker(upstream: Upstream) -> None:
    clock = ManualClock()
    qp = queue_proxy(upstream.port, cc=1, clock=clock, timeout_s=2)
    await qp.start(serve_http=False)
    assert qp.breaker is not None
    first = asyncio.create_task(qp.forward(request()))
    await wait_until(lambda: upstream.arrived == 1, 5, "the first in the model")
    second = asyncio.create_task(qp.forward(request()))
    # A caller's earlier bound (the activator's) is kept too.
    third = asyncio.create_task(qp.forward(request(), deadline=clock.now() + 0.5))
    await wait_until(
        lambda: qp.breaker.waiting == 2 and clock.sleepers() == 3,  # + the Stat loop
        5,
        "two waiting on their timers",
    )
    clock.advance(0.5)
    timed_out: ProxyResponse = await third
    clock.advance(1.5)
    answer: ProxyResponse = await second
    for resp in (timed_out, answer):
        assert resp.status == 504
        assert resp.headers["Content-Type"] == "application/json"
        error = json.loads(resp.body)["error"]
        assert str(KEY) in error and "timeoutSeconds (2s)" in error
    # They left the queue without a slot: the first still holds the only one.
    assert (qp.breaker.in_flight, qp.breaker.waiting) == (1, 0)
    upstream.gate.set()
    assert (await first).status == 200
    assert (qp.breaker.in_flight, qp.breaker.waiting, qp.in_flight) == (0, 0, 0)
    assert upstream.arrived == 1
    requests = metric(qp, "revision_request_count")
    assert requests is not None
    assert requests["revision_request_count_total504"] == 2
    assert requests["revision_request_count_total200"] == 1
    app_requests = metric(qp, "revision_app_request_count")
    assert app_requests is not None  # the model server saw only the first
    assert {k: v for k, v in app_requests.items() if v} == {
        "revision_app_request_count_total200": 1.0
    }
    await qp.close()


async def test_queue_depth_counts_waiting_and_serving_and_only_with_a_breaker(
    upstream: Upstream,
) -> None:
    qp = queue_proxy(upstream.port, cc=2)
    await qp.start(serve_http=False)
    assert qp.breaker is not None
    assert metric(qp, "revision_queue_depth") == {"revision_queue_depth": 0}
    tasks = [asyncio.create_task(qp.forward(request())) for _ in range(5)]
    await wait_until(lambda: upstream.arrived == 2 and qp.breaker.waiting == 3, 5, "2 + 3")
    assert metric(qp, "revision_queue_depth") == {"revision_queue_depth": 5}
    upstream.gate.set()
    assert [r.status for r in await asyncio.gather(*tasks)] == [200] * 5
    assert metric(qp, "revision_queue_depth") == {"revision_queue_depth": 0}
    await qp.close()
    unlimited = queue_proxy(upstream.port, cc=0)
    await unlimited.start(serve_http=False)
    assert (await unlimited.forward(request())).status == 200
    assert metric(unlimited, "revision_queue_depth") is None  # Knative: cc 0, not reported
    await unlimited.close()


async def test_a_reply_cut_off_mid_body_is_a_sent_upstream_failure() -> None:
    async def truncating(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
            b'{"predictions": [1'
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(truncating, "127.0.0.1", 0)
    qp = queue_proxy(server.sockets[0].getsockname()[1], cc=0)
    await qp.start()
    try:
        with pytest.raises(UpstreamUnavailable, match="cut its response off") as exc:
            await qp.forward(request())
        assert exc.value.sent
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"http://127.0.0.1:{qp.port}/v1/models/gpu:predict", json={}) as resp,
        ):
            assert resp.status == 502
            assert resp.content_type == "application/json"
            assert "cut its response off" in (await resp.json())["error"]
    finally:
        await qp.close()
        server.close()
        await server.wait_closed()
