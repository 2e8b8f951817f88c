"""The queue-proxy's concurrency breaker: at most ``capacity`` in flight, a bounded FIFO queue.

Mirrors Knative's pkg/queue/breaker.go as the queue-proxy builds it (cmd/queue/main.go
``buildBreaker``): capacity = containerConcurrency, queue depth = 10 × containerConcurrency, and a
request that finds the queue full is refused (the queue-proxy answers 503). A slot is handed
straight from the finishing request to the first waiter, so the limit holds exactly.

A wait can be bounded (``acquire(timeout_s, sleep)``, ``BreakerTimeout`` when it runs out) and a
breaker can be closed (``close``: every waiter gets ``BreakerClosed``, and so does every later
``acquire``); a request that leaves the queue without a slot releases nothing. ``depth`` is
Knative's in-flight count of the breaker, the requests waiting plus those holding a slot;
``on_depth`` hears of every change.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

QUEUE_DEPTH_PER_SLOT = 10


class BreakerOverload(Exception):
    """The breaker's queue is full."""


class BreakerTimeout(Exception):
    """The wait for a slot ran out of time."""


class BreakerClosed(Exception):
    """The breaker was closed (its replica is going away) before a slot was free."""


class Breaker:
    def __init__(
        self,
        capacity: int,
        queue_depth: int | None = None,
        on_depth: Callable[[int], None] | None = None,
    ) -> None:
        if capacity < 1:
            raise ValueError(f"capacity={capacity}: must be >= 1 (0 means no breaker)")
        self.capacity = capacity
        self.queue_depth = QUEUE_DEPTH_PER_SLOT * capacity if queue_depth is None else queue_depth
        self.in_flight = 0
        self.closed = False
        self.on_depth = on_depth
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    @property
    def depth(self) -> int:
        """Requests in the breaker: holding a slot or waiting for one."""
        return self.in_flight + len(self._waiters)

    def _changed(self) -> None:
        if self.on_depth is not None:
            self.on_depth(self.in_flight + len(self._waiters))

    async def acquire(
        self,
        timeout_s: float | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        """Take a slot, waiting in FIFO order; at most ``timeout_s`` (timed by ``sleep``)."""
        if self.closed:
            raise BreakerClosed("the breaker is closed")
        if self.in_flight < self.capacity and not self._waiters:
            self.in_flight += 1
            self._changed()
            return
        if len(self._waiters) >= self.queue_depth:
            raise BreakerOverload(
                f"pending request queue full ({self.queue_depth} waiting, capacity {self.capacity})"
            )
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        self._changed()
        timer = None if timeout_s is None else asyncio.ensure_future(sleep(max(0.0, timeout_s)))
        try:
            if timer is None:
                await fut
            else:
                await asyncio.wait((fut, timer), return_when=asyncio.FIRST_COMPLETED)
                if not fut.done():
                    raise BreakerTimeout(f"no free slot within {timeout_s:g}s")
                fut.result()  # BreakerClosed if the breaker was closed meanwhile
        except (asyncio.CancelledError, BreakerTimeout):
            self._abandon(fut)
            raise
        finally:
            if timer is not None:
                timer.cancel()

    def _abandon(self, fut: asyncio.Future[None]) -> None:
        """A waiter leaves: a slot handed to it goes on; a waiter without one just leaves."""
        if fut.done():
            if not fut.cancelled() and fut.exception() is None:
                self.release()  # the slot was handed to us as we left
            return
        fut.cancel()
        self._waiters.remove(fut)
        self._changed()

    def release(self) -> None:
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(None)  # hand the slot over: in_flight is unchanged
                self._changed()
                return
        self.in_flight -= 1
        self._changed()

    def close(self) -> None:
        """Refuse every waiter and every later ``acquire`` with ``BreakerClosed``."""
        self.closed = True
        waiters, self._waiters = self._waiters, deque()
        for fut in waiters:
            if not fut.done():
                fut.set_exception(BreakerClosed("the breaker was closed"))
        if waiters:
            self._changed()

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        await self.acquire()
        try:
            yield
        finally:
            self.release()
