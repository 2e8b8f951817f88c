"""The work loop every one-machine reconciler shares: informers feed a de-duplicating queue of
``(kind, namespace, name)`` keys and one worker reconciles them in turn; status goes back through
the status subresource (``_write_status``).

This is the shape of a Knative or KServe controller (a workqueue keyed by object, fed by informer
events, with requeue on failure): an informer event may enqueue related objects too
(``enqueue_related``), a key already waiting is not queued twice, and a failed reconcile comes back
later, backing off per key (doubling up to a minute, reset by a success): from 0.2 s for an API
conflict or a missing object (the cache catches up), from a second for anything else. A spec the
API server refuses (422) or a reconciler cannot use (ValueError) is reported on the object itself
(``_report_failure``: a Ready=False condition saying why), and logged once, not at every retry.
Subclasses define ``_reconcile_<kind>(namespace, name)``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Mapping
from typing import Any

from kubernetes import client
from kubernetes.client.rest import ApiException

from autoscaler.clock import Clock
from autoscaler.kube.informer import Informer, Resource

log = logging.getLogger(__name__)

WorkKey = tuple[str, str, str]  # (kind, namespace, name)
API_RETRY_DELAY_S = 0.2
ERROR_RETRY_DELAY_S = 1.0
MAX_RETRY_DELAY_S = 60.0


def api_error_message(exc: ApiException) -> str:
    """The message of the Kubernetes Status an API error carries (its reason without one)."""
    try:
        body = json.loads(exc.body or "")
    except (TypeError, ValueError):
        body = None
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"])
    return f"{exc.status} {exc.reason}"


class WorkLoop:
    def __init__(
        self, api_client: client.ApiClient, kinds: Mapping[str, Resource], clock: Clock, name: str
    ) -> None:
        self.clock = clock
        self.kinds = dict(kinds)
        self.informers = {kind: Informer(api_client, res) for kind, res in kinds.items()}
        self._api = client.CustomObjectsApi(api_client)
        self._name = name
        self._queue: asyncio.Queue[WorkKey] = asyncio.Queue()
        self._pending: set[WorkKey] = set()
        self._failures: dict[WorkKey, int] = {}  # consecutive failed reconciles per key
        self._retrying: set[WorkKey] = set()  # keys with a retry scheduled
        self._tasks: list[asyncio.Task[None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start_work(self, sync_timeout_s: float) -> None:
        """List and watch every kind, wait for the caches, then start the worker."""
        self._loop = asyncio.get_running_loop()
        for kind, informer in self.informers.items():
            informer.add_handler(self._handler(kind))
            informer.start()
        for informer in self.informers.values():
            if not await asyncio.to_thread(informer.wait_synced, sync_timeout_s):
                raise TimeoutError(
                    f"could not list {informer.resource.plural} in {sync_timeout_s}s"
                )
        self.spawn(self._work(), self._name)

    async def stop_work(self) -> None:
        """Stop the worker, the pending retries and every other spawned task, then the watches."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        for informer in self.informers.values():
            await asyncio.to_thread(informer.stop)

    def spawn(self, coro: Any, name: str | None = None) -> None:
        """A task that lives until ``stop_work``."""
        self._tasks = [t for t in self._tasks if not t.done()]
        self._tasks.append(asyncio.create_task(coro, name=name))

    async def _write_status(
        self, kind: str, current: dict[str, Any], status: dict[str, Any]
    ) -> None:
        """Replace ``current``'s status through the status subresource, unless it is ``status``."""
        if current.get("status") == status:
            return
        r = self.kinds[kind]
        meta = current["metadata"]
        await asyncio.to_thread(
            self._api.replace_namespaced_custom_object_status,
            r.group,
            r.version,
            meta["namespace"],
            r.plural,
            meta["name"],
            {**current, "status": status},
        )

    # -- queueing --------------------------------------------------------------------------------
    def _handler(self, kind: str) -> Callable[[str, dict[str, Any]], None]:
        def on_event(_type: str, obj: dict[str, Any]) -> None:  # on the informer's thread
            assert self._loop is not None
            self._loop.call_soon_threadsafe(self.enqueue_related, kind, obj)

        return on_event

    def enqueue(self, kind: str, namespace: str, name: str) -> None:
        key = (kind, namespace, name)
        if key not in self._pending:
            self._pending.add(key)
            self._queue.put_nowait(key)

    def enqueue_related(self, kind: str, obj: dict[str, Any]) -> None:
        """What an informer event of ``kind`` puts in the queue (by default the object itself)."""
        meta = obj.get("metadata") or {}
        self.enqueue(kind, str(meta.get("namespace") or "default"), str(meta.get("name") or ""))

    async def _work(self) -> None:
        while True:
            key = await self._queue.get()
            self._pending.discard(key)
            try:
                await getattr(self, f"_reconcile_{key[0]}")(key[1], key[2])
            except ApiException as exc:
                if exc.status == 422:
                    await self._failed(key, "InvalidSpec", api_error_message(exc))
                    continue
                quiet = exc.status in (404, 409) or self._failures.get(key, 0) > 0
                log.log(
                    logging.DEBUG if quiet else logging.WARNING,
                    "reconciling %s: %s %s; again later",
                    key,
                    exc.status,
                    exc.reason,
                )
                self._backoff(key, API_RETRY_DELAY_S)
            except ValueError as exc:
                await self._failed(key, "InvalidSpec", str(exc))
            except Exception:
                if self._failures.get(key, 0) == 0:
                    log.exception("reconciling %s failed; again later", key)
                else:
                    log.debug("reconciling %s failed again", key, exc_info=True)
                self._backoff(key, ERROR_RETRY_DELAY_S)
            else:
                self._failures.pop(key, None)

    async def _failed(self, key: WorkKey, reason: str, message: str) -> None:
        """A spec that cannot be reconciled: say so on the object, try again after a while."""
        level = logging.DEBUG if self._failures.get(key, 0) else logging.WARNING
        log.log(level, "reconciling %s: %s: %s", key, reason, message)
        try:
            await self._report_failure(key[0], key[1], key[2], reason, message)
        except ApiException as exc:
            log.debug("reporting the failure of %s: %s %s", key, exc.status, exc.reason)
        self._backoff(key, ERROR_RETRY_DELAY_S)

    async def _report_failure(
        self, kind: str, namespace: str, name: str, reason: str, message: str
    ) -> None:
        """Record on the object why it cannot be reconciled (subclasses write its status)."""

    def _backoff(self, key: WorkKey, base_s: float) -> None:
        """Retry ``key`` after ``base_s`` doubled per consecutive failure, up to a minute."""
        failures = self._failures.get(key, 0)
        self._failures[key] = failures + 1
        if key in self._retrying:
            return
        self.retry_later(key, min(base_s * 2**failures, MAX_RETRY_DELAY_S))

    def retry_later(self, key: WorkKey, delay_s: float) -> None:
        self._retrying.add(key)

        async def later() -> None:
            try:
                await self.clock.sleep(delay_s)
            finally:
                self._retrying.discard(key)
            self.enqueue(*key)

        self.spawn(later())
