"""The Flask app of batch-predict: ``POST /`` takes events; health endpoints for probes.

Any other method or path, and an unexpected failure, is answered in JSON ``{"error": ...}`` (with
``Allow`` on a 405), as a body that is not a CloudEvent is.
"""

from __future__ import annotations

import json
import logging
import os
import sys

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound

from batch_predict.client import post_json
from batch_predict.config import BatchConfig, ConfigError
from batch_predict.handler import BatchHandler, Poster

__all__ = ["create_app", "main"]


def create_app(config: BatchConfig, post: Poster = post_json) -> Flask:
    """The app for ``config``; ``post`` is the model client (the real one by default)."""
    app = Flask("batch_predict")
    app.register_error_handler(HTTPException, _json_http_error)
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
