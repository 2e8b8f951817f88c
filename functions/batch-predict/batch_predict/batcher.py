"""Gathering concurrent requests into batches, one open batch per (namespace, model).

The first request of a batch leads: it waits until the window has passed or the batch is full,
closes the batch, runs it (one predict call, or one per event when the model refuses the merged
batch) and hands every member its outcome. The others only wait for that. A closed batch is out
of the open map before it runs, so events that arrive while it runs, however many calls that
takes, start the next batch at once. Flask serves each request on its own thread, hence threads
and a lock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from batch_predict.logic import BatchItem, Outcome

__all__ = ["Batcher"]

# run(items) -> one outcome per item, in the items' order; makes the predict call(s).
RunBatch = Callable[[Sequence[BatchItem]], list[Outcome]]


@dataclass
class _Batch:
    items: list[BatchItem] = field(default_factory=list)
    full: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    outcomes: list[Outcome] = field(default_factory=list)


class Batcher:
    """``submit(item)`` blocks until the item's batch has been predicted."""

    def __init__(self, run: RunBatch, *, window_s: float, max_batch: int) -> None:
        self._run = run
        self._window_s = window_s
        self._max_batch = max_batch
        self._lock = threading.Lock()
        self._open: dict[tuple[str, str], _Batch] = {}

    def submit(self, item: BatchItem) -> Outcome:
        """This item's outcome, once its batch has run."""
        key = (item.namespace, item.model)
        with self._lock:
            batch = self._open.get(key)
            leader = batch is None
            if batch is None:
                batch = self._open[key] = _Batch()
            index = len(batch.items)
            batch.items.append(item)
            if len(batch.items) >= self._max_batch:
                self._close(key, batch)
        if leader:
            batch.full.wait(self._window_s)
            with self._lock:
                self._close(key, batch)
            try:
                batch.outcomes = self._run(batch.items)
            finally:
                batch.done.set()
        else:
            batch.done.wait()
        if len(batch.outcomes) != len(batch.items):
            raise RuntimeError("the batch ended without an outcome for every event")
        return batch.outcomes[index]

    def _close(self, key: tuple[str, str], batch: _Batch) -> None:
        # Called with the lock held: later requests start a new batch.
        if self._open.get(key) is batch:
            del self._open[key]
        batch.full.set()
