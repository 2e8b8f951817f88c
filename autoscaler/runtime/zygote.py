"""A warm process that forks replicas: kserve, FastAPI, uvicorn and scikit-learn already imported.

Cold start of a replica is dominated by ``import kserve`` (1.2 to 2 s here). The zygote pays it
once; each replica is then a ``fork()`` that only loads its model and starts serving, with the
imported modules shared copy-on-write.

Protocol, JSON lines. The runtime writes to the zygote's stdin:
``{"op": "spawn", "token": T, "spec": {...}, "log": PATH|null}``.
The zygote and its children write to the zygote's stdout (one ``os.write`` per line, atomic on a
pipe): ``{"event": "ready"}`` once warm, ``{"event": "spawned", "token", "pid"}``,
``{"event": "bound", "token", "pid", "port"}`` from the child, ``{"event": "failed", "token", "pid",
"error"}`` when the child could not start, and ``{"event": "exited", "pid", "returncode"}`` when
a child ends (negative: killed by that signal). When its stdin closes (the runtime is gone) the
zygote kills its children and exits; children die with the zygote (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import importlib
import json
import os
import select
import signal
import sys
import traceback
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from autoscaler.runtime.replica_main import PreparedServer

PR_SET_PDEATHSIG = 1
# What a replica would otherwise import after fork: the sklearn predictor's joblib and the
# estimator families a model.joblib commonly holds (each import costs a replica 70-200 ms).
DEFAULT_PRELOAD = (
    "joblib",
    "sklearn",
    "sklearn.svm",
    "sklearn.linear_model",
    "sklearn.tree",
    "sklearn.ensemble",
    "sklearn.neighbors",
    "sklearn.pipeline",
    "sklearn.preprocessing",
    "autoscaler.examples.capacity",
)


def die_with_parent() -> None:
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _preload(modules: Sequence[str]) -> PreparedServer:
    # kserve reads sys.argv at import: give it a clean one.
    sys.argv = [sys.argv[0]]
    import kserve
    import kserve.protocol.rest.server  # noqa: F401
    import uvicorn  # noqa: F401

    import autoscaler.runtime.predictors  # noqa: F401
    from autoscaler.runtime.replica_main import prepare_server

    for name in (*DEFAULT_PRELOAD, *modules):
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    return prepare_server()


def _child(
    request: dict[str, Any], control: int, closing: Sequence[int], prepared: PreparedServer
) -> None:  # pragma: no cover - runs after fork
    from autoscaler.runtime.replica_main import bind_loopback, fd_reporter, redirect_output, serve
    from autoscaler.runtime.spec import ReplicaSpec

    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    for fd in closing:
        with contextlib.suppress(OSError):
            os.close(fd)
    die_with_parent()
    token = request.get("token")
    base = fd_reporter(control)

    def report(event: dict[str, Any]) -> None:
        base({**event, "token": token})

    code = 0
    try:
        redirect_output(request.get("log"))
        spec = ReplicaSpec.from_json(json.dumps(request["spec"]))
        serve(spec, bind_loopback(), report, prepared)
    except BaseException as exc:
        # The whole story goes to the replica's log (stderr is it, once redirected); the
        # runtime only hears the one line.
        with contextlib.suppress(BaseException):
            traceback.print_exc()
            sys.stderr.flush()
        report({"event": "failed", "pid": os.getpid(), "error": f"{type(exc).__name__}: {exc}"})
        code = 1
    os._exit(code)


def run(preload: Sequence[str]) -> int:
    die_with_parent()
    prepared = _preload(preload)
    control = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # stray prints must not corrupt the protocol
    os.close(devnull)
    report = lambda event: os.write(control, (json.dumps(event) + "\n").encode())  # noqa: E731
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    os.set_blocking(wake_r, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    stdin = sys.stdin.fileno()
    children: set[int] = set()
    report({"event": "ready", "pid": os.getpid()})
    buf = b""
    while True:
        readable, _, _ = select.select([stdin, wake_r], [], [])
        if wake_r in readable:
            with contextlib.suppress(BlockingIOError):
                os.read(wake_r, 4096)
            while children:
                try:
                    pid, status = os.waitpid(-1, os.WNOHANG)
                except ChildProcessError:
                    break
                if pid == 0:
                    break
                children.discard(pid)
                report({"event": "exited", "pid": pid, "returncode": _returncode(status)})
        if stdin in readable:
            chunk = os.read(stdin, 65536)
            if not chunk:
                break
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                if not line.strip():
                    continue
                request = json.loads(line)
                if request.get("op") != "spawn":
                    continue
                pid = os.fork()
                if pid == 0:
                    _child(request, control, (stdin, wake_r, wake_w), prepared)
                children.add(pid)
                report({"event": "spawned", "token": request.get("token"), "pid": pid})
    for pid in children:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return 0


def _returncode(status: int) -> int:
    if os.WIFSIGNALED(status):
        return -os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autoscaler.runtime.zygote")
    parser.add_argument(
        "--preload", action="append", default=[], help="extra module to import while warm"
    )
    args = parser.parse_args(argv)
    return run(args.preload)


if __name__ == "__main__":
    raise SystemExit(main())
