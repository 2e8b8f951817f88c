"""The reconciler's start against the embedded API server: the broker core takes events and
delivers only once every listed Broker and Trigger is loaded, Brokers first, so events stored
before a restart keep their Broker's retry and dead-letter sink."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from cloudevents.conversion import to_binary
from cloudevents.http import CloudEvent
from kubernetes import client

from autoscaler.apiserver.testing import RunningAPIServer, running_apiserver
from autoscaler.clock import SystemClock
from autoscaler.eventing import BrokerCore
from autoscaler.eventing.reconciler import EventingController
from autoscaler.runtime.launcher import free_loopback_port
from tests.eventing.fakes import NAMESPACE, Subscriber, broker_obj, no_refs, trigger_obj


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningAPIServer]:
    with running_apiserver(tmp_path) as handle:
        yield handle


async def post(url: str, event_id: str) -> int:
    headers, body = to_binary(CloudEvent({"type": "t", "source": "/s", "id": event_id}, b"x"))
    async with aiohttp.ClientSession() as s, s.post(url, headers=headers, data=body) as r:
        return r.status


async def test_a_restarted_controller_loads_every_broker_and_trigger_before_it_delivers(
    tmp_path: Path, server: RunningAPIServer
) -> None:
    dls = await Subscriber(clock=SystemClock()).start()
    down = f"http://127.0.0.1:{free_loopback_port()}/"  # nothing listens: the subscriber is down
    delivery = {
        "retry": 1,
        "backoffPolicy": "linear",
        "backoffDelay": "PT0.1S",
        "deadLetterSink": {"uri": dls.url},
    }
    broker, trigger = broker_obj(delivery=delivery), trigger_obj("all", down)
    client.CoreV1Api(server.api_client()).create_namespace({"metadata": {"name": NAMESPACE}})
    api = client.CustomObjectsApi(server.api_client())
    for plural, obj in (("brokers", broker), ("triggers", trigger)):
        api.create_namespaced_custom_object("eventing.knative.dev", "v1", NAMESPACE, plural, obj)
    db = tmp_path / "broker.db"
    # Before the restart: an event stored for the Trigger, not delivered yet.
    before = BrokerCore(db, no_refs)
    before.apply_broker(broker)
    before.apply_trigger(trigger)
    await before.start(deliver=False)
    assert await post(before.broker_url(NAMESPACE, "default"), "stored") == 202
    await before.stop()

    ctl = EventingController(server.api_client(), db, clock=SystemClock())
    await ctl.start(sync_timeout_s=30.0)
    try:
        # As start() returns, before the work loop has reconciled anything, the route has its
        # Broker's delivery: the stored event is retried, then dead-lettered, not dropped.
        route = ctl.core.routes.route(f"{NAMESPACE}/all")
        assert route is not None
        assert (route.policy.retry, route.policy.dead_letter_sink) == (1, {"uri": dls.url})
        assert not ctl.core.held
        await dls.wait_for(1)
        assert dls.ids() == ["stored"]
        # the dead-letter sink's 2xx is committed just after it answered
        deadline = asyncio.get_running_loop().time() + 10.0
        while await ctl.core.delivery_counts() != {"dead_lettered": 1}:
            assert asyncio.get_running_loop().time() < deadline, await ctl.core.delivery_counts()
            await asyncio.sleep(0.01)
    finally:
        await ctl.stop()
        await dls.stop()
