"""The queue-proxy's concurrency breaker: at most ``capacity`` in flight, a bounded FIFO queue.

Mirrors Knative's pkg/queue/breaker.go as the queue-proxy builds it (cmd/queue/main.go
``buildBreaker``): capacity = containerConcurrency, queue depth = 10 × containerConcurrency, and a
request that finds the queue full is refused (the queue-proxy answers 503). A slot is handed
straight from the finishing request to the first waiter, so the limit holds exactly.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

QUEUE_DEPTH_PER_SLOT = 10


class BreakerOverload(Exception):
    """The breaker's queue is full."""


class Breaker:
    def __init__(self, capacity: int, queue_depth: int | None = None) -> None:
        if capacity < 1:
            raise ValueError(f"capacity={capacity}: must be >= 1 (0 means no breaker)")
        self.capacity = capacity
        self.queue_depth = QUEUE_DEPTH_PER_SLOT * capacity if queue_depth is None else queue_depth
        self.in_flight = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    async def acquire(self) -> None:
        if self.in_flight < self.capacity and not self._waiters:
            self.in_flight += 1
            return
        if len(self._waiters) >= self.queue_depth:
            raise BreakerOverload(
                f"pending request queue full ({self.queue_depth} waiting, capacity {self.capacity})"
            )
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self.release()  # the slot was handed to us as we were cancelled
            else:
                self._waiters.remove(fut)
            raise

    def release(self) -> None:
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(None)  # hand the slot over: in_flight is unchanged
                return
        self.in_flight -= 1

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        await self.acquire()
        try:
            yield
        finally:
            self.release()
