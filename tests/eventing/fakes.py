"""The one fake of the broker tests, and object builders.

``Subscriber`` is a real HTTP server that records every event it
receives (with the injected clock's time) and answers from a script of status codes, optionally
replying with an event: a 2xx is empty or carries the reply, a failure the text "scripted
answer".
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from cloudevents.conversion import to_binary
from cloudevents.http import CloudEvent, from_http

from autoscaler.clock import Clock

NAMESPACE = "models"


@dataclass
class Received:
    at: float
    event: CloudEvent
    headers: dict[str, str]


@dataclass
class Subscriber:
    """A recording CloudEvents subscriber; ``statuses`` are answered in order, then 200."""

    clock: Clock
    statuses: list[int] = field(default_factory=list)
    reply: Callable[[CloudEvent], CloudEvent | None] | None = None
    # (headers, body) answered with a 2xx instead of a reply event: a subscriber that does not
    # keep the contract (a 2xx is empty or a CloudEvent).
    raw_answer: tuple[dict[str, str], bytes] | None = None
    received: list[Received] = field(default_factory=list)
    url: str = ""
    port: int = 0  # 0: a free port; a fixed one lets a test start it again at the same address
    _runner: web.AppRunner | None = None

    async def start(self) -> Subscriber:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        event = from_http(dict(request.headers), body, data_unmarshaller=lambda x: x)
        self.received.append(Received(self.clock.now(), event, dict(request.headers)))
        status = self.statuses.pop(0) if self.statuses else 200
        if 200 <= status < 300 and self.raw_answer is not None:
            return web.Response(status=status, headers=self.raw_answer[0], body=self.raw_answer[1])
        if 200 <= status < 300:
            answer = self.reply(event) if self.reply is not None else None
            if answer is None:
                return web.Response(status=status)  # a 2xx is empty or a CloudEvent
            headers, payload = to_binary(answer, data_marshaller=lambda x: x)
            return web.Response(status=status, headers=headers, body=payload)
        return web.Response(status=status, text="scripted answer")

    def ids(self) -> list[str]:
        return [r.event["id"] for r in self.received]

    async def wait_for(self, count: int, timeout_s: float = 10.0) -> None:
        """Wait (real time) until ``count`` events arrived; for tests with a running loop."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while len(self.received) < count:
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"expected {count} events, got {len(self.received)}")
            await asyncio.sleep(0.01)


def broker_obj(name: str = "default", delivery: dict[str, Any] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    if delivery is not None:
        spec["delivery"] = delivery
    return {
        "apiVersion": "eventing.knative.dev/v1",
        "kind": "Broker",
        "metadata": {"name": name, "namespace": NAMESPACE, "generation": 1},
        "spec": spec,
    }


def trigger_obj(
    name: str,
    subscriber_uri: str,
    *,
    broker: str = "default",
    filter_attributes: dict[str, str] | None = None,
    delivery: dict[str, Any] | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {"broker": broker, "subscriber": {"uri": subscriber_uri}}
    if filter_attributes is not None:
        spec["filter"] = {"attributes": filter_attributes}
    if delivery is not None:
        spec["delivery"] = delivery
    return {
        "apiVersion": "eventing.knative.dev/v1",
        "kind": "Trigger",
        "metadata": {"name": name, "namespace": NAMESPACE, "generation": 1},
        "spec": spec,
    }


def no_refs(ref: Any, namespace: str) -> str | None:
    return None
