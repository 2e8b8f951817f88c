"""The ingress: one aiohttp server on 127.0.0.1 in front of every route.

Like Knative's networking layer with KServe on top: the Host header picks the route
(``<name>.<namespace>.<domain>``, or ``<tag>-<name>...`` for a tagged target), the traffic
split picks the revision (the draw comes from an injectable ``random.Random``), and the request
goes through the activator when the revision has it in its path (or no ready replica), else
straight to a replica's queue-proxy (round robin, as a Kubernetes Service would spread it). A
replica that is gone is skipped, and when none is left the activator buffers the request.

Every path and method of a known host goes to the revision, as Knative's ingress forwards it: a
model server's ``/metrics``, ``GET /v1/models``, versioned and repository paths, a function's
``GET /events``. For a revision that runs KServe's model server (``RevisionDirectory.
kserve_paths``) a KServe model path naming another model is answered 404 here, as the model
server would, without waking a revision at zero.

A client that goes away cancels its request's handler (``handler_cancellation``): a request
buffered at the activator leaves its queue and its concurrency count and is never proxied.

Errors come back KServe-shaped (``{"error": ...}``): unknown host 404, an unknown model 404, a
body over ``max_body_bytes`` 413, and any failure of the data plane itself 500 (never aiohttp's
text/plain page); the upstream's own answers (400 on malformed JSON, ...) pass through unchanged.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from typing import Protocol

from aiohttp import web

from autoscaler.runtime.activator import Activator, Target
from autoscaler.runtime.proxy import (
    ProxyRequest,
    ProxyResponse,
    UpstreamUnavailable,
    error_response,
)
from autoscaler.runtime.queueproxy import to_web
from autoscaler.runtime.routing import RouteTable, model_in_path
from autoscaler.runtime.spec import RevisionKey

log = logging.getLogger(__name__)

DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024


class RevisionDirectory(Protocol):
    """What the ingress needs to know about revisions (the DataPlane answers)."""

    def model_name(self, key: RevisionKey) -> str | None:
        """The model a revision serves; None for an unknown revision."""
        ...

    def direct_targets(self, key: RevisionKey) -> Sequence[Target]:
        """Ready replicas to use directly; empty when the activator must be in the path."""
        ...

    def kserve_paths(self, key: RevisionKey) -> bool:
        """Whether the revision runs KServe's model server (model paths are checked)."""
        ...


class Ingress:
    def __init__(
        self,
        routes: RouteTable,
        revisions: RevisionDirectory,
        activator: Activator,
        rng: random.Random | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.routes = routes
        self.revisions = revisions
        self.activator = activator
        self.rng = rng or random.Random()
        self.max_body_bytes = max_body_bytes
        self.host = host
        self.port = port
        self._rr: dict[RevisionKey, int] = {}
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        app = web.Application(client_max_size=self.max_body_bytes)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        # A client that goes away cancels its handler, wherever its request waits.
        self._runner = web.AppRunner(
            app, access_log=None, handle_signals=False, handler_cancellation=True
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        try:
            return to_web(await self.route(request))
        except Exception as exc:  # never aiohttp's text/plain 500
            log.exception("the ingress failed on %s %s", request.method, request.path)
            return to_web(error_response(500, f"the ingress failed: {exc!r}"))

    async def route(self, request: web.Request) -> ProxyResponse:
        host = request.headers.get("Host", "")
        route = self.routes.lookup(host)
        if route is None:
            return error_response(404, f"no route for host {host!r}")
        key = route.pick(self.rng.random() * 100.0)
        model = self.revisions.model_name(key)
        if model is None:
            return error_response(503, f"revision {key} of host {host!r} is not ready")
        if self.revisions.kserve_paths(key):
            named = model_in_path(request.method, request.path)
            if named is not None and named != model:
                return error_response(404, f"Model with name {named} does not exist.")
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return error_response(
                413, f"request body larger than the limit of {self.max_body_bytes} bytes"
            )
        preq = ProxyRequest(request.method, request.path_qs, request.headers, body)
        return await self.forward(key, preq)

    async def forward(self, key: RevisionKey, request: ProxyRequest) -> ProxyResponse:
        targets = list(self.revisions.direct_targets(key))
        n = len(targets)
        if n:
            start = self._rr.get(key, 0)
            self._rr[key] = start + 1
            for i in range(n):
                target = targets[(start + i) % n]
                try:
                    return await target.forward(request, proxied=False)
                except UpstreamUnavailable:
                    continue  # that replica is gone: try the next, then the activator
        return await self.activator.handle(key, request)
