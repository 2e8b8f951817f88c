"""``GET /api/v1/namespaces/{ns}/pods/{name}/log``: a container's log, as ``kubectl logs`` reads it.

The API server stores Pods; what runs them (one-machine mode's replica processes) says where a
container's log is through ``LogSource``, for each run of the container (a container restarted
in its Pod logs each run apart, as the kubelet's ``<restartCount>.log`` files). The options follow
upstream's ``PodLogOptions`` and its checks (k8s.io/kubernetes/pkg/registry/core/pod: a container
must be named when the Pod has more than one, a name the Pod does not have is a 400 naming it):
``container``, ``tailLines``, ``limitBytes``, ``follow`` (the log as it grows, until the run
ends or the Pod is gone) and ``previous``. Which run is read follows the Pod's status as the
kubelet reads it (pkg/kubelet/kubelet_pods.go, validateContainerLogStatus): the current run, or
the one that ended while the container waits to restart; with ``previous``, the run
``lastState.terminated`` tells of, and a 400 ``previous terminated container "C" in pod "P" not
found`` when there is none. ``timestamps``, ``sinceSeconds`` and ``sinceTime`` are accepted and not
applied (the log file has no per-line times). Without a source, or for a run with no log file,
the log is empty.

A replica's log grows with its traffic and this server shares the data plane's event loop, so the
file is read off the loop, in chunks, and only as far as asked: ``tailLines`` from the end back
(a newline ends a line), ``limitBytes`` no further than the limit; ``follow`` sends all the file
has gained at each poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from aiohttp import web

from autoscaler.apiserver.errors import Cause, bad_request, invalid

# (namespace, pod, container, run: the restart count of the container's run) -> that run's log
# file, or None (no log)
LogSource = Callable[[str, str, str, int], Path | None]
FOLLOW_POLL_S = 0.2
CHUNK = 1024 * 1024  # the most read at once
TAIL_BLOCK = 64 * 1024  # read back from the end in blocks this big to find the tail


@dataclass(frozen=True)
class LogOptions:
    container: str
    tail_lines: int | None
    limit_bytes: int | None
    follow: bool
    run: int = 0  # the restart count of the container's run whose log is read


def _non_negative(q: Any, name: str, minimum: int) -> int | None:
    raw = q.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise bad_request(f'{name}: Invalid value: "{raw}": must be an integer') from None
    if value < minimum:
        which = "greater than or equal to 0" if minimum == 0 else "greater than 0"
        raise invalid(
            "PodLogOptions", "", "", [Cause(name, f"Invalid value: {value}: must be {which}")]
        )
    return value


def options(pod: dict[str, Any], q: Any) -> LogOptions:
    """The request's options, checked against ``pod`` as upstream checks them."""
    name = (pod.get("metadata") or {}).get("name", "")
    containers = [str(c.get("name", "")) for c in (pod.get("spec") or {}).get("containers") or []]
    containers += [
        str(c.get("name", "")) for c in (pod.get("spec") or {}).get("initContainers") or []
    ]
    container = q.get("container", "")
    if not container:
        if len(containers) == 1:
            container = containers[0]
        elif not containers:
            raise bad_request(f"a container name must be specified for pod {name}")
        else:
            raise bad_request(
                f"a container name must be specified for pod {name}, "
                f"choose one of: [{' '.join(containers)}]"
            )
    elif container not in containers:
        raise bad_request(f"container {container} is not valid for pod {name}")
    return LogOptions(
        container=container,
        tail_lines=_non_negative(q, "tailLines", 0),
        limit_bytes=_non_negative(q, "limitBytes", 1),
        follow=q.get("follow") in ("true", "1"),
        run=log_run(pod, container, q.get("previous") in ("true", "1")),
    )


def _container_status(pod: dict[str, Any], container: str) -> dict[str, Any]:
    status = pod.get("status") or {}
    for c in (status.get("containerStatuses") or []) + (status.get("initContainerStatuses") or []):
        if c.get("name") == container:
            return dict(c)
    return {}


def _has_ended_run(c: dict[str, Any]) -> bool:
    return bool((c.get("lastState") or {}).get("terminated"))


def log_run(pod: dict[str, Any], container: str, previous: bool) -> int:
    """The run of ``container`` whose log is read, as its restart count: the current one (the
    container status's ``restartCount``: while the container waits to restart, that is the run
    that ended); with ``previous``, the run ``lastState.terminated`` tells of, which is the one
    before a current run and the ended one itself while the container waits. A 400 when the
    status tells of no ended run."""
    c = _container_status(pod, container)
    count = int(c.get("restartCount") or 0)
    if not previous:
        return count
    if not _has_ended_run(c):
        name = (pod.get("metadata") or {}).get("name", "")
        raise bad_request(f'previous terminated container "{container}" in pod "{name}" not found')
    return count if "waiting" in (c.get("state") or {}) else count - 1


def run_ended(pod: dict[str, Any], container: str, run: int) -> bool:
    """Whether the container's run ``run`` has ended by ``pod``'s status (a later run started,
    or the container has terminated, or waits to restart): a followed log ends with it."""
    c = _container_status(pod, container)
    count = int(c.get("restartCount") or 0)
    state = c.get("state") or {}
    if count != run:
        return count > run
    return "terminated" in state or ("waiting" in state and _has_ended_run(c))


def log_span(path: Path | None, tail_lines: int | None) -> tuple[int, int]:
    """Where the log's text starts (its last ``tail_lines`` lines) and the offset its end was
    read at. Only the end is read: back from it in blocks until enough lines are found.
    Blocking; run off the event loop."""
    if path is None:
        return 0, 0
    try:
        with open(path, "rb") as f:
            end = os.fstat(f.fileno()).st_size
            if tail_lines is None:
                return 0, end
            if tail_lines == 0:
                return end, end
            return _tail_start(f, end, tail_lines), end
    except OSError:
        return 0, 0


def _tail_start(f: BinaryIO, end: int, lines: int) -> int:
    """The offset of the first of the last ``lines`` lines of ``f[:end]``; a newline ends a line,
    and a last line without one is a line."""
    # the byte before the end ends the last line whatever it is, so the search starts before it
    pos = end - 1
    while pos > 0:
        block = min(TAIL_BLOCK, pos)
        f.seek(pos - block)
        data = f.read(block)
        if len(data) < block:  # the file shrank under us
            return 0
        i = len(data)
        while True:
            i = data.rfind(b"\n", 0, i)
            if i < 0:
                break
            lines -= 1
            if lines == 0:
                return pos - block + i + 1
        pos -= block
    return 0


def read_chunk(path: Path | None, offset: int, size: int) -> bytes:
    """Up to ``size`` bytes of the log from ``offset``; nothing if it has no more. Blocking; run
    off the event loop."""
    if path is None or size <= 0:
        return b""
    try:
        with open(path, "rb") as f:
            if os.fstat(f.fileno()).st_size <= offset:
                return b""
            f.seek(offset)
            return f.read(size)
    except OSError:
        return b""


async def _copy(
    resp: web.StreamResponse, path: Path | None, offset: int, end: int | None, budget: int | None
) -> tuple[int, int | None]:
    """Write the log from ``offset`` to ``end`` (to what it has, without one) in chunks read off
    the loop, at most ``budget`` bytes; the offset reached and the budget left."""
    while budget is None or budget > 0:
        size = CHUNK if end is None else min(CHUNK, end - offset)
        if budget is not None:
            size = min(size, budget)
        chunk = await asyncio.to_thread(read_chunk, path, offset, size)
        if not chunk:
            break
        offset += len(chunk)
        if budget is not None:
            budget -= len(chunk)
        await resp.write(chunk)
        if len(chunk) < size:  # caught up with the file
            break
    return offset, budget


async def serve(
    request: web.Request,
    path: Path | None,
    opts: LogOptions,
    still_there: Callable[[], bool],
    stopping: asyncio.Event,
) -> web.StreamResponse:
    """The log as text/plain, streamed in chunks read off the event loop (a replica's log can be
    big); with ``follow``, what the file gains while ``still_there`` (the Pod is there and the
    run goes on)."""
    start, end = await asyncio.to_thread(log_span, path, opts.tail_lines)
    resp = web.StreamResponse(headers={"Content-Type": "text/plain"})
    await resp.prepare(request)
    offset, budget = await _copy(resp, path, start, end, opts.limit_bytes)
    if opts.follow:
        offset = max(offset, end)  # a limit met before the end: nothing more is written anyway
        while (budget is None or budget > 0) and still_there() and not stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), FOLLOW_POLL_S)
            # all the log has gained, so a fast-growing log does not leave the stream behind
            offset, budget = await _copy(resp, path, offset, None, budget)
        # the rest written before the Pod went
        offset, budget = await _copy(resp, path, offset, None, budget)
    await resp.write_eof()
    return resp
