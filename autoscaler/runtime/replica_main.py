"""The replica entry point: one KServe model server, bound to 127.0.0.1, REST only.

``kserve.ModelServer`` builds a ``uvicorn.Config`` with ``host="0.0.0.0"`` (and gRPC on ``[::]``)
inside ``RESTServer`` (kserve/protocol/rest/server.py). We keep kserve's application (its FastAPI
app, routes, exception handlers and middlewares from ``RESTServer.create_application``) and serve
it with ``uvicorn.Server.serve(sockets=[sock])`` on a socket we bound to 127.0.0.1 ourselves, so
the kernel picks a free port with no race and nothing listens beyond loopback. gRPC is off.

``import kserve`` parses ``sys.argv``, so ``main`` resets the argument vector before the import;
afterwards ``sys.argv`` is set to the spec's container args so a custom model that parses them
the way kserve custom servers do sees its own arguments.

Run as ``python -m autoscaler.runtime.replica_main --spec JSON [--log FILE]``: it writes one JSON
line ``{"event": "bound", "pid": ..., "port": ...}`` on its stdout once the socket is bound, and
sends its own logs to ``--log`` (or discards them). The zygote calls ``serve`` directly after fork.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from autoscaler.runtime.spec import ReplicaSpec

LOOPBACK = "127.0.0.1"
GRACE_PERIOD_S = 30
Report = Callable[[dict[str, Any]], None]


def bind_loopback(port: int = 0) -> socket.socket:
    # proto must be IPPROTO_TCP: asyncio sets TCP_NODELAY on accepted sockets only then, and
    # without it a keep-alive response written in two parts waits ~40 ms for a delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((LOOPBACK, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def fd_reporter(fd: int) -> Report:
    """Reports as single JSON lines; one ``os.write`` under PIPE_BUF is atomic on a shared pipe."""

    def report(event: dict[str, Any]) -> None:
        os.write(fd, (json.dumps(event) + "\n").encode())

    return report


def redirect_output(log_path: str | None) -> None:
    """Send this process's stdout and stderr to the log file (or nowhere)."""
    target = os.open(log_path or os.devnull, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(target, 1)
    os.dup2(target, 2)
    os.close(target)


@dataclass
class PreparedServer:
    """A kserve ModelServer and its REST application, built but not serving and with no model.

    The zygote builds one while warm (FastAPI routes, exception handlers and uvicorn's protocol
    classes take ~160 ms to set up), so a forked replica only registers its model and serves.
    """

    server: Any
    config: Any


def prepare_server() -> PreparedServer:
    import kserve
    from kserve.constants.constants import FASTAPI_APP_IMPORT_STRING
    from kserve.protocol.rest.server import RESTServer

    # The port is a placeholder: serving happens on the socket given to ``serve``.
    server = kserve.ModelServer(
        http_port=0, enable_grpc=False, workers=1, enable_latency_logging=False
    )
    rest = RESTServer(
        FASTAPI_APP_IMPORT_STRING,
        server.dataplane,
        server.model_repository_extension,
        0,
        grace_period=GRACE_PERIOD_S,
    )
    rest.config.host = LOOPBACK  # for its logs; the socket we pass is what binds
    rest.create_application()
    rest.config.load()
    return PreparedServer(server=server, config=rest.config)


def serve(
    spec: ReplicaSpec,
    sock: socket.socket,
    report: Report,
    prepared: PreparedServer | None = None,
) -> None:
    """Load the spec's model and serve it on ``sock`` until SIGTERM/SIGINT (uvicorn's drain)."""
    os.environ.update(spec.env_dict())
    sys.argv = [f"replica-{spec.model_name}", *spec.args]

    import uvicorn

    from autoscaler.runtime.predictors import build_model

    if prepared is None:
        prepared = prepare_server()
    model = build_model(spec)
    prepared.server.register_model(model)
    prepared.config.port = sock.getsockname()[1]
    uv = uvicorn.Server(prepared.config)
    report({"event": "bound", "pid": os.getpid(), "port": prepared.config.port})
    asyncio.run(uv.serve(sockets=[sock]))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autoscaler.runtime.replica_main")
    parser.add_argument("--spec", required=True, help="ReplicaSpec as JSON")
    parser.add_argument("--port", type=int, default=0, help="loopback port; 0 lets the kernel pick")
    parser.add_argument("--log", default=None, help="file for the model server's logs")
    parser.add_argument(
        "--die-with-parent", action="store_true", help="get SIGKILL when the parent process dies"
    )
    args = parser.parse_args(argv)
    spec = ReplicaSpec.from_json(args.spec)
    if args.die_with_parent:
        from autoscaler.runtime.zygote import die_with_parent

        die_with_parent()
    control = os.dup(1)
    redirect_output(args.log)
    # Before kserve is imported: its module-level parser must not see our flags.
    sys.argv = [sys.argv[0]]
    report = fd_reporter(control)
    try:
        sock = bind_loopback(args.port)
        serve(spec, sock, report)
    except Exception as exc:
        report({"event": "failed", "pid": os.getpid(), "error": f"{type(exc).__name__}: {exc}"})
        raise
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
