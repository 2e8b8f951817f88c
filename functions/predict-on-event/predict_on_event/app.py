"""The Flask app of predict-on-event: ``POST /`` takes events; health endpoints for probes."""

from __future__ import annotations

import logging
import os
import sys

from flask import Flask, Response, request

from predict_on_event.client import post_json
from predict_on_event.config import ConfigError, FunctionConfig
from predict_on_event.handler import Poster, handle

__all__ = ["create_app", "main"]


def create_app(config: FunctionConfig, post: Poster = post_json) -> Flask:
    """The app for ``config``; ``post`` is the model client (the real one by default)."""
    app = Flask("predict_on_event")

    @app.post("/")
    def receive() -> Response:
        status, headers, body = handle(config, dict(request.headers), request.get_data(), post)
        return Response(body, status=status, headers=headers)

    @app.get("/health/liveness")
    def liveness() -> Response:
        return Response('{"status": "alive"}', status=200, mimetype="application/json")

    @app.get("/health/readiness")
    def readiness() -> Response:
        return Response('{"status": "ready"}', status=200, mimetype="application/json")

    return app


def main() -> int:
    """Read and check the environment, then serve until stopped."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        config = FunctionConfig.from_env(os.environ)
    except ConfigError as exc:
        print(f"predict-on-event: configuration error: {exc}", file=sys.stderr)
        return 2
    create_app(config).run(host=config.listen_host, port=config.port, threaded=True)
    return 0
