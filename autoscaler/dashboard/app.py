"""The dashboard as an aiohttp sub-application: the page, its static files and the JSON API.

Handlers decode the path, take one ``World`` from the source, call a pure ``view`` function and
encode. Every chart on the page reads one of these routes (relative to the mount prefix):

    GET /api/v1/overview                                every model, one row each
    GET /api/v1/models/{namespace}/{model}              the model page's header, conditions,
                                                        last reasons, explain lines, traffic
    GET /api/v1/models/{namespace}/{model}/timeseries   replicas, concurrency/target, latency
    GET /api/v1/models/{namespace}/{model}/capacity     learned capacity curve and target
    GET /api/v1/models/{namespace}/{model}/idle         idle-time histogram, keep-alive, pre-warm
    GET /api/v1/models/{namespace}/{model}/decisions    recent decisions with reasons
    GET /api/v1/models/{namespace}/{model}/traffic      traffic split across revisions

An unknown model is a 404 with ``{"error": ...}``; no data yet is a 200 with empty lists. When the
objects cannot be read (the API server is unreachable) the answer is a 503, and any other failure
a 500, both with ``{"error": ...}``. In one-machine mode a background task looks at the live
replica counts every ``sample_period_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from importlib import resources
from typing import Any

import urllib3
from aiohttp import web
from kubernetes.client.rest import ApiException

from autoscaler.clock import Clock, SystemClock

from . import view
from .source import DashboardSource

log = logging.getLogger(__name__)

DEFAULT_PREFIX = "/dashboard"
STATIC_FILES = {
    "index.html": "text/html",
    "dashboard.js": "text/javascript",
    "dashboard.css": "text/css",
}


def _static(name: str) -> bytes:
    return resources.files("autoscaler.dashboard").joinpath("static", name).read_bytes()


class SourceUnavailable(Exception):
    """The source could not read the objects (the API server is restarting or unreachable)."""


# What reading the objects raises when they cannot be read: an API error answer, and a
# connection that fails or times out (urllib3's own errors, ``OSError`` and timeouts below the
# client, which one-machine mode's source lists the API server with). Anything else is a bug,
# answered 500.
_UNREADABLE: tuple[type[BaseException], ...] = (
    ApiException,
    urllib3.exceptions.HTTPError,
    OSError,
    TimeoutError,
)


async def _read(source: DashboardSource) -> view.World:
    try:
        return await source.world()
    except _UNREADABLE as exc:
        raise SourceUnavailable(f"reading the objects: {exc or type(exc).__name__}") from exc


@web.middleware
async def _json_errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Every failure as ``{"error": ...}`` with its status, so the page can show the cause."""
    try:
        return await handler(request)
    except SourceUnavailable as exc:
        log.warning("dashboard %s: %s", request.path, exc)
        return web.json_response({"error": str(exc)}, status=503)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return web.json_response({"error": exc.reason}, status=exc.status)
    except Exception as exc:
        log.exception("dashboard %s failed", request.path)
        return web.json_response({"error": f"internal error: {exc!r}"}, status=500)


def _model_view(
    source: DashboardSource, fn: Callable[[view.World, view.ModelKey], Any]
) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(request: web.Request) -> web.Response:
        key = (request.match_info["namespace"], request.match_info["model"])
        world = await _read(source)
        if key not in world.index.keys_set:
            return web.json_response(
                {
                    "error": f"model {key[0]}/{key[1]} not found (no InferenceService or ModelScaler)"
                },
                status=404,
            )
        return web.json_response(fn(world, key))

    return handler


def make_dashboard_app(source: DashboardSource, clock: Clock | None = None) -> web.Application:
    """The dashboard; mount it with ``mount_dashboard`` (or ``app.add_subapp``)."""
    sleeper: Clock = clock or SystemClock()
    app = web.Application(middlewares=[_json_errors])

    async def index(_: web.Request) -> web.Response:
        return web.Response(body=_static("index.html"), content_type="text/html", charset="utf-8")

    async def static(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in STATIC_FILES:
            return web.json_response({"error": f"no static file {name!r}"}, status=404)
        return web.Response(body=_static(name), content_type=STATIC_FILES[name], charset="utf-8")

    async def overview(_: web.Request) -> web.Response:
        return web.json_response(view.overview(await _read(source)))

    async def sampler(_: web.Application) -> AsyncIterator[None]:
        async def loop() -> None:
            while True:
                try:
                    await source.sample()
                except Exception as exc:  # the API may be restarting: try again next period
                    log.debug("dashboard sample failed: %s", exc)
                await sleeper.sleep(source.sample_period_s)

        task = (
            asyncio.create_task(loop(), name="dashboard-sampler")
            if source.sample_period_s > 0
            else None
        )
        yield
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    app.cleanup_ctx.append(sampler)
    app.router.add_get("/", index)
    app.router.add_get("/static/{name}", static)
    app.router.add_get("/api/v1/overview", overview)
    base = "/api/v1/models/{namespace}/{model}"
    app.router.add_get(base, _model_view(source, view.detail))
    app.router.add_get(base + "/timeseries", _model_view(source, view.timeseries))
    app.router.add_get(base + "/capacity", _model_view(source, view.capacity))
    app.router.add_get(base + "/idle", _model_view(source, view.idle))
    app.router.add_get(
        base + "/decisions", _model_view(source, lambda w, k: {"decisions": view.decisions(w, k)})
    )
    app.router.add_get(
        base + "/traffic", _model_view(source, lambda w, k: {"traffic": view.traffic(w, k)})
    )
    return app


def mount_dashboard(
    parent: web.Application,
    source: DashboardSource,
    prefix: str = DEFAULT_PREFIX,
    clock: Clock | None = None,
) -> None:
    """Serve the dashboard under ``prefix`` of ``parent`` (before the parent starts), and
    redirect ``prefix`` without its slash to the page."""

    async def redirect(_: web.Request) -> web.Response:
        raise web.HTTPFound(prefix + "/")

    # before the sub-application, which would otherwise answer the bare prefix itself
    parent.router.add_get(prefix, redirect)
    parent.add_subapp(prefix + "/", make_dashboard_app(source, clock))
