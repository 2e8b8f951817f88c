"""The Flask app of batch-predict: ``POST /`` takes events; health endpoints for probes."""

from __future__ import annotations

import logging
import os
import sys

from flask import Flask, Response, request

from batch_predict.client import post_json
from batch_predict.config import BatchConfig, ConfigError
from batch_predict.handler import BatchHandler, Poster

__all__ = ["create_app", "main"]


def create_app(config: BatchConfig, post: Poster = post_json) -> Flask:
    """The app for ``config``; ``post`` is the model client (the real one by default)."""
    app = Flask("batch_predict")
    handler = BatchHandler(config, post)

    @app.post("/")
    def receive() -> Response:
        status, headers, body = handler.handle(dict(request.headers), request.get_data())
        return Response(body, status=status, headers=headers)

    @app.get("/health/liveness")
    def liveness() -> Response:
        return Response('{"status": "alive"}', status=200, mimetype="application/json")

    @app.get("/health/readiness")
    def readiness() -> Response:
        return Response('{"status": "ready"}', status=200, mimetype="application/json")

    return app


def main() -> int:
    """Read and check the environment, then serve (threaded: batching needs concurrency)."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        config = BatchConfig.from_env(os.environ)
    except ConfigError as exc:
        print(f"batch-predict: configuration error: {exc}", file=sys.stderr)
        return 2
    create_app(config).run(host=config.listen_host, port=config.port, threaded=True)
    return 0
