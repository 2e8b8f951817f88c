"""The delivery loop: at-least-once delivery of stored events to Trigger subscribers.

Mirrors what Knative's broker filter does for each (event, trigger) pair (eventing
``pkg/broker/filter/filter_handler.go`` and ``pkg/kncloudevents/event_dispatcher.go``): POST the
event with ``Prefer: reply`` to the subscriber, in binary mode (structured with the delivery's
``format: json``); a 2xx delivers it, and an event in that response is a reply that goes back
into the same Broker with ``knativebrokerttl`` one lower (dropped at 0, which stops reply
loops). A 202's body is never a reply (knative/specs ``data-plane.md``). A 2xx whose body is
neither empty nor a valid CloudEvent, or a reply over ``max_event_bytes``, is a failed attempt
with status 502, as Knative's filter answers. A failure is retried per the delivery policy,
then sent to the dead-letter sink with the ``knativeerror*`` extensions, or dropped with a log
line and a metric when there is none. An unexpected error during an attempt counts as a failed
attempt without a response, so it is retried, backed off and dead-lettered like one.

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
    ARRIVAL_TIME,
    TTL_ATTRIBUTE,
    InvalidEvent,
    arrival_time,
    decode_reply,
    encode_binary,
    encode_structured,
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
# Of a failed answer's body only the start is kept: knativeerrordata holds 1024 base64 chars.
_ERROR_BODY_BYTES = 4096
_BAD_GATEWAY = 502


class _BadReply(Exception):
    """A 2xx answer that is neither empty nor a valid CloudEvent; the message says why."""


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
            # One reading of the clock per round, for the fetch and the timer alike: a row due
            # is either fetched (due at ``now``) or timed (due after it), never neither.
            now = self._clock.wall() + _DUE_SLACK_S
            capacity = self._settings.max_inflight_deliveries - len(self._inflight)
            if capacity > 0:
                for row in await self._fetch_due(capacity, now):
                    self._start(row)
            if self._clock.now() - last_prune >= self._settings.prune_interval_s:
                last_prune = self._clock.now()
                await self._committer.call(lambda s: s.prune())
            await self._wait_for_work(now)

    def _start(self, row: DeliveryRow) -> None:
        key = (row.event_seq, row.trigger_key)
        task = asyncio.get_running_loop().create_task(self._attempt(row))
        self._inflight[key] = task

        def finished(_: asyncio.Task[None]) -> None:
            self._inflight.pop(key, None)
            self.wake()

        task.add_done_callback(finished)

    async def _wait_for_work(self, now: float) -> None:
        """Wait for a wake-up or the first row due after ``now``, the round's fetch time."""
        keys = self._routes.keys()
        # Rows due at ``now`` were fetched, or wait for capacity: a finishing task wakes us for
        # those. Rows due after it need a timer, also one that fell due since ``now`` was read
        # (its timer fires at once).
        next_at = await self._committer.call(lambda s: s.next_due_at(keys, after=now))
        waiters: list[asyncio.Future[Any]] = [asyncio.ensure_future(self._wakeup.wait())]
        if next_at is not None:
            delay = next_at - self._clock.wall()
            waiters.append(asyncio.ensure_future(self._clock.sleep(delay)))
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()

    async def _fetch_due(self, limit: int, now: float | None = None) -> list[DeliveryRow]:
        """Up to ``limit`` rows due at ``now`` (default: the clock's time) not in flight."""
        if now is None:
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
        except Exception as exc:
            # A bug must neither kill the loop nor leave the row due at once for ever: the
            # attempt failed without a response, so it is retried, backed off, dead-lettered.
            log.exception(
                "delivery of event %s to %s failed unexpectedly (attempt %d, counted as failed)",
                row.event_seq,
                row.trigger_key,
                row.attempts + 1,
            )
            attempt = Attempt(
                target=self._target(row, route),
                status=None,
                body=f"dispatch error: {type(exc).__name__}: {exc}".encode(),
            )
            try:
                await self._failed(row, route, attempt)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception(
                    "recording the failed attempt of event %s to %s failed",
                    row.event_seq,
                    row.trigger_key,
                )

    def _target(self, row: DeliveryRow, route: Route) -> str:
        """Where the row's attempt was going, for ``knativeerrordest``."""
        destination = (
            route.subscriber if row.state == "subscriber" else route.policy.dead_letter_sink
        )
        with contextlib.suppress(Exception):
            url = resolve_destination(destination, route.namespace, self._resolve)
            if url is not None:
                return url
        return f"trigger {route.key}"

    async def _to_subscriber(self, row: DeliveryRow, route: Route) -> None:
        event = event_from_record(row.attributes_json, row.data)
        url = resolve_destination(route.subscriber, route.namespace, self._resolve)
        outgoing = _without(event, TTL_ATTRIBUTE)
        if url is None:
            attempt = Attempt(
                target=f"unresolved subscriber {dict(route.subscriber)!r}", status=None
            )
        else:
            attempt = await self._post(
                url, outgoing, prefer_reply=True, structured=route.policy.structured
            )
        if not attempt.ok:
            await self._failed(row, route, attempt)
            return
        try:
            reply = self._reply(row, route, event, attempt)
        except _BadReply as exc:
            log.warning("trigger %s: delivery of event %s failed: %s", route.key, event["id"], exc)
            await self._failed(
                row, route, Attempt(attempt.target, _BAD_GATEWAY, {}, str(exc).encode())
            )
            return
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
            attempt = await self._post(
                url, marked, prefer_reply=False, structured=route.policy.structured
            )
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
        """The reply in a 2xx answer to route, None when there is none; ``_BadReply`` when the
        answer is neither empty nor a valid CloudEvent (Knative's filter answers 502)."""
        if attempt.status == 202:
            return None  # a 202's body MUST NOT be processed as a reply (data-plane.md)
        try:
            reply = decode_reply(attempt.headers, attempt.body)
        except InvalidEvent as exc:
            raise _BadReply(f"the subscriber's reply is not a valid CloudEvent: {exc}") from None
        if reply is None:
            if attempt.body:
                raise _BadReply(
                    f"the subscriber answered {attempt.status} with a {len(attempt.body)}-byte "
                    "body that is not a CloudEvent; a response must be empty or a valid CloudEvent"
                )
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
        reply[ARRIVAL_TIME] = arrival_time(self._clock.wall())  # as if sent to the ingress
        return self._routes.plan(row.namespace, row.broker, reply)

    async def _post(
        self, url: str, event: CloudEvent, *, prefer_reply: bool, structured: bool = False
    ) -> Attempt:
        """POST ``event``; the answer, with the whole body (up to ``max_event_bytes``) of a
        2xx that may carry a reply, the start of a failure's body, no body otherwise."""
        assert self._session is not None, "Dispatcher.open() was not called"
        headers, body = (encode_structured if structured else encode_binary)(event)
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
                status, answer_headers = response.status, dict(response.headers)
                if not 200 <= status < 300:
                    payload = await _read_body(response, _ERROR_BODY_BYTES, truncate=True)
                    return Attempt(url, status, answer_headers, payload or b"")
                if not prefer_reply or status == 202:
                    return Attempt(url, status, answer_headers)  # no reply to read
                limit = self._settings.max_event_bytes
                payload = await _read_body(response, limit, truncate=False)
                if payload is None:
                    message = (
                        f"the subscriber's {status} reply is over the limit of {limit} bytes "
                        "(max_event_bytes)"
                    )
                    log.warning("delivery to %s failed: %s", url, message)
                    return Attempt(url, _BAD_GATEWAY, {}, message.encode())
                return Attempt(url, status, answer_headers, payload)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            message = f"dispatch error: {type(exc).__name__}: {exc}"
            return Attempt(url, None, {}, message.encode())

    def _notify(self) -> None:
        self.wake()
        if self._on_new_work is not None:
            self._on_new_work()


async def _read_body(
    response: aiohttp.ClientResponse, limit: int, *, truncate: bool
) -> bytes | None:
    """The body up to EOF; past ``limit`` bytes its first ``limit`` bytes when ``truncate``,
    else None."""
    length = response.content_length
    if not truncate and length is not None and length > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await response.content.read(limit + 1 - size)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            return b"".join(chunks)[:limit] if truncate else None


def _ttl(event: CloudEvent, default: int) -> int:
    with contextlib.suppress(KeyError, TypeError, ValueError):
        return int(event[TTL_ATTRIBUTE])
    return default


def _without(event: CloudEvent, name: str) -> CloudEvent:
    attributes = dict(event.get_attributes())
    attributes.pop(name, None)
    return make_event(attributes, event.get_data())
