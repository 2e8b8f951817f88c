"""The broker core: route table, durable store, ingress server and delivery loop together.

This is the object the Broker/Trigger reconciler drives: it hands over plain
``eventing.knative.dev/v1`` object dicts (``apply_broker``, ``apply_trigger``, ``delete_*``) and
a subscriber resolver ``resolve(ref, namespace) -> url | None``; it reads the ingress address
from ``url`` / ``broker_url()`` for the status it writes (``autoscaler.eventing.status``). One
core serves any number of Brokers from one SQLite file and one 127.0.0.1 port, as Knative's
multi-tenant broker serves every Broker from one ingress and one filter deployment.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aiohttp import web
from cloudevents.http import CloudEvent
from prometheus_client import CollectorRegistry

from autoscaler.clock import Clock, SystemClock
from autoscaler.eventing.committer import Committer
from autoscaler.eventing.destination import Resolver
from autoscaler.eventing.dispatcher import Dispatcher
from autoscaler.eventing.events import (
    ARRIVAL_TIME,
    TTL_ATTRIBUTE,
    InvalidEvent,
    arrival_time,
    canonical_string,
)
from autoscaler.eventing.ingress import Unavailable, make_ingress_app
from autoscaler.eventing.metrics import BrokerMetrics
from autoscaler.eventing.routes import RouteTable
from autoscaler.eventing.settings import BrokerSettings
from autoscaler.eventing.status import broker_url
from autoscaler.eventing.store import EventStore

__all__ = ["BrokerCore", "BrokerStarting", "UnknownBroker"]

log = logging.getLogger(__name__)


class UnknownBroker(LookupError):
    """An event for a Broker that does not exist."""


class BrokerStarting(Unavailable):
    """An event sent while the core is held: its Brokers and Triggers are not all loaded."""


class BrokerCore:
    """Ingress, store and delivery of every Broker of one machine.

    ``await start()`` opens the store and binds the ingress; ``await stop()`` stops taking
    events, lets deliveries in flight finish and closes the store. Events stored and not yet
    delivered are delivered by the next core started on the same ``db_path``, once the
    Triggers they were for are applied again.
    """

    def __init__(
        self,
        db_path: str | Path,
        resolve: Resolver,
        *,
        settings: BrokerSettings | None = None,
        clock: Clock | None = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.db_path = Path(db_path)
        self.settings = settings or BrokerSettings()
        self.clock: Clock = clock or SystemClock()
        self.metrics = BrokerMetrics(registry)
        self.routes = RouteTable()
        self._resolve = resolve
        self._committer: Committer | None = None
        self._dispatcher: Dispatcher | None = None
        self._runner: web.AppRunner | None = None
        self._loop_task: asyncio.Task[None] | None = None
        self._url: str | None = None
        self._held = False
        self._deliver = False

    # -- objects --------------------------------------------------------------------------

    def apply_broker(self, broker: Mapping[str, Any]) -> None:
        """Add or update a Broker object; ``InvalidObject`` says what is wrong with it."""
        self.routes.apply_broker(broker)

    def apply_trigger(self, trigger: Mapping[str, Any]) -> None:
        """Add or update a Trigger object; ``InvalidObject`` says what is wrong with it."""
        self.routes.apply_trigger(trigger)
        self._wake()  # its stored deliveries (after a restart) may be due

    async def delete_broker(self, namespace: str, name: str) -> int:
        """Remove a Broker; pending deliveries of its events are abandoned. How many."""
        keys = self.routes.delete_broker(namespace, name)
        return await self._abandon(keys)

    async def delete_trigger(self, namespace: str, name: str) -> int:
        """Remove a Trigger; its pending deliveries are abandoned. How many."""
        key = self.routes.delete_trigger(namespace, name)
        return await self._abandon([key])

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self, *, deliver: bool = True, hold: bool = False) -> None:
        """Open the store, bind the ingress and (unless ``deliver=False``) run the loop.

        With ``deliver=False`` nothing is sent until ``deliver_due()`` is called: the tick that
        tests drive with a ``ManualClock``. With ``hold=True`` the ingress answers 503 and the
        loop does not run until ``release()``: the reconciler loads every Broker and Trigger
        in between, so no event is routed, and no stored one delivered, on a partial table.
        """
        store = EventStore(self.db_path, synchronous=self.settings.sqlite_synchronous)
        self._committer = Committer(store)
        self._dispatcher = Dispatcher(
            self._committer,
            self.routes,
            self._resolve,
            metrics=self.metrics,
            clock=self.clock,
            settings=self.settings,
        )
        await self._dispatcher.open()
        app = make_ingress_app(
            self.accept,
            metrics=self.metrics,
            max_event_bytes=self.settings.max_event_bytes,
        )
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.settings.host, self.settings.port)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self._url = f"http://{host}:{port}"
        self._held = hold
        self._deliver = deliver
        if not hold:
            self._run_loop()
        log.info("broker ingress on %s, store %s", self._url, self.db_path)

    def release(self) -> None:
        """End the hold of ``start(hold=True)``: take events and (with ``deliver``) deliver."""
        if self._dispatcher is None:
            raise RuntimeError("the broker core is not started")
        if self._held:
            self._held = False
            self._run_loop()
            log.info("broker ingress %s takes events", self._url)

    @property
    def held(self) -> bool:
        """Whether the core is started and held (``start(hold=True)``, not yet released)."""
        return self._held

    def _run_loop(self) -> None:
        if self._deliver and self._dispatcher is not None and self._loop_task is None:
            self._loop_task = asyncio.get_running_loop().create_task(self._dispatcher.run())

    async def stop(self) -> None:
        """Stop taking events, finish deliveries in flight, close the store."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._dispatcher is not None:
            self._dispatcher.stop()
            if self._loop_task is not None:
                await self._loop_task
                self._loop_task = None
            await self._dispatcher.close()
            self._dispatcher = None
        if self._committer is not None:
            await self._committer.close()
            self._committer = None
        self._url = None
        self._held = False

    @property
    def url(self) -> str:
        """The ingress base URL, ``http://127.0.0.1:<port>``."""
        if self._url is None:
            raise RuntimeError("the broker core is not started")
        return self._url

    def broker_url(self, namespace: str, name: str) -> str:
        """The address of one Broker: what its ``status.address.url`` says."""
        return broker_url(self.url, namespace, name)

    # -- data path ------------------------------------------------------------------------

    async def accept(self, namespace: str, broker: str, event: CloudEvent) -> None:
        """Store an event for a Broker (committed when this returns); ``UnknownBroker``,
        ``BrokerStarting`` while held."""
        if self._held:
            raise BrokerStarting(
                "the broker is starting and has not loaded its Brokers and Triggers yet; "
                "send the event again shortly"
            )
        if not self.routes.has_broker(namespace, broker):
            raise UnknownBroker(f"{namespace}/{broker}")
        if TTL_ATTRIBUTE in event.get_attributes():
            _check_ttl(event[TTL_ATTRIBUTE])
        else:
            event[TTL_ATTRIBUTE] = str(self.settings.default_ttl)
        now = self.clock.wall()
        event[ARRIVAL_TIME] = arrival_time(now)
        record = self.routes.plan(namespace, broker, event)
        await self._store().call(lambda s: s.insert_event(record, now))
        if record.trigger_keys:
            self._wake()

    async def deliver_due(self) -> int:
        """Deliver everything due now and wait for the outcomes; the number of attempts."""
        if self._dispatcher is None:
            raise RuntimeError("the broker core is not started")
        return await self._dispatcher.deliver_due()

    async def delivery_counts(self) -> dict[str, int]:
        """Deliveries by state (subscriber, dead_letter, delivered, dead_lettered, ...)."""
        return await self._store().call(lambda s: s.state_counts())

    async def prune(self) -> int:
        """Delete events whose deliveries are all over; how many."""
        return await self._store().call(lambda s: s.prune())

    def _store(self) -> Committer:
        if self._committer is None:
            raise RuntimeError("the broker core is not started")
        return self._committer

    def _wake(self) -> None:
        if self._dispatcher is not None:
            self._dispatcher.wake()

    async def _abandon(self, keys: list[str]) -> int:
        if not keys or self._committer is None:
            return 0
        now = self.clock.wall()
        return await self._committer.call(lambda s: s.abandon(keys, now))


def _check_ttl(value: Any) -> None:
    """``InvalidEvent`` unless a ``knativebrokerttl`` sent in is a whole number above 0: as
    Knative's ingress, an event whose hops are used up (or unreadable) is refused, not stored."""
    text = canonical_string(value)
    if not text.isascii() or not text.isdigit() or int(text) <= 0:
        raise InvalidEvent(
            f"extension {TTL_ATTRIBUTE} must be an integer above 0 (the hops the event has "
            f"left), got {text!r}"
        )
