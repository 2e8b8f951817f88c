"""``GET /api/v1/namespaces/{ns}/pods/{name}/log``: a container's log, as ``kubectl logs`` reads it.

The API server stores Pods; what runs them (one-machine mode's replica processes) says where a
container's log is through ``LogSource``. The options follow upstream's ``PodLogOptions`` and its
checks (k8s.io/kubernetes/pkg/registry/core/pod: a container must be named when the Pod has more
than one, a name the Pod does not have is a 400 naming it): ``container``, ``tailLines``,
``limitBytes`` and ``follow`` (the log as it grows, until the Pod is gone). ``previous`` is a 400:
a replica that exits is replaced by a new Pod, so no container has a previous instance.
``timestamps``, ``sinceSeconds`` and ``sinceTime`` are accepted and not applied (the log file
has no per-line times). Without a source, or for a container with no log file, the log is empty.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from autoscaler.apiserver.errors import Cause, bad_request, invalid

# (namespace, pod, container) -> the container's log file, or None (no log)
LogSource = Callable[[str, str, str], Path | None]
FOLLOW_POLL_S = 0.2
CHUNK = 64 * 1024


@dataclass(frozen=True)
class LogOptions:
    container: str
    tail_lines: int | None
    limit_bytes: int | None
    follow: bool


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
    if q.get("previous") in ("true", "1"):
        raise bad_request(f'previous terminated container "{container}" in pod "{name}" not found')
    return LogOptions(
        container=container,
        tail_lines=_non_negative(q, "tailLines", 0),
        limit_bytes=_non_negative(q, "limitBytes", 1),
        follow=q.get("follow") in ("true", "1"),
    )


def read_log(path: Path | None, tail_lines: int | None) -> tuple[bytes, int]:
    """The log's text (its last ``tail_lines`` lines) and the offset its end was read at."""
    if path is None:
        return b"", 0
    try:
        data = path.read_bytes()
    except OSError:
        return b"", 0
    end = len(data)
    if tail_lines is not None:
        lines = data.splitlines(keepends=True)
        data = b"".join(lines[len(lines) - tail_lines :]) if tail_lines else b""
    return data, end


async def serve(
    request: web.Request,
    path: Path | None,
    opts: LogOptions,
    still_there: Callable[[], bool],
    stopping: asyncio.Event,
) -> web.StreamResponse:
    """The log as text/plain; with ``follow``, what the file gains until the Pod is gone."""
    data, offset = read_log(path, opts.tail_lines)
    budget = opts.limit_bytes
    if budget is not None:
        data = data[:budget]
        budget -= len(data)
    if not opts.follow:
        return web.Response(body=data, content_type="text/plain")
    resp = web.StreamResponse(headers={"Content-Type": "text/plain"})
    await resp.prepare(request)
    await resp.write(data)
    while (budget is None or budget > 0) and still_there() and not stopping.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), FOLLOW_POLL_S)
        chunk = _read_from(path, offset)
        if chunk:
            offset += len(chunk)
            if budget is not None:
                chunk = chunk[:budget]
                budget -= len(chunk)
            await resp.write(chunk)
    # the rest written before the Pod went
    chunk = _read_from(path, offset)
    if chunk and (budget is None or budget > 0):
        await resp.write(chunk if budget is None else chunk[:budget])
    await resp.write_eof()
    return resp


def _read_from(path: Path | None, offset: int) -> bytes:
    if path is None:
        return b""
    try:
        with open(path, "rb") as f:
            if os.fstat(f.fileno()).st_size <= offset:
                return b""
            f.seek(offset)
            return f.read(CHUNK)
    except OSError:
        return b""
