"""ManualClock moves only when told and wakes sleepers in order."""

import asyncio

import pytest

from autoscaler.clock import ManualClock, SystemClock


def test_manual_clock_advances_and_refuses_to_go_back() -> None:
    clock = ManualClock(start=10.0, epoch=1000.0)
    clock.advance(2.5)
    assert clock.now() == 12.5
    assert clock.wall() == 1012.5
    with pytest.raises(ValueError, match="does not go back"):
        clock.set(5.0)


async def test_manual_clock_sleep_wakes_when_advanced_past_deadline() -> None:
    clock = ManualClock()
    woke: list[float] = []

    async def sleeper(d: float) -> None:
        await clock.sleep(d)
        woke.append(d)

    tasks = [asyncio.create_task(sleeper(d)) for d in (3.0, 1.0)]
    await asyncio.sleep(0)
    clock.advance(1.5)
    await asyncio.sleep(0)
    assert woke == [1.0]
    clock.advance(2.0)
    await asyncio.gather(*tasks)
    assert woke == [1.0, 3.0]


def test_system_clock_is_monotonic() -> None:
    c = SystemClock()
    assert c.now() <= c.now()
