"""Durability: events accepted before a stop are delivered after a restart on the same file,
and a subscriber that already answered 2xx does not get them again."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
from cloudevents.conversion import to_binary
from cloudevents.http import CloudEvent

from autoscaler.clock import ManualClock
from autoscaler.eventing import BrokerCore
from tests.eventing.fakes import NAMESPACE, broker_obj, no_refs, trigger_obj


async def test_undelivered_events_survive_a_restart_and_none_is_sent_twice(
    tmp_path: Path, clock: ManualClock, subscribers: Any
) -> None:
    db = tmp_path / "broker.db"
    healthy, down = await subscribers(), await subscribers(statuses=[503] * 5)
    delivery = {"retry": 10, "backoffPolicy": "exponential", "backoffDelay": "PT1S"}
    objects = [
        broker_obj(),
        trigger_obj("healthy", healthy.url),
        trigger_obj("down", down.url, delivery=delivery),
    ]

    first = BrokerCore(db, no_refs, clock=clock)
    first.apply_broker(objects[0])
    first.apply_trigger(objects[1])
    first.apply_trigger(objects[2])
    await first.start(deliver=False)
    async with aiohttp.ClientSession() as session:
        for n in range(5):
            headers, body = to_binary(
                CloudEvent({"type": "t", "source": "/s", "id": f"e-{n}"}, b"x")
            )
            async with session.post(
                first.broker_url(NAMESPACE, "default"), headers=headers, data=body
            ) as r:
                assert r.status == 202
    await first.deliver_due()  # healthy answers 2xx to all five; down fails all five once
    assert sorted(healthy.ids()) == [f"e-{n}" for n in range(5)]
    assert len(down.received) == 5
    await first.stop()

    # A new core on the same file, as after a process restart.
    second = BrokerCore(db, no_refs, clock=clock)
    second.apply_broker(objects[0])
    second.apply_trigger(objects[1])
    second.apply_trigger(objects[2])
    await second.start(deliver=False)
    try:
        assert await second.delivery_counts() == {"delivered": 5, "subscriber": 5}
        clock.advance(1.0)  # the first retry of the down subscriber is due (1 s × 2^0)
        await second.deliver_due()
        assert len(healthy.received) == 5, "a subscriber that answered 2xx got an event again"
        assert sorted(r.event["id"] for r in down.received[5:]) == [f"e-{n}" for n in range(5)]
        assert await second.delivery_counts() == {"delivered": 10}
        assert await second.prune() == 5
    finally:
        await second.stop()


async def test_deliveries_wait_for_their_trigger_after_a_restart(
    tmp_path: Path, clock: ManualClock, subscribers: Any
) -> None:
    db = tmp_path / "broker.db"
    sub = await subscribers()
    first = BrokerCore(db, no_refs, clock=clock)
    first.apply_broker(broker_obj())
    first.apply_trigger(trigger_obj("t", sub.url))
    await first.start(deliver=False)  # accepted, never delivered
    headers, body = to_binary(CloudEvent({"type": "t", "source": "/s", "id": "kept"}, b"x"))
    async with (
        aiohttp.ClientSession() as session,
        session.post(first.broker_url(NAMESPACE, "default"), headers=headers, data=body) as r,
    ):
        assert r.status == 202
    await first.stop()

    second = BrokerCore(db, no_refs, clock=clock)
    second.apply_broker(broker_obj())
    await second.start(deliver=False)
    try:
        assert await second.deliver_due() == 0  # the trigger is not known yet: nothing is lost
        second.apply_trigger(trigger_obj("t", sub.url))
        await second.deliver_due()
        assert sub.ids() == ["kept"]
        await second.delete_trigger(NAMESPACE, "t")
    finally:
        await second.stop()


async def test_deleting_a_trigger_abandons_its_pending_deliveries(
    core: BrokerCore, subscribers: Any
) -> None:
    sub = await subscribers()
    core.apply_trigger(trigger_obj("t", sub.url))
    headers, body = to_binary(CloudEvent({"type": "t", "source": "/s", "id": "gone"}, b"x"))
    async with (
        aiohttp.ClientSession() as session,
        session.post(core.broker_url(NAMESPACE, "default"), headers=headers, data=body) as r,
    ):
        assert r.status == 202
    assert await core.delete_trigger(NAMESPACE, "t") == 1
    assert await core.deliver_due() == 0
    assert await core.delivery_counts() == {"abandoned": 1}
    assert sub.received == []


async def test_a_held_core_takes_no_event_and_delivers_none_until_released(
    tmp_path: Path, clock: ManualClock, subscribers: Any
) -> None:
    """While a restarted core is held (its Brokers and Triggers being loaded) the ingress
    answers 503 with the reason and stores nothing, and stored events wait; once released,
    both go on."""
    db = tmp_path / "broker.db"
    sub = await subscribers()
    first = BrokerCore(db, no_refs, clock=clock)
    first.apply_broker(broker_obj())
    first.apply_trigger(trigger_obj("t", sub.url))
    await first.start(deliver=False)
    async with aiohttp.ClientSession() as session:
        status, _, _ = await post(session, first.broker_url(NAMESPACE, "default"), "kept", b"x")
        assert status == 202
    await first.stop()

    second = BrokerCore(db, no_refs, clock=clock)
    await second.start(hold=True)
    try:
        second.apply_broker(broker_obj())  # loaded during the hold, before its Trigger
        async with aiohttp.ClientSession() as session:
            status, headers, answer = await post(
                session, second.broker_url(NAMESPACE, "default"), "early"
            )
            assert (status, headers["Retry-After"]) == (503, "1")
            error = answer["error"]
            assert "starting" in error and "Brokers and Triggers" in error
            second.apply_trigger(trigger_obj("t", sub.url))
            for _ in range(50):  # let a running loop (there must be none) get going
                await asyncio.sleep(0)
            assert sub.received == []
            assert await second.delivery_counts() == {"subscriber": 1}  # "early" not stored
            second.release()
            await sub.wait_for(1)
            status, _, _ = await post(session, second.broker_url(NAMESPACE, "default"), "late")
            assert status == 202
            await sub.wait_for(2)
        assert sub.ids() == ["kept", "late"]
    finally:
        await second.stop()


async def post(
    session: aiohttp.ClientSession, url: str, event_id: str, data: bytes = b""
) -> tuple[int, dict[str, str], Any]:
    """POST one binary-mode event; its status, headers and body (JSON when it is JSON)."""
    headers, body = to_binary(CloudEvent({"type": "t", "source": "/s", "id": event_id}, data))
    async with session.post(url, headers=headers, data=body) as r:
        answer = await r.json() if r.content_type == "application/json" else await r.text()
        return r.status, dict(r.headers), answer
