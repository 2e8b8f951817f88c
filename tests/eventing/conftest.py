"""Fixtures for the broker tests: recording subscribers on 127.0.0.1 and broker cores."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from autoscaler.clock import ManualClock
from autoscaler.eventing import BrokerCore, BrokerSettings
from tests.eventing.fakes import Subscriber, broker_obj, no_refs


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def subscribers(clock: ManualClock) -> AsyncIterator[Callable[..., Any]]:
    started: list[Subscriber] = []

    async def make(**kwargs: Any) -> Subscriber:
        sub = await Subscriber(clock=clock, **kwargs).start()
        started.append(sub)
        return sub

    yield make
    for sub in started:
        await sub.stop()


@pytest.fixture
async def core(tmp_path: Path, clock: ManualClock) -> AsyncIterator[BrokerCore]:
    """A broker core on a ManualClock whose delivery is driven by ``deliver_due()``."""
    broker = BrokerCore(tmp_path / "broker.db", no_refs, clock=clock, settings=BrokerSettings())
    broker.apply_broker(broker_obj())
    await broker.start(deliver=False)
    yield broker
    await broker.stop()
