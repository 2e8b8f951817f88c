"""The broker ingress: ``POST /<namespace>/<broker>`` takes one CloudEvent over HTTP.

Mirrors Knative Eventing's broker ingress (``pkg/broker/ingress/ingress_handler.go``): binary or
structured mode, 202 Accepted once the event is stored (here: committed to SQLite), 400 with
the reason for an event that is not valid or a path that is not ``/<namespace>/<broker>`` (one
trailing slash is dropped), 404 for a broker that does not exist, 405 for a
method other than POST and OPTIONS, 413 past the size limit, 503 (with ``Retry-After``) while
the broker is starting and has not loaded its Brokers and Triggers yet. Errors are JSON
``{"error": reason}``. Every answer carries ``Allow: POST, OPTIONS``; ``OPTIONS`` (the
CloudEvents webhook validation) is answered 200 with ``WebHook-Allowed-Origin: *`` and
``WebHook-Allowed-Rate: *``. The app also serves
``GET /healthz`` and the broker's ``GET /metrics``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from cloudevents.http import CloudEvent
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from autoscaler.eventing.events import InvalidEvent, decode_event
from autoscaler.eventing.metrics import BrokerMetrics

__all__ = ["Accept", "Unavailable", "make_ingress_app"]

log = logging.getLogger(__name__)

# accept(namespace, broker, event) -> None once stored; raises LookupError for an unknown broker,
# InvalidEvent for an event it refuses, Unavailable when no event can be taken yet.
Accept = Callable[[str, str, CloudEvent], Awaitable[None]]
# Seconds a sender is asked to wait before trying again after a 503.
RETRY_AFTER_S = 1
ALLOW = "POST, OPTIONS"


class Unavailable(Exception):
    """No event can be taken for now (answered 503); the message says why."""


def make_ingress_app(
    accept: Accept,
    *,
    metrics: BrokerMetrics,
    max_event_bytes: int,
) -> web.Application:
    """The aiohttp application of the ingress."""

    async def handle(request: web.Request) -> web.Response:
        if request.method == "OPTIONS":
            response = web.Response(status=200)
            response.headers["WebHook-Allowed-Origin"] = "*"
            response.headers["WebHook-Allowed-Rate"] = "*"
        elif request.method == "POST":
            response = await post_event(request)
        else:
            response = _error(405, f"method {request.method} not allowed: events are POSTed")
        response.headers["Allow"] = ALLOW
        return response

    async def post_event(request: web.Request) -> web.Response:
        # As Knative's ingress: one trailing slash is dropped, and the rest must be exactly
        # /<namespace>/<broker>; any other path is malformed (not counted: its labels would be
        # whatever a client sent).
        parts = request.path.removesuffix("/").split("/")
        if len(parts) != 3 or not all(parts[1:]):
            return _error(
                400,
                f"malformed URI {request.path!r}: an event is sent to /<namespace>/<broker>",
            )
        namespace, broker = parts[1], parts[2]

        def reject(code: int, reason: str) -> web.Response:
            metrics.rejected.labels(namespace, broker, str(code)).inc()
            return _error(code, reason)

        if request.content_length is not None and request.content_length > max_event_bytes:
            return reject(
                413,
                f"event of {request.content_length} bytes is over the limit of {max_event_bytes} bytes",
            )
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return reject(413, f"event is over the limit of {max_event_bytes} bytes")
        try:
            event = decode_event(request.headers, body)
        except InvalidEvent as exc:
            return reject(400, f"invalid CloudEvent: {exc}")
        try:
            await accept(namespace, broker, event)
        except InvalidEvent as exc:  # what only the broker checks (knativebrokerttl)
            return reject(400, f"invalid CloudEvent: {exc}")
        except LookupError:
            return reject(404, f"broker {namespace}/{broker} does not exist")
        except Unavailable as exc:
            response = reject(503, str(exc))
            response.headers["Retry-After"] = str(RETRY_AFTER_S)
            return response
        metrics.accepted.labels(namespace, broker).inc()
        return web.Response(status=202)

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def prometheus(_: web.Request) -> web.Response:
        response = web.Response(body=generate_latest(metrics.registry))
        response.content_type = CONTENT_TYPE_LATEST.split(";")[0]
        return response

    app = web.Application(client_max_size=max_event_bytes)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", prometheus)
    app.router.add_route("*", "/{path:.*}", handle)  # the path is checked by post_event
    return app


def _error(code: int, reason: str) -> web.Response:
    return web.Response(
        status=code, text=json.dumps({"error": reason}), content_type="application/json"
    )
