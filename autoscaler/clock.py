"""Time as an argument: the one module that reads the machine's clocks.

Pure code takes ``now`` (seconds) as a parameter. Drivers take a ``Clock`` so tests and the
simulator can drive time by hand: ``ManualClock`` only moves when told to, and its ``sleep``
returns as soon as the clock has been advanced past the wake-up time.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    """Monotonic seconds for deciding, wall seconds for timestamps."""

    def now(self) -> float:
        """Monotonic time in seconds: for windows, timeouts and intervals."""
        ...

    def wall(self) -> float:
        """Seconds since the Unix epoch: for timestamps written to objects and logs."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait until ``now()`` has moved on by ``seconds``."""
        ...


class SystemClock:
    """The machine's clocks."""

    def now(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class ManualClock:
    """A clock that moves only when ``advance`` or ``set`` is called.

    ``wall()`` is ``now()`` plus a fixed epoch offset, so timestamps stay consistent with it.
    """

    def __init__(self, start: float = 0.0, epoch: float = 1_700_000_000.0) -> None:
        self._now = start
        self._epoch = epoch
        self._waiters: list[tuple[float, asyncio.Future[None]]] = []

    def now(self) -> float:
        return self._now

    def wall(self) -> float:
        return self._epoch + self._now

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"a clock does not go back: advance({seconds})")
        self.set(self._now + seconds)

    def set(self, now: float) -> None:
        if now < self._now:
            raise ValueError(f"a clock does not go back: set({now}) before {self._now}")
        self._now = now
        due = [w for w in self._waiters if w[0] <= now]
        self._waiters = [w for w in self._waiters if w[0] > now]
        for _, fut in due:
            if not fut.done():
                fut.set_result(None)

    def sleepers(self) -> int:
        """How many ``sleep`` calls are waiting: tests advance once the code under test waits."""
        return sum(1 for _, fut in self._waiters if not fut.done())

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((self._now + seconds, fut))
        await fut
