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
