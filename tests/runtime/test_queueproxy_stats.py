"""Queue-proxy statistics and breaker, as units: ManualClock time, no processes."""

from __future__ import annotations

import asyncio

import pytest

from autoscaler.clock import ManualClock
from autoscaler.runtime.breaker import Breaker, BreakerClosed, BreakerOverload, BreakerTimeout
from autoscaler.runtime.stats import RequestStats

# (id, timeline of (t, "in"/"out", proxied), report at, expected avg, proxied avg, count, proxied count)
CASES = [
    pytest.param(
        [(0.0, "in", False), (0.5, "out", False), (0.5, "in", False), (1.0, "out", False)],
        1.0, 1.0, 0.0, 2, 0, id="two-500ms-requests-in-one-second-average-1",
    ),
    pytest.param(
        [(0.0, "in", False), (0.0, "in", True), (1.0, "out", False), (1.0, "out", True)],
        1.0, 2.0, 1.0, 2, 1, id="proxied-counted-apart",
    ),
    pytest.param(
        [(0.25, "in", False), (0.75, "out", False)],
        1.0, 0.5, 0.0, 1, 0, id="one-500ms-request-average-half",
    ),
    pytest.param(
        [(0.0, "in", False)],
        2.0, 1.0, 0.0, 1, 0, id="still-in-flight-over-two-seconds",
    ),
    pytest.param([], 1.0, 0.0, 0.0, 0, 0, id="idle"),
]  # fmt: skip


@pytest.mark.parametrize(("timeline", "at", "avg", "pavg", "count", "pcount"), CASES)
def test_time_weighted_stat(
    timeline: list[tuple[float, str, bool]],
    at: float,
    avg: float,
    pavg: float,
    count: int,
    pcount: int,
) -> None:
    clock = ManualClock()
    stats = RequestStats(clock.now())
    for t, kind, proxied in timeline:
        clock.set(t)
        (stats.request_in if kind == "in" else stats.request_out)(clock.now(), proxied)
    clock.set(at)
    stat = stats.report(clock.now(), "pod-1", 12.0, clock.wall())
    assert stat.average_concurrent_requests == pytest.approx(avg)
    assert stat.average_proxied_concurrent_requests == pytest.approx(pavg)
    assert stat.request_count == count
    assert stat.proxied_request_count == pcount
    assert stat.pod_name == "pod-1"
    assert stat.process_uptime_s == 12.0
    assert stat.timestamp == clock.wall()


def test_report_starts_a_new_period() -> None:
    clock = ManualClock()
    stats = RequestStats(clock.now())
    stats.request_in(0.0)
    clock.set(1.0)
    assert stats.report(1.0, "p", 1.0, 0.0).request_count == 1
    stats.request_out(1.5)
    second = stats.report(2.0, "p", 2.0, 0.0)
    assert second.request_count == 0
    assert second.average_concurrent_requests == pytest.approx(0.5)


async def test_breaker_holds_capacity_and_queues_fifo() -> None:
    breaker = Breaker(capacity=1, queue_depth=2)
    await breaker.acquire()
    order: list[int] = []

    async def waiter(i: int) -> None:
        await breaker.acquire()
        order.append(i)
        assert breaker.in_flight == 1

    tasks = [asyncio.create_task(waiter(i)) for i in range(2)]
    await asyncio.sleep(0)
    assert breaker.waiting == 2
    with pytest.raises(BreakerOverload, match="queue full"):
        await breaker.acquire()
    breaker.release()
    await asyncio.sleep(0)
    breaker.release()
    await asyncio.gather(*tasks)
    assert order == [0, 1]
    breaker.release()
    assert breaker.in_flight == 0


async def test_breaker_timeout_leaves_the_queue_without_a_slot() -> None:
    clock = ManualClock()
    depths: list[int] = []
    breaker = Breaker(capacity=1, on_depth=depths.append)
    await breaker.acquire()
    late = asyncio.create_task(breaker.acquire(2.0, clock.sleep))
    after = asyncio.create_task(breaker.acquire())
    for _ in range(3):
        await asyncio.sleep(0)
    assert (breaker.in_flight, breaker.waiting, breaker.depth) == (1, 2, 3)
    clock.advance(2.0)
    with pytest.raises(BreakerTimeout, match="within 2s"):
        await late
    assert (breaker.in_flight, breaker.waiting) == (1, 1)
    breaker.release()  # the slot goes to the next waiter, not to the one that left
    await after
    assert (breaker.in_flight, breaker.waiting) == (1, 0)
    breaker.release()
    assert breaker.depth == 0
    assert depths == [1, 2, 3, 2, 1, 0]


async def test_a_closed_breaker_refuses_its_waiters_and_later_requests() -> None:
    breaker = Breaker(capacity=1)
    await breaker.acquire()
    waiters = [asyncio.create_task(breaker.acquire(5.0)) for _ in range(2)]
    waiters.append(asyncio.create_task(breaker.acquire()))
    await asyncio.sleep(0)
    breaker.close()
    for result in await asyncio.gather(*waiters, return_exceptions=True):
        assert isinstance(result, BreakerClosed)
    with pytest.raises(BreakerClosed):
        await breaker.acquire()
    assert (breaker.in_flight, breaker.waiting) == (1, 0)
    breaker.release()  # the request holding the slot finishes as usual
    assert breaker.depth == 0


def test_breaker_default_queue_depth_is_ten_per_slot() -> None:
    assert Breaker(3).queue_depth == 30
    with pytest.raises(ValueError, match="capacity=0"):
        Breaker(0)
