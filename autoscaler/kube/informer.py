"""List and watch one resource kind into a local cache (the informer of client-go): a custom
resource, or core/v1 Pods.

One thread per informer lists the kind, then watches from the list's resourceVersion, each
watch going on from the last event delivered (a watch the server ends, or one that fails,
replays nothing); on 410 Gone (the version fell out of the server's history) it lists again and
reports what changed in between, so a handler sees every object's latest state and every
deletion. Errors back off with jitter; after a few failures in a row it lists again, and until
a list or watch works ``is_current`` is False (the cache may be behind). Handlers run on the
informer's thread: hand work to an event loop with ``call_soon_threadsafe``.

As client-go's indexers and transforms: ``index`` files each object under a value of its own
(a Pod under its revision label) so ``indexed`` reads a few objects, not every one in the
namespace; ``transform`` keeps only what is read of each object (a Pod's name, labels, phase and
IP, not its spec), which is what the cache, the index and the handlers get: it must keep
``metadata.name``, ``namespace`` and ``resourceVersion`` and whatever ``index`` reads. Objects
read from the cache are shared: read them, do not change them.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import urllib3
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from .retry import Backoff, is_retryable

log = logging.getLogger(__name__)

Handler = Callable[[str, dict[str, Any]], None]  # ("ADDED" | "MODIFIED" | "DELETED", object)
Key = tuple[str, str]  # (namespace, name)
Index = Callable[[dict[str, Any]], str | None]  # an object's index value (None: not indexed)
Transform = Callable[[dict[str, Any]], dict[str, Any]]
WATCH_BACKOFF = Backoff(base_s=0.2, cap_s=10.0, attempts=1_000_000)
RELIST_AFTER_FAILURES = 3
# a watch's read timeout is the server's end of it plus this: only a silent connection trips it
READ_GRACE_S = 30.0
# a list that answers nothing for this long is hung (a big list still streams bytes within it)
LIST_TIMEOUT_S = 60.0
# connecting (TCP and TLS) to a reachable API server takes milliseconds; this long is a dead one
CONNECT_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Resource:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


PODS = Resource("", "v1", "pods", "Pod")


def key_of(obj: dict[str, Any]) -> Key:
    meta = obj.get("metadata") or {}
    return (meta.get("namespace") or "", meta.get("name") or "")


def timed_out(exc: BaseException) -> bool:
    """Whether the client gave up on a silent connection (a read or connect timeout, also once
    the HTTP library's own retries of it ran out). A refused connection or a name that does not
    resolve is not one (the HTTP library counts them as connect timeouts)."""
    if isinstance(exc, urllib3.exceptions.MaxRetryError) and exc.reason is not None:
        exc = exc.reason
    if isinstance(exc, urllib3.exceptions.NewConnectionError):
        return False
    return isinstance(exc, urllib3.exceptions.TimeoutError)


class Informer:
    def __init__(
        self,
        api_client: client.ApiClient,
        resource: Resource,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        watch_timeout_s: int = 60,
        backoff: Backoff = WATCH_BACKOFF,
        read_grace_s: float = READ_GRACE_S,
        list_timeout_s: float = LIST_TIMEOUT_S,
        connect_timeout_s: float = CONNECT_TIMEOUT_S,
        index: Index | None = None,
        transform: Transform | None = None,
    ) -> None:
        """Every request has a client-side timeout: a connection dropped without a word (a NAT
        or load balancer forgetting it, the server's node gone) would otherwise leave a watch
        or list waiting for ever, the cache behind while ``is_current`` says it follows."""
        self.resource = resource
        if not resource.group and resource.plural != PODS.plural:
            raise ValueError(f"informer of core/v1 {resource.plural}: only pods are served")
        self._api = client.CustomObjectsApi(api_client)
        self._core = client.CoreV1Api(api_client)
        self._namespace = namespace
        self._selector = label_selector
        self._watch_timeout_s = watch_timeout_s
        self._backoff = backoff
        # (connect, read) seconds, the read one bounding each wait for bytes: a live watch sends
        # its end at watch_timeout_s, within it, so only a silent one times out (then watched
        # again like any failed one). The HTTP library retries a GET that times out before its
        # answer begins, on a new connection: with its default 3 retries a hung list takes 4 × it.
        self._watch_request_timeout = (connect_timeout_s, watch_timeout_s + read_grace_s)
        self._list_request_timeout = (connect_timeout_s, list_timeout_s)
        self._handlers: list[Handler] = []
        self._cache: dict[Key, dict[str, Any]] = {}
        self._index_of = index
        self._transform = transform
        # (namespace, index value) -> the objects filed under it, by key; and each key's value
        self._index: dict[tuple[str, str], dict[Key, dict[str, Any]]] = {}
        self._filed: dict[Key, str] = {}
        self._lock = threading.Lock()
        self._synced = threading.Event()
        self._stopped = threading.Event()
        self._watch: watch.Watch | None = None
        self._thread: threading.Thread | None = None
        self.relists = 0  # how often the watch had to start over from a list
        self._rv: str | None = None  # where the next watch goes on from (None: list first)
        # the cache follows the server: listed, and no watch failed since (a watch that keeps
        # failing while lists work, e.g. forbidden, leaves it behind)
        self._current = False
        self.watches = 0  # watch requests made (one per server timeout, from where it ended)

    # --- reading the cache -------------------------------------------------------------
    def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        with self._lock:
            return self._cache.get((namespace, name))

    def indexed(self, namespace: str, value: str) -> list[dict[str, Any]]:
        """The cached objects of ``namespace`` whose index value is ``value``."""
        with self._lock:
            return list(self._index.get((namespace, value), {}).values())

    def list(self, namespace: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [o for (ns, _), o in self._cache.items() if namespace is None or ns == namespace]

    def has_synced(self) -> bool:
        return self._synced.is_set()

    def is_current(self) -> bool:
        """Listed once, and no watch failed since the last list or the last watch event."""
        return self._current and self._synced.is_set()

    def wait_synced(self, timeout_s: float) -> bool:
        return self._synced.wait(timeout_s)

    # --- lifecycle -----------------------------------------------------------------------
    def add_handler(self, handler: Handler) -> None:
        self._handlers.append(handler)

    def start(self) -> None:
        name = f"informer-{self.resource.plural}"
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 2.0) -> None:
        self._stopped.set()
        w = self._watch
        if w is not None:
            w.stop()
            resp = getattr(w, "_resp", None)  # close the open stream so the thread wakes now
            if resp is not None:
                with contextlib.suppress(Exception):  # best effort on shutdown
                    resp.close()
        if self._thread is not None:
            self._thread.join(timeout_s)

    # --- the loop ------------------------------------------------------------------------
    def _list_call(self) -> Callable[..., Any]:
        r, ns = self.resource, self._namespace
        if not r.group:  # core/v1 Pods; the watch reads each event's raw object (a dict)
            if ns:
                return lambda **kw: self._core.list_namespaced_pod(ns, **kw)
            return lambda **kw: self._core.list_pod_for_all_namespaces(**kw)
        if ns and r.namespaced:
            return lambda **kw: self._api.list_namespaced_custom_object(
                r.group, r.version, ns, r.plural, **kw
            )
        return lambda **kw: self._api.list_cluster_custom_object(r.group, r.version, r.plural, **kw)

    def _selector_kw(self) -> dict[str, Any]:
        return {"label_selector": self._selector} if self._selector else {}

    def _run(self) -> None:
        rng = random.Random()
        failures = 0
        while not self._stopped.is_set():
            try:
                if self._rv is None:
                    self._rv = self._relist()
                    self._current = True
                self._watch_from(self._rv)
                self._current = True
                failures = 0
            except ApiException as exc:
                if exc.status == 410:
                    log.info(
                        "watch of %s expired at %s: listing again", self.resource.plural, self._rv
                    )
                    self._rv = None
                    self._current = False  # behind until the list is in
                    continue
                failures += 1
                self._failed(failures)
                self._pause(exc, failures, rng, retryable=is_retryable(exc))
            except Exception as exc:
                if self._stopped.is_set():
                    return
                failures += 1
                self._failed(failures)
                self._pause(exc, failures, rng, retryable=True)

    def _failed(self, failures: int) -> None:
        """A list or watch failed: the cache may fall behind; after a few failures in a row
        the next attempt lists again (a watch refused while lists work still refreshes it)."""
        self._current = False
        if failures % RELIST_AFTER_FAILURES == 0:
            self._rv = None

    def _pause(
        self, exc: BaseException, failures: int, rng: random.Random, retryable: bool
    ) -> None:
        delay = self._backoff.delay_s(min(failures, 10), rng)
        # a timeout is a warning at once: unlike a refusal, the cache may have been behind for
        # the whole timeout while is_current said it followed
        silent = timed_out(exc)
        level = logging.WARNING if failures > 1 or not retryable or silent else logging.INFO
        why = "no answer in time (a dropped connection?): " if silent else ""
        log.log(level, "informer %s: %s%s; again in %.1fs", self.resource.plural, why, exc, delay)
        self._stopped.wait(delay)

    def _relist(self) -> str:
        kw = {"_request_timeout": self._list_request_timeout, **self._selector_kw()}
        if self.resource.group:
            listing = self._list_call()(**kw)
        else:  # the typed client's list, read as the JSON it is
            resp = self._list_call()(_preload_content=False, **kw)
            listing = json.loads(resp.data)
        fresh = {}
        for obj in listing.get("items") or []:
            obj.setdefault("apiVersion", self.resource.api_version)
            obj.setdefault("kind", self.resource.kind)
            fresh[key_of(obj)] = self._kept(obj)
        with self._lock:
            old = self._cache
            self._cache = dict(fresh)
            self._index, self._filed = {}, {}
            for key, obj in fresh.items():
                self._file(key, obj)
        self.relists += 1
        rv = str((listing.get("metadata") or {}).get("resourceVersion") or "")
        if self._stopped.is_set():  # a list that ended after stop(): tell no handler
            return rv
        for key, obj in old.items():
            if key not in fresh:
                self._dispatch("DELETED", obj)
        for key, obj in fresh.items():
            prev = old.get(key)
            if prev is None:
                self._dispatch("ADDED", obj)
            elif prev["metadata"].get("resourceVersion") != obj["metadata"].get("resourceVersion"):
                self._dispatch("MODIFIED", obj)
        self._synced.set()
        return rv

    def _watch_from(self, rv: str) -> None:
        w = watch.Watch()
        self._watch = w
        self.watches += 1
        try:
            for event in w.stream(
                self._list_call(),
                resource_version=rv,
                allow_watch_bookmarks=True,
                timeout_seconds=self._watch_timeout_s,
                _request_timeout=self._watch_request_timeout,
                **self._selector_kw(),
            ):
                if self._stopped.is_set():
                    break
                kind, obj = event["type"], event["raw_object"]
                # where the next watch goes on from, kept across a failure (the stream does
                # not track it for an untyped call such as these): set once the event is in
                # the cache, so an event that failed on its way is delivered again
                rv = str((obj.get("metadata") or {}).get("resourceVersion") or self._rv)
                if kind != "BOOKMARK":
                    key, obj = key_of(obj), self._kept(obj)
                    with self._lock:
                        self._cache.pop(key, None)
                        self._unfile(key)
                        if kind != "DELETED":
                            self._cache[key] = obj
                            self._file(key, obj)
                self._rv = rv
                self._current = True  # the server took this watch: the cache follows again
                if kind != "BOOKMARK":
                    self._dispatch(kind, obj)
        finally:
            self._watch = None

    def _kept(self, obj: dict[str, Any]) -> dict[str, Any]:
        return obj if self._transform is None else self._transform(obj)

    def _file(self, key: Key, obj: dict[str, Any]) -> None:  # under the lock
        value = self._index_of(obj) if self._index_of is not None else None
        if value is not None:
            self._index.setdefault((key[0], value), {})[key] = obj
            self._filed[key] = value

    def _unfile(self, key: Key) -> None:  # under the lock
        value = self._filed.pop(key, None)  # where it was filed, whatever the object says now
        if value is None:
            return
        filed = self._index.get((key[0], value))
        if filed is not None:
            filed.pop(key, None)
            if not filed:
                del self._index[(key[0], value)]

    def _dispatch(self, kind: str, obj: dict[str, Any]) -> None:
        for handler in self._handlers:
            try:
                handler(kind, obj)
            except Exception:
                log.exception("handler for %s %s failed", self.resource.plural, key_of(obj))
