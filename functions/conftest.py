"""Fixtures shared by the Knative Functions' tests: a real KServe model server.

``json_error`` checks a function's JSON answer to a method or path it does not take.
``kserve_iris`` starts the one-machine replica entry point (``autoscaler.runtime.replica_main``,
one KServe model server bound to 127.0.0.1) serving the scikit-learn iris classifier built by
``autoscaler.examples.build``, once per test session, and stops it at the end.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

START_DEADLINE_S = 60.0


@dataclass(frozen=True)
class ModelServer:
    url: str  # http://127.0.0.1:<port>
    model: str


@pytest.fixture(scope="session")
def kserve_iris(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModelServer]:
    from autoscaler.examples.build import build_iris

    out = tmp_path_factory.mktemp("models")
    model_path, _ = build_iris(out)
    spec = {
        "namespace": "models",
        "revision": "iris-00001",
        "model_name": "iris",
        "predictor": "sklearn",
        "storage_uri": str(model_path.parent),
    }
    log = out / "replica.log"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "autoscaler.runtime.replica_main",
            "--spec",
            json.dumps(spec),
            "--log",
            str(log),
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        bound = json.loads(line) if line else {}
        if bound.get("event") != "bound":
            raise RuntimeError(
                f"replica did not start: {line!r}; log: {log.read_text() if log.exists() else ''}"
            )
        server = ModelServer(url=f"http://127.0.0.1:{bound['port']}", model="iris")
        _wait_ready(server, process)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_ready(server: ModelServer, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + START_DEADLINE_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"replica exited with {process.returncode}")
        try:
            with urllib.request.urlopen(
                f"{server.url}/v2/models/{server.model}/ready", timeout=2
            ) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)  # polling a condition with a deadline, not synchronising on time
    raise RuntimeError(f"model server at {server.url} not ready within {START_DEADLINE_S} s")


def _check_json_error(answer: Any, status: int, error: str, allows: str | None) -> None:
    """``answer`` (a flask test response) is ``status`` in JSON whose error starts with
    ``error``; for a method not allowed, the ``Allow`` header has ``allows`` and the error ends
    with what it allows."""
    assert answer.status_code == status
    assert answer.mimetype == "application/json"
    body = answer.get_json()
    assert body["error"].startswith(error)
    if allows is None:
        assert "Allow" not in answer.headers
    else:
        allowed = answer.headers["Allow"]
        assert allows in allowed.split(", ")
        assert body["error"] == f"{error}; allowed: {allowed}"


@pytest.fixture
def json_error() -> Callable[[Any, int, str, str | None], None]:
    return _check_json_error
