"""The Flask app of event-log: ``POST /`` takes an event (binary or structured) and answers 202
with no reply; ``GET /events`` lists the latest ``KEEP_EVENTS`` (default 100, in [1, 100000]) as
structured JSON, newest last; health endpoints for probes. Config: ``LISTEN_HOST`` (default
127.0.0.1), ``PORT`` (default 8080), ``KEEP_EVENTS``.
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
