"""Between ticks the controller lets its metric source sample the revisions of the last tick,
on the injected clock."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from autoscaler.clock import ManualClock
from autoscaler.kube.controller import Controller
from autoscaler.metrics.source import RevisionRef
from tests.kube.conftest import FakeMetricSource
from tests.kube.kit import ISVC, MSC, REV, Cluster, sees


async def drive(clock: ManualClock, task: asyncio.Task[None], step_s: float) -> None:
    """Move the clock by ``step_s`` each time the task waits on it, until it ends."""
    for _ in range(1000):
        for _ in range(10_000):  # let the task run up to its next wait (no time passes)
            if clock.sleepers() or task.done():
                break
            await asyncio.sleep(0)
        else:
            raise AssertionError("the task waits on something other than the clock")
        if task.done():
            return
        clock.advance(step_s)
    raise AssertionError("the wait did not end")


async def ticked(cluster: Cluster, ctl: Controller) -> str:
    """A tuned model and one tick: the controller has revisions to sample."""
    rev = cluster.deploy("m1")
    cluster.scaler("m1")
    await sees(ctl, MSC, "m1")
    await sees(ctl, REV, rev)
    await sees(ctl, ISVC, "m1", lambda o: bool((o.get("status") or {}).get("components")))
    await ctl.tick()
    return rev


async def test_the_source_samples_the_last_ticks_revisions_every_period(
    cluster: Cluster,
    make_controller: Callable[..., Controller],
    source: FakeMetricSource,
    clock: ManualClock,
) -> None:
    source.sample_period_s = 2.0
    ctl = make_controller()
    rev = await ticked(cluster, ctl)
    start, wall = clock.now(), clock.wall()
    task = asyncio.create_task(ctl._wait_sampling(30.0, 30.0))
    await drive(clock, task, 2.0)
    await task
    # every 2 s, on the wall clock the tick observes with, and none at the tick itself
    assert [t for t, _ in source.sampled] == [wall + t for t in range(2, 30, 2)]
    assert all([name for name, _ in revs] == [rev] for _, revs in source.sampled)
    assert clock.now() == start + 30.0


@pytest.mark.parametrize(
    ("period_s", "sampled_s", "tick_first", "why"),
    [
        (0.0, 30.0, True, "the source asks for none"),
        (2.0, 0.0, True, "not leading: nothing to observe"),
        (2.0, 30.0, False, "no tick yet: no revision to sample"),
    ],
)
async def test_no_samples(
    cluster: Cluster,
    make_controller: Callable[..., Controller],
    source: FakeMetricSource,
    clock: ManualClock,
    period_s: float,
    sampled_s: float,
    tick_first: bool,
    why: str,
) -> None:
    source.sample_period_s = period_s
    ctl = make_controller()
    if tick_first:
        await ticked(cluster, ctl)
    start = clock.now()
    task = asyncio.create_task(ctl._wait_sampling(sampled_s, 30.0))
    await drive(clock, task, 2.0)
    await task
    assert source.sampled == [], why
    assert clock.now() == start + 30.0


async def test_a_failing_sample_is_counted_and_the_wait_goes_on(
    cluster: Cluster,
    make_controller: Callable[..., Controller],
    source: FakeMetricSource,
    clock: ManualClock,
    monkeypatch: Any,
) -> None:
    source.sample_period_s = 10.0
    calls: list[float] = []

    async def broken(revisions: Sequence[RevisionRef], now_s: float) -> None:
        calls.append(clock.now())
        raise RuntimeError("replica list changed under the sampler")

    monkeypatch.setattr(source, "sample", broken)
    ctl = make_controller()
    await ticked(cluster, ctl)
    before = ctl.metrics.value("modelscale_tuner_errors_total", {"kind": "metrics"})
    start = clock.now()
    task = asyncio.create_task(ctl._wait_sampling(30.0, 30.0))
    await drive(clock, task, 10.0)
    await task
    assert calls == [start + 10.0, start + 20.0]
    assert ctl.metrics.value("modelscale_tuner_errors_total", {"kind": "metrics"}) == before + 2
