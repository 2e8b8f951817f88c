"""The delivery loop: at-least-once delivery of stored events to Trigger subscribers.

Mirrors what Knative's broker filter does for each (event, trigger) pair (eventing
``pkg/broker/filter/filter_handler.go`` and ``pkg/kncloudevents/event_dispatcher.go``): POST the
event in binary mode with ``Prefer: reply`` to the subscriber; a 2xx delivers it, and an event
in that response is a reply that goes back into the same Broker with ``knativebrokerttl`` one
lower (dropped at 0, which stops reply loops); a failure is retried per the delivery policy,
then sent to the dead-letter sink with the ``knativeerror*`` extensions, or dropped with a log
line and a metric when there is none.

Subscribers at cluster addresses go through ``BrokerSettings.proxy_url`` when set (one-machine
mode: its ingress, which routes them by Host as cluster DNS and Knative's ingress would).

Every step is a committed store update, so a restart resumes where the last one stopped and a
subscriber that answered 2xx is not sent the event again. The only gap is the moment between a
2xx and its commit, which at-least-once delivery allows. ``deliver_due()`` is the synchronous
tick tests drive with a ``ManualClock``; ``run()`` is the thin loop around the same steps.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from cloudevents.http import CloudEvent

from autoscaler.clock import Clock
from autoscaler.eventing.committer import Committer
from autoscaler.eventing.delivery import is_retryable
from autoscaler.eventing.destination import Resolver, resolve_destination
from autoscaler.eventing.events import (
    TTL_ATTRIBUTE,
    InvalidEvent,
    decode_reply,
    encode_binary,
    event_from_record,
    make_event,
    with_dead_letter_extensions,
)
from autoscaler.eventing.metrics import BrokerMetrics
from autoscaler.eventing.routes import Route, RouteTable
from autoscaler.eventing.settings import BrokerSettings
from autoscaler.eventing.store import DeliveryRow, EventStore, NewEvent

__all__ = ["Attempt", "Dispatcher"]

log = logging.getLogger(__name__)
# deliver_due() repeats while the same instant keeps producing due work (dead-letter phase,
# replies, retries without backoff); a reply loop is bounded by the TTL, this by a count.
_MAX_ROUNDS_PER_TICK = 10_000
# Due times are wall seconds (~1.7e9), where float sums lose about 2e-7 s: 0.2 s + 0.4 s after
# an attempt can land a hair past "0.6 s". Treat anything due within a microsecond as due.
_DUE_SLACK_S = 1e-6
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


@dataclass(frozen=True)
class Attempt:
    """What one POST came back with; ``status`` is None when there was no response."""

    target: str
    status: int | None
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class Dispatcher:
    """Sends pending deliveries and records every outcome in the store."""

    def __init__(
        self,
        committer: Committer,
        routes: RouteTable,
        resolve: Resolver,
        *,
        metrics: BrokerMetrics,
        clock: Clock,
        settings: BrokerSettings,
        on_new_work: Callable[[], None] | None = None,
    ) -> None:
        self._committer = committer
        self._routes = routes
        self._resolve = resolve
        self._metrics = metrics
        self._clock = clock
        self._settings = settings
        self._session: aiohttp.ClientSession | None = None
        self._inflight: dict[tuple[int, str], asyncio.Task[None]] = {}
        self._wakeup = asyncio.Event()
        self._stopping = False
        self._on_new_work = on_new_work

    async def open(self) -> None:
        connector = aiohttp.TCPConnector(limit=self._settings.max_inflight_deliveries)
        timeout = aiohttp.ClientTimeout(total=self._settings.request_timeout_s)
        self._session = aiohttp.ClientSession(connector=connector, timeout=timeout)

    def stop(self) -> None:
        """Ask ``run()`` to return after its current step."""
        self._stopping = True
        self.wake()

    async def close(self) -> None:
        """Let deliveries in flight finish (up to the drain timeout), then close."""
        self.stop()
        if self._inflight:
            _, pending = await asyncio.wait(
                list(self._inflight.values()), timeout=self._settings.drain_timeout_s
            )
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None

    def wake(self) -> None:
        """New work may be due: an event was accepted or a delivery finished."""
        self._wakeup.set()

    # -- the tick -------------------------------------------------------------------------

    async def deliver_due(self) -> int:
        """Deliver everything due at the clock's current time, waiting for each outcome.

        Work that becomes due at the same instant (a dead-letter phase, a reply, a retry
        without backoff) is delivered too. Returns the number of attempts made.
        """
        made = 0
        for _ in range(_MAX_ROUNDS_PER_TICK):
            rows = await self._fetch_due(self._settings.max_inflight_deliveries)
            if not rows:
                return made
            await asyncio.gather(*(self._attempt(row) for row in rows))
            made += len(rows)
        raise RuntimeError(f"deliver_due: still busy after {_MAX_ROUNDS_PER_TICK} rounds")

    # -- the loop -------------------------------------------------------------------------

    async def run(self) -> None:
        """Deliver as work becomes due until ``close()``; prunes finished events now and then."""
        last_prune = self._clock.now()
        while not self._stopping:
            self._wakeup.clear()
            capacity = self._settings.max_inflight_deliveries - len(self._inflight)
            if capacity > 0:
                for row in await self._fetch_due(capacity):
                    self._start(row)
            if self._clock.now() - last_prune >= self._settings.prune_interval_s:
                last_prune = self._clock.now()
                await self._committer.call(lambda s: s.prune())
            await self._wait_for_work()

    def _start(self, row: DeliveryRow) -> None:
        key = (row.event_seq, row.trigger_key)
        task = asyncio.get_running_loop().create_task(self._attempt(row))
        self._inflight[key] = task

        def finished(_: asyncio.Task[None]) -> None:
            self._inflight.pop(key, None)
            self.wake()

        task.add_done_callback(finished)

    async def _wait_for_work(self) -> None:
        now = self._clock.wall() + _DUE_SLACK_S
        keys = self._routes.keys()
        # Rows due now are in flight or wait for capacity; a finishing task wakes us for
        # those. Only future rows need a timer.
        next_at = await self._committer.call(lambda s: s.next_due_at(keys, after=now))
        waiters: list[asyncio.Future[Any]] = [asyncio.ensure_future(self._wakeup.wait())]
        if next_at is not None:
            waiters.append(asyncio.ensure_future(self._clock.sleep(next_at - now)))
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()

    async def _fetch_due(self, limit: int) -> list[DeliveryRow]:
        now = self._clock.wall() + _DUE_SLACK_S
        keys = self._routes.keys()
        skip = len(self._inflight)
        rows = await self._committer.call(lambda s: s.due(now, keys, limit + skip))
        fresh = [r for r in rows if (r.event_seq, r.trigger_key) not in self._inflight]
        return fresh[:limit]

    # -- one attempt ----------------------------------------------------------------------

    async def _attempt(self, row: DeliveryRow) -> None:
        route = self._routes.route(row.trigger_key)
        if route is None:
            return  # deleted meanwhile; its rows are being abandoned
        try:
            if row.state == "subscriber":
                await self._to_subscriber(row, route)
            else:
                await self._to_dead_letter_sink(row, route)
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug must not kill the loop; the row stays pending
            log.exception(
                "delivery of event %s to %s failed unexpectedly", row.event_seq, row.trigger_key
            )

    async def _to_subscriber(self, row: DeliveryRow, route: Route) -> None:
        event = event_from_record(row.attributes_json, row.data)
        url = resolve_destination(route.subscriber, route.namespace, self._resolve)
        outgoing = _without(event, TTL_ATTRIBUTE)
        if url is None:
            attempt = Attempt(
                target=f"unresolved subscriber {dict(route.subscriber)!r}", status=None
            )
        else:
            attempt = await self._post(url, outgoing, prefer_reply=True)
        if not attempt.ok:
            await self._failed(row, route, attempt)
            return
        reply = self._reply(row, route, event, attempt)
        now = self._clock.wall()

        def commit(store: EventStore) -> None:
            if reply is not None:
                store.insert_event(reply, now)
            store.record_final(row.event_seq, row.trigger_key, "delivered", now)

        await self._committer.call(commit)
        labels = (route.namespace, route.broker, route.name)
        self._metrics.delivered.labels(*labels).inc()
        self._metrics.latency.labels(*labels).observe(max(0.0, now - row.accepted_at))
        if reply is not None:
            self._metrics.replies.labels(*labels).inc()
            self._notify()

    async def _to_dead_letter_sink(self, row: DeliveryRow, route: Route) -> None:
        event = event_from_record(row.attributes_json, row.data)
        url = resolve_destination(route.policy.dead_letter_sink, route.namespace, self._resolve)
        marked = with_dead_letter_extensions(
            event, destination=row.error_dest or "", status=row.error_code, body=row.error_data
        )
        if url is None:
            attempt = Attempt(target="unresolved dead letter sink", status=None)
        else:
            attempt = await self._post(url, marked, prefer_reply=False)
        if not attempt.ok:
            await self._failed(row, route, attempt)
            return
        now = self._clock.wall()
        await self._committer.call(
            lambda s: s.record_final(row.event_seq, row.trigger_key, "dead_lettered", now)
        )
        self._metrics.dead_lettered.labels(route.namespace, route.broker, route.name).inc()
        log.info(
            "event %s for trigger %s went to the dead letter sink after %s (status %s)",
            event["id"],
            route.key,
            row.error_dest,
            row.error_code,
        )

    async def _failed(self, row: DeliveryRow, route: Route, attempt: Attempt) -> None:
        labels = (route.namespace, route.broker, route.name)
        now = self._clock.wall()
        retries_made = row.attempts
        policy = route.policy
        if is_retryable(attempt.status) and retries_made < policy.retry:
            next_at = now + policy.backoff_s(retries_made)
            await self._committer.call(
                lambda s: s.record_retry(row.event_seq, row.trigger_key, row.attempts + 1, next_at)
            )
            self._metrics.retried.labels(*labels).inc()
            return
        reason = "retries_exhausted" if is_retryable(attempt.status) else "not_retryable"
        if row.state == "subscriber" and policy.dead_letter_sink is not None:
            await self._committer.call(
                lambda s: s.record_dead_letter(
                    row.event_seq,
                    row.trigger_key,
                    now=now,
                    error_code=attempt.status,
                    error_dest=attempt.target,
                    error_data=attempt.body or None,
                )
            )
            self._notify()
            return
        if row.state == "dead_letter":
            reason = "dead_letter_sink_failed"
        elif policy.dead_letter_sink is None:
            reason = f"{reason}_no_dead_letter_sink"
        await self._committer.call(
            lambda s: s.record_final(row.event_seq, row.trigger_key, "dropped", now)
        )
        self._metrics.dropped.labels(*labels, reason).inc()
        log.warning(
            "dropped event seq=%s for trigger %s: %s after %d attempt(s), last answer %s from %s",
            row.event_seq,
            route.key,
            reason,
            row.attempts + 1,
            attempt.status,
            attempt.target,
        )

    def _reply(
        self, row: DeliveryRow, route: Route, event: CloudEvent, attempt: Attempt
    ) -> NewEvent | None:
        try:
            reply = decode_reply(attempt.headers, attempt.body)
        except InvalidEvent as exc:
            log.warning("trigger %s: subscriber replied with an invalid event: %s", route.key, exc)
            return None
        if reply is None:
            return None
        ttl = _ttl(event, self._settings.default_ttl) - 1
        if ttl <= 0:
            log.warning(
                "trigger %s: reply %s dropped, %s reached 0", route.key, reply["id"], TTL_ATTRIBUTE
            )
            self._metrics.dropped.labels(
                route.namespace, route.broker, route.name, "ttl_exhausted"
            ).inc()
            return None
        reply[TTL_ATTRIBUTE] = str(ttl)
        return self._routes.plan(row.namespace, row.broker, reply)

    async def _post(self, url: str, event: CloudEvent, *, prefer_reply: bool) -> Attempt:
        assert self._session is not None, "Dispatcher.open() was not called"
        headers, body = encode_binary(event)
        if prefer_reply:
            headers["Prefer"] = "reply"
        proxy = self._settings.proxy_url or None
        parts = urlsplit(url)
        if proxy is not None and parts.hostname in _LOOPBACK:
            proxy = None
        if proxy is not None and not parts.path:
            url += "/"  # a proxy is sent the absolute URL, which needs a path
        try:
            async with self._session.post(url, data=body, headers=headers, proxy=proxy) as response:
                payload = await response.content.read(self._settings.max_event_bytes)
                return Attempt(url, response.status, dict(response.headers), payload)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            message = f"dispatch error: {type(exc).__name__}: {exc}"
            return Attempt(url, None, {}, message.encode())

    def _notify(self) -> None:
        self.wake()
        if self._on_new_work is not None:
            self._on_new_work()


def _ttl(event: CloudEvent, default: int) -> int:
    with contextlib.suppress(KeyError, TypeError, ValueError):
        return int(event[TTL_ATTRIBUTE])
    return default


def _without(event: CloudEvent, name: str) -> CloudEvent:
    attributes = dict(event.get_attributes())
    attributes.pop(name, None)
    return make_event(attributes, event.get_data())
