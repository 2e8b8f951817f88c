"""The Flask app of event-log: ``POST /`` takes an event (binary or structured) and answers 202
with no reply; ``GET /events`` lists the latest ``KEEP_EVENTS`` (default 100, in [1, 100000]) as
structured JSON, newest last; health endpoints for probes. Any other method or path, and an
unexpected failure, is answered in JSON ``{"error": ...}`` (with ``Allow`` on a 405), as a body
that is not a CloudEvent is. Config: ``LISTEN_HOST`` (default 127.0.0.1), ``PORT`` (default
8080), ``KEEP_EVENTS``.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
from collections import deque
from collections.abc import Mapping
from typing import Any

from cloudevents.exceptions import GenericException
from cloudevents.http import from_http
from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound

__all__ = ["ConfigError", "create_app", "keep_events", "main"]

log = logging.getLogger("event_log")


class ConfigError(ValueError):
    """A setting that cannot be used; the message names the variable and the value."""


def keep_events(env: Mapping[str, str]) -> int:
    raw = env.get("KEEP_EVENTS", "100")
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"KEEP_EVENTS={raw!r}: expected an integer") from None
    if not 1 <= value <= 100_000:
        raise ConfigError(f"KEEP_EVENTS={value}: must be in [1, 100000]")
    return value


def create_app(keep: int = 100) -> Flask:
    app = Flask("event_log")
    app.register_error_handler(HTTPException, _json_http_error)
    events: deque[dict[str, Any]] = deque(maxlen=keep)
    lock = threading.Lock()

    @app.post("/")
    def receive() -> Response:
        try:
            event = from_http(dict(request.headers), request.get_data())
        except GenericException as exc:
            body = json.dumps({"error": f"not a CloudEvent: {exc}"})
            return Response(body, status=400, mimetype="application/json")
        record = {**event.get_attributes(), "data": event.get_data()}
        log.info("event %s", json.dumps(record, default=str))
        with lock:
            events.append(record)
        return Response(status=202)

    @app.get("/events")
    def listing() -> Response:
        with lock:
            body = json.dumps(list(events), default=str)
        return Response(body, status=200, mimetype="application/json")

    @app.get("/health/liveness")
    @app.get("/health/readiness")
    def health() -> Response:
        return Response('{"status": "ok"}', status=200, mimetype="application/json")

    return app


def _json_http_error(exc: HTTPException) -> Response:
    """Werkzeug's own answers (404 for an unknown path, 405 for a method the path does not take,
    500 for an unexpected failure, ...) as JSON ``{"error": ...}``, like the function's answer to
    other bad input, with their headers (``Allow`` on a 405)."""
    if isinstance(exc, MethodNotAllowed):
        allowed = ", ".join(exc.valid_methods or ())
        reason = f"method {request.method} is not allowed on {request.path}; allowed: {allowed}"
    elif isinstance(exc, NotFound):
        reason = f"no such path: {request.method} {request.path}"
    else:
        reason = f"{exc.name} ({request.method} {request.path}): {exc.description}"
    headers = [(k, v) for k, v in exc.get_headers() if k.lower() != "content-type"]
    return Response(
        json.dumps({"error": reason}),
        status=exc.code or 500,
        headers=headers,
        mimetype="application/json",
    )


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        keep = keep_events(os.environ)
        port = int(os.environ.get("PORT", "8080"))
    except (ConfigError, ValueError) as exc:
        print(f"event-log: configuration error: {exc}", file=sys.stderr)
        return 2
    host = os.environ.get("LISTEN_HOST", "127.0.0.1")
    create_app(keep).run(host=host, port=port, threaded=True)
    return 0
