"""The delivery loop (``deliver=True``): it wakes on new events and sleeps on the clock."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from cloudevents.conversion import to_binary, to_structured
from cloudevents.http import CloudEvent

from autoscaler.clock import ManualClock, SystemClock
from autoscaler.eventing import BrokerCore
from tests.eventing.fakes import NAMESPACE, Subscriber, broker_obj, no_refs, trigger_obj


async def post_many(core: BrokerCore, count: int) -> None:
    async with aiohttp.ClientSession() as session:
        for n in range(count):
            encode = to_structured if n % 2 else to_binary
            headers, body = encode(
                CloudEvent({"type": "t", "source": "/s", "id": f"e-{n}"}, {"n": n})
            )
            async with session.post(
                core.broker_url(NAMESPACE, "default"), headers=headers, data=body
            ) as r:
                assert r.status == 202


async def test_loop_retries_when_the_manual_clock_reaches_the_backoff(
    tmp_path: Path, subscribers: Any, clock: ManualClock
) -> None:
    sub: Subscriber = await subscribers(statuses=[503])
    core = BrokerCore(tmp_path / "b.db", no_refs, clock=clock)
    core.apply_broker(broker_obj())
    core.apply_trigger(
        trigger_obj(
            "t", sub.url, delivery={"retry": 1, "backoffPolicy": "linear", "backoffDelay": "PT5S"}
        )
    )
    await core.start()
    try:
        await post_many(core, 1)
        await sub.wait_for(1)
        # linear: the first retry has no wait (5 s × 0)
        await sub.wait_for(2)
        assert [r.at for r in sub.received] == [0.0, 0.0]
    finally:
        await core.stop()


async def test_loop_sleeps_on_the_clock_until_a_retry_is_due(
    tmp_path: Path, subscribers: Any, clock: ManualClock
) -> None:
    sub: Subscriber = await subscribers(statuses=[503])
    core = BrokerCore(tmp_path / "b.db", no_refs, clock=clock)
    core.apply_broker(broker_obj())
    core.apply_trigger(
        trigger_obj(
            "t",
            sub.url,
            delivery={"retry": 1, "backoffPolicy": "exponential", "backoffDelay": "PT5S"},
        )
    )
    await core.start()
    try:
        await post_many(core, 1)
        await sub.wait_for(1)
        for _ in range(2000):  # the loop has recorded the 503 and sleeps until the retry
            if await core.delivery_counts() == {"subscriber": 1} and clock.sleepers() > 0:
                break
            await asyncio.sleep(0.005)
        clock.advance(4.9)
        assert await core.delivery_counts() == {"subscriber": 1}
        clock.advance(0.1)
        await sub.wait_for(2)
        assert [r.at for r in sub.received] == [0.0, pytest.approx(5.0)]
    finally:
        await core.stop()


@pytest.mark.slow
async def test_loop_delivers_a_burst_on_the_system_clock(tmp_path: Path) -> None:
    sub = await Subscriber(clock=SystemClock()).start()
    core = BrokerCore(tmp_path / "b.db", no_refs)
    core.apply_broker(broker_obj())
    core.apply_trigger(trigger_obj("t", sub.url))
    await core.start()
    try:
        await post_many(core, 50)
        await sub.wait_for(50)
        assert sorted(sub.ids()) == sorted(f"e-{n}" for n in range(50))
    finally:
        await core.stop()
        await sub.stop()
    assert len(sub.received) == 50


class SteppingClock(ManualClock):
    """A manual clock whose wall time moves on by ``step`` at every reading once ``stepping``
    is set: time that passes between two readings (a slow commit, a busy machine)."""

    def __init__(self, step: float) -> None:
        super().__init__()
        self.step = step
        self.stepping = False

    def wall(self) -> float:
        if self.stepping:
            self.advance(self.step)
        return super().wall()


async def test_loop_times_a_retry_that_falls_due_while_it_goes_round(tmp_path: Path) -> None:
    """A retry falling due between the loop's fetch and its wait is timed, not left waiting
    for an unrelated wake-up: with the clock 0.6 s further at every reading, the retry due
    1 s after the first attempt is neither due at the fetch (0.6 s) nor after the wait's
    reading (1.2 s) when each reads the clock on its own."""
    db = tmp_path / "b.db"
    clock = SteppingClock(step=0.6)
    sub = await Subscriber(clock=clock, statuses=[503]).start()
    delivery = {"retry": 1, "backoffPolicy": "exponential", "backoffDelay": "PT1S"}
    first = BrokerCore(db, no_refs, clock=clock)
    first.apply_broker(broker_obj())
    first.apply_trigger(trigger_obj("t", sub.url, delivery=delivery))
    await first.start(deliver=False)
    try:
        await post_many(first, 1)
        await first.deliver_due()  # 503: the retry is due 1 s later
        assert await first.delivery_counts() == {"subscriber": 1}
    finally:
        await first.stop()
    second = BrokerCore(db, no_refs, clock=clock)
    second.apply_broker(broker_obj())
    second.apply_trigger(trigger_obj("t", sub.url, delivery=delivery))
    clock.stepping = True
    await second.start()
    try:
        await sub.wait_for(2, timeout_s=5.0)
        assert await second.delivery_counts() == {"delivered": 1}
    finally:
        await second.stop()
        await sub.stop()
