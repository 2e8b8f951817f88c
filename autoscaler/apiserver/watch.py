"""Watch streams: newline-delimited JSON events ``{"type", "object"}`` over a chunked response.

Semantics follow k8s.io/apiserver (cacher and watch handler): from resourceVersion ``R`` every
later change is delivered in order; with ``R`` unset or ``"0"`` (or ``sendInitialEvents=true``)
the current objects come first as ADDED; a version older than the retained history ends the
stream with an ERROR event carrying a 410 Expired Status; ``allowWatchBookmarks`` adds
BOOKMARK events while the stream is idle; ``timeoutSeconds`` ends the stream. Objects leaving
or entering a label or field selector arrive as DELETED or ADDED.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from autoscaler.apiserver.codec import dumps
from autoscaler.apiserver.errors import expired
from autoscaler.apiserver.registry import ResourceType
from autoscaler.apiserver.selectors import Predicate
from autoscaler.apiserver.store import Expired, Store, Watcher

Encode = Callable[[str, dict[str, Any], bool], bytes]  # (type, stored object, first) -> line


@dataclass(frozen=True)
class WatchRequest:
    rt: ResourceType
    namespace: str | None
    match: Predicate
    resource_version: str
    bookmarks: bool
    timeout_s: float
    initial_events: bool | None  # sendInitialEvents
    bookmark_interval_s: float


async def serve_watch(
    request: web.Request,
    store: Store,
    wr: WatchRequest,
    encode: Encode,
    stopping: asyncio.Event,
) -> web.StreamResponse:
    resp = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    watcher = Watcher(wr.rt.storage, wr.namespace, wr.match)
    store.subscribe(watcher)  # subscribe and snapshot with no await between: no gap, no repeat
    first = True
    try:
        backlog: list[tuple[str, dict[str, Any], int]] = []
        rv = wr.resource_version
        initial = wr.initial_events if wr.initial_events is not None else rv in ("", "0")
        if initial:
            for _key, obj, _text in store.items(wr.rt.storage, wr.namespace):
                if wr.match(obj):
                    backlog.append(("ADDED", obj, store.rv))
        if rv not in ("", "0"):
            try:
                start = int(rv)
            except ValueError:
                start = -1
            try:
                if start < 0:
                    raise Expired(start, store.compacted + 1)
                if not initial:
                    replay = Watcher(wr.rt.storage, wr.namespace, wr.match)
                    for ch in store.since(wr.rt.storage, start):
                        replay.offer(ch)
                    while not replay.queue.empty():
                        backlog.append(replay.queue.get_nowait())
            except Expired as exc:
                err = expired(str(exc)).status()
                await resp.write(dumps({"type": "ERROR", "object": err}) + b"\n")
                return resp
        chunks = []
        for typ, obj, _rv in backlog:
            chunks.append(encode(typ, obj, first))
            first = False
        if wr.initial_events:
            mark = {
                "kind": wr.rt.kind,
                "apiVersion": wr.rt.api_version,
                "metadata": {
                    "resourceVersion": str(store.rv),
                    "annotations": {"k8s.io/initial-events-end": "true"},
                },
            }
            chunks.append(dumps({"type": "BOOKMARK", "object": mark}) + b"\n")
        if chunks:
            await resp.write(b"".join(chunks))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wr.timeout_s
        next_mark = loop.time() + wr.bookmark_interval_s
        while not stopping.is_set():
            now = loop.time()
            if now >= deadline:
                break
            wait = min(deadline - now, 1.0)
            if wr.bookmarks:
                wait = min(wait, max(0.0, next_mark - now))
            try:
                item = await asyncio.wait_for(watcher.queue.get(), timeout=wait)
            except TimeoutError:
                transport = request.transport
                if transport is None or transport.is_closing():
                    break
                if wr.bookmarks and loop.time() >= next_mark:
                    mark = {
                        "kind": wr.rt.kind,
                        "apiVersion": wr.rt.api_version,
                        "metadata": {"resourceVersion": str(store.rv)},
                    }
                    await resp.write(dumps({"type": "BOOKMARK", "object": mark}) + b"\n")
                    next_mark = loop.time() + wr.bookmark_interval_s
                continue
            items = [item]
            while not watcher.queue.empty():
                items.append(watcher.queue.get_nowait())
            out = []
            for typ, obj, _rv in items:
                out.append(encode(typ, obj, first))
                first = False
            await resp.write(b"".join(out))
            next_mark = loop.time() + wr.bookmark_interval_s
    except ConnectionResetError:
        pass  # the client went away
    finally:
        store.unsubscribe(watcher)
    return resp
