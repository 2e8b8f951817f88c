"""Knative's activator: buffer at zero, poke the autoscaler, balance, retry, report.

Mirrors pkg/activator of knative/serving (handler, net/throttler.go, concurrency reporter):

- per revision, a request waits (FIFO, bounded queue) while the revision has no ready replica
  or, with containerConcurrency > 0, no free slot; past the queue bound it gets 503 with
  ``Retry-After``;
- as Knative's activator timeout handler does, the revision's timeoutSeconds (``set_targets``'s
  ``timeout_s``; ``ActivatorSettings.request_timeout_s``, Knative's 300 s default, for a revision
  that has none) bounds the request's whole stay, buffering and proxying: past it the answer is
  504 ("activator request timeout"). The remaining time goes to the queue-proxy as its deadline;
- a request whose client went away (its handler cancelled) leaves the queue and the concurrency
  count at once, and is not proxied;
- the first request that finds a revision at zero calls ``poke(revision)`` (again at most once per
  ``poke_interval_s`` while it stays at zero), so the scaling loop decides at once;
- it balances across ready replicas: least loaded (by its own in-flight count) when
  containerConcurrency > 0, round robin otherwise, and sends through the replica's queue-proxy
  marked as proxied;
- it never drops an accepted request because a replica went away: a request the replica refused
  is retried on another replica (or waits for one). A request the replica took and then lost
  (killed mid-request) is retried too when ``retry_sent`` is on (the default, since inference is
  side-effect free); Knative retries only the former.
- each ``stat_period_s`` it reports its own per-revision ``Stat`` (pod name ``activator``; the
  time-weighted concurrency of the requests it holds, buffered ones included) to ``on_stat``;
  the first request of a revision with nothing reported for it (none in flight at the last
  report, none since) is reported at once, as concurrency 1 and one request, and taken off the
  period's report, as Knative's activator does: the KPA then scales a revision at zero from it,
  not a report period later.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from autoscaler.clock import Clock
from autoscaler.runtime.proxy import (
    ProxyRequest,
    ProxyResponse,
    UpstreamUnavailable,
    error_response,
)
from autoscaler.runtime.spec import RevisionKey
from autoscaler.runtime.stats import (
    ACTIVATOR_FIRST_POD_NAME,
    ACTIVATOR_POD_NAME,
    RequestStats,
    Stat,
)

log = logging.getLogger(__name__)

PokeSink = Callable[[RevisionKey], None]
StatSink = Callable[[RevisionKey, Stat], None]


class Target(Protocol):
    """A replica as the activator and ingress see it: its queue-proxy."""

    name: str

    async def forward(
        self, request: ProxyRequest, proxied: bool = False, deadline: float | None = None
    ) -> ProxyResponse:
        """Proxy ``request``; ``deadline`` (clock time) bounds the whole stay, as a timeout."""
        ...


@dataclass(frozen=True)
class ActivatorSettings:
    # A revision's timeoutSeconds when it has none of its own (Knative's default, 300 s).
    request_timeout_s: float = 300.0
    max_queue: int = 10_000  # Knative's breakerQueueDepth
    retry_after_s: int = 1
    poke_interval_s: float = 1.0
    stat_period_s: float = 1.0
    retry_sent: bool = True

    def __post_init__(self) -> None:
        if self.request_timeout_s <= 0:
            raise ValueError(f"request_timeout_s={self.request_timeout_s}: must be > 0")
        if self.max_queue < 0:
            raise ValueError(f"max_queue={self.max_queue}: must be >= 0")


class _Refused(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _TimedOut(Exception):
    """The request's timeout ran out while it waited for a replica."""


@dataclass(eq=False)
class _Waiter:
    future: asyncio.Future[Target]
    exclude: frozenset[Target]


@dataclass
class _Revision:
    key: RevisionKey
    stats: RequestStats
    container_concurrency: int = 0
    timeout_s: float | None = None  # the revision's timeoutSeconds; None: the default
    targets: list[Target] = field(default_factory=list)
    # requests in flight per target: keyed by the target itself, not its name (a replica
    # restarted in its Pod keeps the name, and its new run is another target)
    load: dict[Target, int] = field(default_factory=dict)
    waiters: deque[_Waiter] = field(default_factory=deque)
    rr: itertools.count[int] = field(default_factory=itertools.count)
    poked_at: float | None = None
    # reported each period from its first request until a period with none in flight at all
    # (Knative's stats entry for the revision), and whether that first request went out at once
    active: bool = False
    first_reported: float = 0.0

    def pick(self, exclude: frozenset[Target] = frozenset()) -> Target | None:
        cc = self.container_concurrency
        n = len(self.targets)
        if n == 0:
            return None
        start = next(self.rr) % n
        best: Target | None = None
        best_load = 0
        for i in range(n):
            t = self.targets[(start + i) % n]
            if t in exclude:
                continue
            load = self.load.get(t, 0)
            if cc and load >= cc:
                continue
            if not cc:
                return t  # round robin
            if best is None or load < best_load:
                best, best_load = t, load
        return best

    def take(self, target: Target) -> Target:
        self.load[target] = self.load.get(target, 0) + 1
        return target

    def release(self, target: Target) -> None:
        left = self.load.get(target, 0) - 1
        if left > 0:
            self.load[target] = left
        else:
            self.load.pop(target, None)
        self.dispatch()

    def dispatch(self) -> None:
        """Hand free slots to waiters in arrival order."""
        if not self.waiters or not self.targets:
            return
        kept: deque[_Waiter] = deque()
        while self.waiters:
            w = self.waiters.popleft()
            if w.future.done():
                continue
            t = self.pick(w.exclude)
            if t is None:
                kept.append(w)
                if not w.exclude:  # nothing free for anyone without exclusions either
                    kept.extend(self.waiters)
                    self.waiters.clear()
                    break
                continue
            w.future.set_result(self.take(t))
        self.waiters = kept


class Activator:
    def __init__(
        self,
        clock: Clock,
        settings: ActivatorSettings | None = None,
        on_poke: PokeSink | None = None,
        on_stat: StatSink | None = None,
    ) -> None:
        self.clock = clock
        self.settings = settings or ActivatorSettings()
        self.on_poke = on_poke
        self.on_stat = on_stat
        self._revisions: dict[RevisionKey, _Revision] = {}
        self._reporter: asyncio.Task[None] | None = None
        self.started_at = clock.now()

    # -- configuration (the pool keeps this current) ------------------------------------------

    def _revision(self, key: RevisionKey) -> _Revision:
        rev = self._revisions.get(key)
        if rev is None:
            rev = self._revisions[key] = _Revision(key, RequestStats(self.clock.now()))
        return rev

    def set_targets(
        self,
        key: RevisionKey,
        targets: Sequence[Target],
        container_concurrency: int,
        timeout_s: float | None = None,
    ) -> None:
        """The revision's ready replicas, containerConcurrency and, when given, timeoutSeconds."""
        if timeout_s is not None and timeout_s <= 0:
            raise ValueError(f"timeoutSeconds={timeout_s}: must be > 0")
        rev = self._revision(key)
        rev.targets = list(targets)
        rev.container_concurrency = container_concurrency
        if timeout_s is not None:
            rev.timeout_s = timeout_s
        rev.load = {t: c for t, c in rev.load.items() if t in rev.targets}
        if rev.targets:
            rev.poked_at = None
        rev.dispatch()

    def remove_revision(self, key: RevisionKey) -> None:
        rev = self._revisions.pop(key, None)
        if rev is None:
            return
        for w in rev.waiters:
            if not w.future.done():
                w.future.set_exception(_Refused(f"revision {key} was removed"))
        rev.waiters.clear()

    def queued(self, key: RevisionKey) -> int:
        rev = self._revisions.get(key)
        return 0 if rev is None else sum(1 for w in rev.waiters if not w.future.done())

    def in_flight(self, key: RevisionKey) -> int:
        rev = self._revisions.get(key)
        return 0 if rev is None else rev.stats.in_flight

    # -- the data path -----------------------------------------------------------------------

    async def handle(self, key: RevisionKey, request: ProxyRequest) -> ProxyResponse:
        rev = self._revision(key)
        now = self.clock.now()
        first = not rev.active
        if first:  # the period starts with it, not at the revision's last report
            rev.stats.begin(now)
        rev.stats.request_in(now)
        if first:
            rev.active = True
            rev.first_reported = 1.0
            self._send_stat(key, Stat(
                ACTIVATOR_FIRST_POD_NAME,
                average_concurrent_requests=1.0,
                request_count=1.0,
                process_uptime_s=now - self.started_at,
                timestamp=self.clock.wall(),
            ))  # fmt: skip
        timeout_s = self.settings.request_timeout_s if rev.timeout_s is None else rev.timeout_s
        deadline = now + timeout_s
        exclude: set[Target] = set()
        try:
            while True:
                target = await self._acquire(rev, frozenset(exclude), deadline)
                try:
                    return await target.forward(request, proxied=True, deadline=deadline)
                except UpstreamUnavailable as exc:
                    if exc.sent and not self.settings.retry_sent:
                        return error_response(502, str(exc))
                    log.info("retrying a request for %s elsewhere: %s", key, exc)
                    exclude.add(target)
                finally:
                    rev.release(target)
        except _TimedOut:
            return error_response(
                504,
                f"activator request timeout: revision {key} had no replica to answer within "
                f"its timeoutSeconds ({timeout_s:g}s)",
            )
        except _Refused as exc:
            return error_response(
                503, exc.reason, {"Retry-After": str(self.settings.retry_after_s)}
            )
        finally:
            # Also when the client went away (the handler is cancelled): it counts no longer.
            rev.stats.request_out(self.clock.now())

    async def _acquire(self, rev: _Revision, exclude: frozenset[Target], deadline: float) -> Target:
        if not rev.waiters:
            t = rev.pick(exclude)
            if t is not None:
                return rev.take(t)
        if not rev.targets:
            self._maybe_poke(rev)
        if len(rev.waiters) >= self.settings.max_queue:
            raise _Refused(
                f"revision {rev.key}: activator queue full ({self.settings.max_queue} waiting)"
            )
        fut: asyncio.Future[Target] = asyncio.get_running_loop().create_future()
        waiter = _Waiter(fut, exclude)
        rev.waiters.append(waiter)
        timer = asyncio.ensure_future(self.clock.sleep(max(0.0, deadline - self.clock.now())))
        try:
            await asyncio.wait((fut, timer), return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            # The caller went away after a slot was handed to it: give the slot back.
            if fut.done() and not fut.cancelled() and fut.exception() is None:
                rev.release(fut.result())
            raise
        finally:
            timer.cancel()
            if not fut.done():
                fut.cancel()
                with contextlib.suppress(ValueError):
                    rev.waiters.remove(waiter)
        if fut.cancelled():
            raise _TimedOut()
        return fut.result()

    def _maybe_poke(self, rev: _Revision) -> None:
        now = self.clock.now()
        if rev.poked_at is not None and now - rev.poked_at < self.settings.poke_interval_s:
            return
        rev.poked_at = now
        if self.on_poke is not None:
            try:
                self.on_poke(rev.key)
            except Exception:
                log.exception("poke failed for %s", rev.key)

    # -- the per-second Stat -----------------------------------------------------------------

    def report(self) -> dict[RevisionKey, Stat]:
        """Close the period for every revision with traffic since the last period that had
        none (that one is reported too, as zero)."""
        now = self.clock.now()
        out: dict[RevisionKey, Stat] = {}
        for key, rev in list(self._revisions.items()):
            if not rev.active:
                continue
            stat = rev.stats.report(
                now, ACTIVATOR_POD_NAME, now - self.started_at, self.clock.wall()
            )
            if stat.average_concurrent_requests == 0 and rev.stats.in_flight == 0:
                rev.active = False  # a period with nothing in flight: its last report
            if rev.first_reported:
                # the first request went out at once: not counted twice (concurrency at
                # least 0, as the period's average may be under the 1 reported)
                first, rev.first_reported = rev.first_reported, 0.0
                stat = replace(
                    stat,
                    average_concurrent_requests=max(stat.average_concurrent_requests - first, 0.0),
                    request_count=stat.request_count - first,
                )
            out[key] = stat
            self._send_stat(key, stat)
        return out

    def _send_stat(self, key: RevisionKey, stat: Stat) -> None:
        if self.on_stat is not None:
            try:
                self.on_stat(key, stat)
            except Exception:
                log.exception("stat sink failed for %s", key)

    async def start(self) -> None:
        if self._reporter is None:
            self._reporter = asyncio.get_running_loop().create_task(self._report_loop())

    async def _report_loop(self) -> None:
        while True:
            await self.clock.sleep(self.settings.stat_period_s)
            self.report()

    async def close(self) -> None:
        if self._reporter is not None:
            self._reporter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reporter
            self._reporter = None
        for key in list(self._revisions):
            self.remove_revision(key)
