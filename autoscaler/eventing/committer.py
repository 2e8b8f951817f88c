"""Group commit: many concurrent store operations, one SQLite transaction, one thread.

The ingress must not answer 202 before the event is committed, and a commit with
``synchronous=FULL`` waits for the disk. Running each commit on its own would cap the broker at
one event per disk flush, and running it on the event loop would stall every connection. So
operations queue up while a commit is in progress and the next commit takes all of them: each
runs in its own savepoint (one failing does not undo the others) and each caller's future is
resolved only after the transaction holding it committed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from autoscaler.eventing.store import EventStore

__all__ = ["Committer"]

T = TypeVar("T")
_Op = tuple[Callable[[EventStore], Any], "asyncio.Future[Any]"]


class Committer:
    """Runs ``EventStore`` operations on one worker thread, batched into transactions."""

    def __init__(self, store: EventStore, *, max_batch: int = 512) -> None:
        self._store = store
        self._max_batch = max_batch
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="broker-store")
        self._queue: list[_Op] = []
        self._flusher: asyncio.Task[None] | None = None
        self._closed = False

    async def call(self, op: Callable[[EventStore], T]) -> T:
        """Run ``op(store)`` in a committed transaction and return its result."""
        if self._closed:
            raise RuntimeError("the broker store is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._queue.append((op, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = loop.create_task(self._flush())
        result: T = await future
        return result

    async def close(self) -> None:
        """Finish queued operations, then close the store and the thread."""
        self._closed = True
        if self._flusher is not None:
            await asyncio.shield(self._flusher)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._store.close)
        self._executor.shutdown(wait=True)

    async def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        while self._queue:
            batch = self._queue[: self._max_batch]
            del self._queue[: self._max_batch]
            try:
                outcomes = await loop.run_in_executor(self._executor, self._run_batch, batch)
            except BaseException as exc:  # the commit itself failed: every caller learns it
                for _, future in batch:
                    if not future.done():
                        future.set_exception(
                            exc if isinstance(exc, Exception) else RuntimeError(str(exc))
                        )
                if not isinstance(exc, Exception):
                    raise
                continue
            for (_, future), (ok, value) in zip(batch, outcomes, strict=True):
                if future.done():
                    continue
                if ok:
                    future.set_result(value)
                else:
                    future.set_exception(value)

    def _run_batch(self, batch: list[_Op]) -> list[tuple[bool, Any]]:
        outcomes: list[tuple[bool, Any]] = []
        with self._store.transaction():
            for op, _ in batch:
                try:
                    with self._store.savepoint():
                        outcomes.append((True, op(self._store)))
                except Exception as exc:
                    outcomes.append((False, exc))
        return outcomes
