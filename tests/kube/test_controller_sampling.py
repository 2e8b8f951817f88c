"""Between ticks the controller lets its metric source sample, on the injected clock."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from autoscaler.clock import ManualClock
from autoscaler.kube.controller import Controller
from tests.kube.conftest import FakeMetricSource


async def drive(clock: ManualClock, task: asyncio.Task[None], step_s: float) -> None:
    """Move the clock by ``step_s`` each time the task waits on it, until it ends."""
    for _ in range(1000):
        while clock.sleepers() == 0 and not task.done():
            await asyncio.sleep(0)  # let the task run up to its next wait (no time passes)
        if task.done():
            return
        clock.advance(step_s)
    raise AssertionError("the wait did not end")


async def test_the_source_samples_every_period_until_the_next_tick(
    make_controller: Callable[..., Controller], source: FakeMetricSource, clock: ManualClock
) -> None:
    source.sample_period_s, source.clock = 2.0, clock
    ctl = make_controller()
    start = clock.now()
    task = asyncio.create_task(ctl._wait_sampling(30.0, 30.0))
    await drive(clock, task, 2.0)
    await task
    # every 2 s and none at the tick itself (the tick scrapes then)
    assert source.sampled_at == [start + t for t in range(2, 30, 2)]
    assert clock.now() == start + 30.0


@pytest.mark.parametrize(
    ("period_s", "sampled_s", "why"),
    [(0.0, 30.0, "the source asks for none"), (2.0, 0.0, "not leading: nothing to observe")],
)
async def test_no_samples(
    make_controller: Callable[..., Controller],
    source: FakeMetricSource,
    clock: ManualClock,
    period_s: float,
    sampled_s: float,
    why: str,
) -> None:
    source.sample_period_s, source.clock = period_s, clock
    ctl = make_controller()
    start = clock.now()
    task = asyncio.create_task(ctl._wait_sampling(sampled_s, 30.0))
    await drive(clock, task, 30.0)
    await task
    assert source.sampled_at == [], why
    assert clock.now() == start + 30.0


async def test_a_failing_sample_is_counted_and_the_wait_goes_on(
    make_controller: Callable[..., Controller],
    source: FakeMetricSource,
    clock: ManualClock,
    monkeypatch: Any,
) -> None:
    source.sample_period_s, source.clock = 10.0, clock
    calls: list[float] = []

    async def broken() -> None:
        calls.append(clock.now())
        raise RuntimeError("replica list changed under the sampler")

    monkeypatch.setattr(source, "sample", broken)
    ctl = make_controller()
    before = ctl.metrics.value("modelscale_tuner_errors_total", {"kind": "metrics"})
    start = clock.now()
    task = asyncio.create_task(ctl._wait_sampling(30.0, 30.0))
    await drive(clock, task, 10.0)
    await task
    assert calls == [start + 10.0, start + 20.0]
    assert ctl.metrics.value("modelscale_tuner_errors_total", {"kind": "metrics"}) == before + 2
