"""The pods/log subresource (what ``kubectl logs`` reads) and kubectl's Pod and Deployment
columns."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from autoscaler.apiserver.tables import pod_status_text
from autoscaler.apiserver.testing import RunningAPIServer

from .conftest import Raw

NS = "logs"


def pod(name: str, *containers: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"containers": [{"name": c, "image": "x"} for c in containers]},
    }


@pytest.fixture
def logs(server: RunningAPIServer, raw: Raw, tmp_path: Path) -> Iterator[Path]:
    """``tmp_path/<pod>.<container>.log`` is each container's first run's log, and
    ``<pod>.<container>.<n>.log`` that of its restart ``n``."""
    raw("POST", "/api/v1/namespaces", json={"metadata": {"name": NS}})
    server.server.log_source = lambda ns, name, c, n: (
        tmp_path / (f"{name}.{c}.log" if n == 0 else f"{name}.{c}.{n}.log")
    )
    try:
        yield tmp_path
    finally:
        server.server.log_source = None


def log_url(name: str, query: str = "") -> str:
    return f"/api/v1/namespaces/{NS}/pods/{name}/log{query}"


def test_a_containers_log_with_its_options(raw: Raw, logs: Path) -> None:
    created = raw("POST", f"/api/v1/namespaces/{NS}/pods", json=pod("one", "app"))
    assert created.status_code == 201
    assert created.json()["status"] == {"phase": "Pending"}  # as a new Pod starts, upstream
    (logs / "one.app.log").write_text("a\nb\nc\n")
    whole = raw("GET", log_url("one"))  # the only container needs no name
    assert (whole.status_code, whole.text) == (200, "a\nb\nc\n")
    assert whole.headers["Content-Type"].startswith("text/plain")
    assert raw("GET", log_url("one", "?container=app&tailLines=2")).text == "b\nc\n"
    assert raw("GET", log_url("one", "?tailLines=0")).text == ""
    assert raw("GET", log_url("one", "?limitBytes=3")).text == "a\nb"
    bad = raw("GET", log_url("one", "?tailLines=-1"))
    assert bad.status_code == 422 and "tailLines" in bad.json()["message"]


def test_unknown_pods_and_containers_are_refused_as_upstream(raw: Raw, logs: Path) -> None:
    assert (
        raw("POST", f"/api/v1/namespaces/{NS}/pods", json=pod("two", "a", "b")).status_code == 201
    )
    missing = raw("GET", log_url("nope"))
    assert missing.status_code == 404
    assert missing.json()["kind"] == "Status" and missing.json()["reason"] == "NotFound"
    unnamed = raw("GET", log_url("two"))
    assert unnamed.status_code == 400
    assert unnamed.json()["message"] == (
        "a container name must be specified for pod two, choose one of: [a b]"
    )
    wrong = raw("GET", log_url("two", "?container=c"))
    assert (wrong.status_code, wrong.json()["message"]) == (
        400,
        "container c is not valid for pod two",
    )
    assert raw("GET", log_url("two", "?container=b")).text == ""  # no log file yet
    assert raw("POST", log_url("two")).status_code == 405


def test_follow_streams_what_the_log_gains_until_the_pod_is_gone(raw: Raw, logs: Path) -> None:
    assert raw("POST", f"/api/v1/namespaces/{NS}/pods", json=pod("three", "app")).status_code == 201
    path = logs / "three.app.log"
    path.write_text("first\n")
    with raw("GET", log_url("three", "?follow=true"), stream=True) as resp:
        lines = resp.iter_lines()
        assert next(lines) == b"first"
        with path.open("a") as f:
            f.write("second\n")
        assert next(lines) == b"second"
        assert raw("DELETE", f"/api/v1/namespaces/{NS}/pods/three").status_code == 200
        assert list(lines) == []  # the stream ends with the Pod


def container_status(restarts: int, state: dict[str, Any], ended: bool) -> dict[str, Any]:
    last = {"terminated": {"exitCode": 137, "reason": "Error"}} if ended else {}
    return {"name": "app", "restartCount": restarts, "state": state, "lastState": last}


RUNNING = {"running": {"startedAt": "2024-01-01T00:00:00Z"}}
BACKING_OFF = {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 10s ..."}}


@pytest.mark.parametrize(
    ("status", "current", "previous"),
    [
        (None, "run 0", None),  # no status yet: the first run, no previous one
        (container_status(0, RUNNING, False), "run 0", None),
        # crashed and waiting to restart: both read the run that ended
        (container_status(0, BACKING_OFF, True), "run 0", "run 0"),
        (container_status(1, RUNNING, True), "run 1", "run 0"),  # restarted
        (container_status(1, BACKING_OFF, True), "run 1", "run 1"),
        # crashed, restarting at once: the run that ended is current, the one before previous
        (container_status(1, {"terminated": {"exitCode": 1}}, True), "run 1", "run 0"),
        (container_status(2, RUNNING, True), "run 2", "run 1"),
    ],
    ids=["new", "running", "backoff", "restarted", "backoff-again", "ended", "restarted-again"],
)
def test_previous_reads_the_run_lastState_tells_of(
    raw: Raw,
    logs: Path,
    request: pytest.FixtureRequest,
    status: dict[str, Any] | None,
    current: str,
    previous: str | None,
) -> None:
    """As the kubelet picks a container's run from the Pod's status: the current run (the one
    that ended, while the container waits to restart), and with ``previous`` the run
    ``lastState.terminated`` tells of; without one, upstream's 400."""
    name = f"four-{request.node.callspec.id}"
    body = pod(name, "app")
    assert raw("POST", f"/api/v1/namespaces/{NS}/pods", json=body).status_code == 201
    for n in range(3):
        (logs / (f"{name}.app.log" if n == 0 else f"{name}.app.{n}.log")).write_text(f"run {n}\n")
    if status is not None:
        put = raw(
            "PUT",
            f"/api/v1/namespaces/{NS}/pods/{name}/status",
            json={**body, "status": {"phase": "Running", "containerStatuses": [status]}},
        )
        assert put.status_code == 200, put.text
    assert raw("GET", log_url(name)).text == f"{current}\n"
    got = raw("GET", log_url(name, "?previous=true"))
    if previous is None:
        assert (got.status_code, got.json()["reason"], got.json()["message"]) == (
            400,
            "BadRequest",
            f'previous terminated container "app" in pod "{name}" not found',
        )
    else:
        assert (got.status_code, got.text) == (200, f"{previous}\n")


def test_follow_ends_with_the_run(raw: Raw, logs: Path) -> None:
    """A followed log ends when its run does (the container crashed: it waits to restart), as
    the kubelet stops following a container that is no longer running; the Pod stays."""
    body = pod("five", "app")
    assert raw("POST", f"/api/v1/namespaces/{NS}/pods", json=body).status_code == 201

    def show(status: dict[str, Any]) -> None:
        full = {"phase": "Running", "containerStatuses": [status]}
        put = raw("PUT", f"/api/v1/namespaces/{NS}/pods/five/status", json={**body, "status": full})
        assert put.status_code == 200, put.text

    show(container_status(0, RUNNING, False))
    (logs / "five.app.log").write_text("loading\n")
    with raw("GET", log_url("five", "?follow=true"), stream=True) as resp:
        lines = resp.iter_lines()
        assert next(lines) == b"loading"
        with (logs / "five.app.log").open("a") as f:
            f.write("Traceback ...\n")
        assert next(lines) == b"Traceback ..."
        show(container_status(0, BACKING_OFF, True))
        assert list(lines) == []  # the stream ends with the run
    assert raw("GET", f"/api/v1/namespaces/{NS}/pods/five").status_code == 200


class LoopGaps:
    """The longest the server's event loop went without running a task that wakes every 5 ms."""

    def __init__(self, server: RunningAPIServer) -> None:
        self.worst = 0.0
        self._stop = asyncio.Event()
        self._done = asyncio.run_coroutine_threadsafe(self._beat(), server.loop)
        self._server = server

    async def _beat(self) -> None:
        last = time.perf_counter()
        while not self._stop.is_set():
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            self.worst = max(self.worst, now - last - 0.005)
            last = now

    def close(self) -> None:
        self._server.loop.call_soon_threadsafe(self._stop.set)
        self._done.result(5)


def test_a_big_log_is_read_off_the_event_loop(
    server: RunningAPIServer, raw: Raw, logs: Path
) -> None:
    """A replica's log grows with its traffic; reading it must not stall the loop the data plane
    shares: the tail is found from the end, a limit reads no more than it, the whole log is
    streamed in chunks."""
    assert raw("POST", f"/api/v1/namespaces/{NS}/pods", json=pod("big", "app")).status_code == 201
    line = b'INFO:     127.0.0.1:5555 - "POST /v1/models/m:predict HTTP/1.1" 200 OK\n'
    path = logs / "big.app.log"
    with path.open("wb") as f:
        block = line * 10_000
        for _ in range(40 * 1024 * 1024 // len(block)):
            f.write(block)
        f.write(b"".join(b"line %d\n" % i for i in range(6)) + b"unended")
    size = path.stat().st_size
    gaps = LoopGaps(server)
    try:
        tail = raw("GET", log_url("big", "?tailLines=5"))
        assert tail.text == "line 2\nline 3\nline 4\nline 5\nunended"
        assert raw("GET", log_url("big", "?tailLines=2&limitBytes=3")).text == "lin"
        assert raw("GET", log_url("big", "?limitBytes=100")).content == (line * 2)[:100]
        whole = raw("GET", log_url("big"))
        assert len(whole.content) == size and whole.content.endswith(b"line 5\nunended")
    finally:
        gaps.close()
    assert gaps.worst < 0.1, f"the event loop stalled {gaps.worst * 1000:.0f} ms"


def test_follow_keeps_up_with_a_fast_growing_log(raw: Raw, logs: Path) -> None:
    assert raw("POST", f"/api/v1/namespaces/{NS}/pods", json=pod("fast", "app")).status_code == 201
    path = logs / "fast.app.log"
    path.write_bytes(b"")
    gained = b"x" * 1023 + b"\n"
    with raw("GET", log_url("fast", "?follow=true"), stream=True) as resp:
        with path.open("ab") as f:
            f.write(gained * 8 * 1024)  # 8 MB at once
        t0 = time.perf_counter()
        got = 0
        for chunk in resp.iter_content(chunk_size=None):
            got += len(chunk)
            if got >= 8 * 1024 * 1024:
                break
        took = time.perf_counter() - t0
    assert got == 8 * 1024 * 1024
    # read at 64 KB a poll, 8 MB took 25 s
    assert took < 3, f"8 MB followed in {took:.1f} s"


def test_kubectl_columns_of_pods_and_deployments(server: RunningAPIServer, raw: Raw) -> None:
    raw("POST", "/api/v1/namespaces", json={"metadata": {"name": NS}})
    body = pod("web", "app", "sidecar")
    body["spec"]["nodeName"] = "node-1"
    raw("POST", f"/api/v1/namespaces/{NS}/pods", json=body)
    running = {"running": {"startedAt": "2024-01-01T00:00:00Z"}}
    status = {
        "phase": "Running",
        "podIP": "10.0.0.7",
        "containerStatuses": [
            {"name": "app", "ready": True, "restartCount": 2, "state": running},
            {"name": "sidecar", "ready": False, "restartCount": 1, "state": running},
        ],
    }
    put = raw("PUT", f"/api/v1/namespaces/{NS}/pods/web/status", json={**body, "status": status})
    assert put.status_code == 200, put.text
    out = server.kubectl("get", "pod", "web", "-n", NS, "-o", "wide")
    header, row = (line.split() for line in out.stdout.splitlines())
    assert header[:5] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert row[:4] + row[5:7] == ["web", "1/2", "Running", "3", "10.0.0.7", "node-1"]
    deploy = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": NS},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "app", "image": "img:1"}]},
            },
        },
    }
    raw("POST", f"/apis/apps/v1/namespaces/{NS}/deployments", json=deploy)
    counts = {"replicas": 3, "readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}
    put = raw(
        "PUT",
        f"/apis/apps/v1/namespaces/{NS}/deployments/web/status",
        json={**deploy, "status": counts},
    )
    assert put.status_code == 200, put.text
    out = server.kubectl("get", "deploy", "web", "-n", NS, "-o", "wide")
    header, row = (line.split() for line in out.stdout.splitlines())
    assert header == [
        "NAME",
        "READY",
        "UP-TO-DATE",
        "AVAILABLE",
        "AGE",
        "CONTAINERS",
        "IMAGES",
        "SELECTOR",
    ]
    assert row[:4] + row[5:] == ["web", "2/3", "3", "2", "app", "img:1", "app=web"]


@pytest.mark.parametrize(
    ("status", "deleting", "shown"),
    [
        (
            {
                "phase": "Pending",
                "containerStatuses": [{"state": {"waiting": {"reason": "ContainerCreating"}}}],
            },
            False,
            "ContainerCreating",
        ),
        ({"phase": "Pending", "containerStatuses": [{"state": {"running": {}}}]}, False, "Pending"),
        (
            {"phase": "Running", "containerStatuses": [{"ready": True, "state": {"running": {}}}]},
            True,
            "Terminating",
        ),
        (
            {
                "phase": "Running",
                "containerStatuses": [{"state": {"terminated": {"exitCode": 137}}}],
            },
            False,
            "ExitCode:137",
        ),
        (
            {
                "phase": "Pending",
                "initContainerStatuses": [{"state": {"waiting": {"reason": "PodInitializing"}}}],
            },
            False,
            "Init:0/1",
        ),
    ],
)
def test_the_status_column_as_kubectl_works_it_out(
    status: dict[str, Any], deleting: bool, shown: str
) -> None:
    obj: dict[str, Any] = {
        "metadata": {"deletionTimestamp": "2024-01-01T00:00:00Z"} if deleting else {},
        "spec": {"containers": [{"name": "a"}], "initContainers": [{"name": "i"}]},
        "status": status,
    }
    assert pod_status_text(obj)[0] == shown
