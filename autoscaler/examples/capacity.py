"""A model with a fixed number of parallel slots: ``CapacityLimitedModel`` (the "GPU-bound model").

Latency model (processor sharing). Each request needs ``base_latency_ms`` of work. With ``n``
requests in flight and a capacity of ``c`` slots, every request progresses at rate

    r(n) = 1            if n <= c
    r(n) = c / n        if n > c

so a request alone or with up to ``c - 1`` others takes exactly ``base_latency_ms``; under a steady
load of ``n > c`` in flight each takes ``base_latency_ms * n / c``. Worked example: c = 4,
base 100 ms, 8 requests arriving together -> each runs at 4/8 speed and all finish at 200 ms.
Requests are admitted at once (no queue inside the model); the slowdown is what a shared device
does when it is oversubscribed.

Configuration (args win over env):

- ``--capacity N`` / env ``MODEL_CAPACITY`` (default 4): parallel slots ``c``, >= 1.
- ``--base_latency_ms X`` / env ``MODEL_BASE_LATENCY_MS`` (default 50): work per request, >= 0.

It records the largest number of requests it ever had in flight at once, exposed on the model
server's own ``/metrics`` as the gauge ``capacity_model_max_in_flight{model_name=...}`` (and the
current count as ``capacity_model_in_flight``), so tests can check a containerConcurrency limit
from inside the replica.

Predict accepts V1 ``{"instances": [...]}`` and V2 ``inputs`` and answers, per instance, the
request's service time in milliseconds as it measured it.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import itertools
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import kserve
from prometheus_client import Gauge

ENV_CAPACITY = "MODEL_CAPACITY"
ENV_BASE_LATENCY_MS = "MODEL_BASE_LATENCY_MS"
DEFAULT_CAPACITY = 4
DEFAULT_BASE_LATENCY_MS = 50.0
_EPS = 1e-9


@dataclass
class ProcessorSharing:
    """The latency model as a pure state machine: ``now`` in seconds is passed to every call.

    ``virtual`` is the work (seconds) a request present since the start would have received; a job
    arriving at virtual time v finishes when ``virtual`` reaches ``v + work_s``.
    """

    capacity: int
    work_s: float
    virtual: float = 0.0
    last_s: float | None = None
    jobs: dict[int, float] = field(default_factory=dict)

    def rate(self) -> float:
        n = len(self.jobs)
        return 1.0 if n <= self.capacity else self.capacity / n

    def advance(self, now: float) -> None:
        if self.last_s is not None and now > self.last_s:
            self.virtual += (now - self.last_s) * self.rate()
        self.last_s = now if self.last_s is None else max(self.last_s, now)

    def arrive(self, job: int, now: float) -> None:
        self.advance(now)
        self.jobs[job] = self.virtual + self.work_s

    def next_finish(self, now: float) -> float | None:
        """The time at which the next job finishes if nothing else arrives."""
        self.advance(now)
        if not self.jobs:
            return None
        first = min(self.jobs.values())
        return now + max(0.0, first - self.virtual) / self.rate()

    def pop_finished(self, now: float) -> list[int]:
        self.advance(now)
        done = [j for j, v in self.jobs.items() if v <= self.virtual + _EPS]
        for j in done:
            del self.jobs[j]
        return done


@functools.cache
def _gauges() -> tuple[Gauge, Gauge]:
    # Created on first use (not at import) in the process-wide registry the model server serves.
    return (
        Gauge(
            "capacity_model_max_in_flight",
            "Most requests the capacity-limited model ever had in flight at once",
            ["model_name"],
        ),
        Gauge(
            "capacity_model_in_flight",
            "Requests the capacity-limited model has in flight now",
            ["model_name"],
        ),
    )


@dataclass(frozen=True)
class CapacitySettings:
    capacity: int = DEFAULT_CAPACITY
    base_latency_ms: float = DEFAULT_BASE_LATENCY_MS

    @classmethod
    def parse(cls, args: Sequence[str], env: dict[str, str]) -> CapacitySettings:
        parser = argparse.ArgumentParser(add_help=False)
        parser.add_argument("--capacity", default=env.get(ENV_CAPACITY))
        parser.add_argument("--base_latency_ms", default=env.get(ENV_BASE_LATENCY_MS))
        ns, _ = parser.parse_known_args(list(args))
        capacity = (
            DEFAULT_CAPACITY if ns.capacity is None else _number("capacity", ns.capacity, int)
        )
        base = (
            DEFAULT_BASE_LATENCY_MS
            if ns.base_latency_ms is None
            else _number("base_latency_ms", ns.base_latency_ms, float)
        )
        if capacity < 1:
            raise ValueError(f"capacity={capacity}: must be an integer >= 1")
        if base < 0:
            raise ValueError(f"base_latency_ms={base}: must be >= 0")
        return cls(capacity=int(capacity), base_latency_ms=float(base))


def _number(key: str, value: str, kind: type[int] | type[float]) -> float:
    try:
        return kind(value)
    except ValueError:
        raise ValueError(f"{key}={value!r}: not a {kind.__name__}") from None


class CapacityLimitedModel(kserve.Model):
    """A ``kserve.Model`` whose latency follows the processor-sharing formula in the module doc."""

    def __init__(self, name: str, args: Sequence[str] = (), env: dict[str, str] | None = None):
        super().__init__(name)
        self.settings = CapacitySettings.parse(args, dict(os.environ) if env is None else env)
        self._ps = ProcessorSharing(self.settings.capacity, self.settings.base_latency_ms / 1000.0)
        self._ids = itertools.count()
        self._waiters: dict[int, asyncio.Future[None]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self.in_flight = 0
        self.max_in_flight = 0

    def load(self) -> bool:
        max_g, cur_g = _gauges()
        max_g.labels(model_name=self.name).set(0)
        cur_g.labels(model_name=self.name).set(0)
        self.ready = True
        return self.ready

    def _reschedule(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        at = self._ps.next_finish(loop.time())
        if at is not None:
            self._timer = loop.call_at(at, self._on_timer, loop)

    def _on_timer(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer = None
        for job in self._ps.pop_finished(loop.time()):
            fut = self._waiters.pop(job)
            if not fut.done():
                fut.set_result(None)
        self._reschedule(loop)

    async def _serve_one(self) -> float:
        loop = asyncio.get_running_loop()
        job = next(self._ids)
        fut: asyncio.Future[None] = loop.create_future()
        self._waiters[job] = fut
        start = loop.time()
        self._ps.arrive(job, start)
        self._reschedule(loop)
        try:
            await fut
        finally:
            if job in self._ps.jobs:  # cancelled: leave the device
                self._ps.pop_finished(loop.time())
                self._ps.jobs.pop(job, None)
                self._waiters.pop(job, None)
                self._reschedule(loop)
        return (loop.time() - start) * 1000.0

    async def predict(
        self, payload: dict[str, Any] | kserve.InferRequest, headers: dict[str, str] | None = None
    ) -> dict[str, Any] | kserve.InferResponse:
        from kserve.utils.utils import get_predict_input, get_predict_response

        instances = get_predict_input(payload)
        max_g, cur_g = _gauges()
        self.in_flight += 1
        if self.in_flight > self.max_in_flight:
            self.max_in_flight = self.in_flight
            max_g.labels(model_name=self.name).set(self.max_in_flight)
        cur_g.labels(model_name=self.name).set(self.in_flight)
        try:
            latency_ms = await self._serve_one()
        finally:
            self.in_flight -= 1
            cur_g.labels(model_name=self.name).set(self.in_flight)
        count = max(1, len(instances))
        return get_predict_response(payload, [latency_ms] * count, self.name)
