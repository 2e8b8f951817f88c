"""Leader election on a coordination.k8s.io/v1 Lease, with fencing.

Same rules as client-go's leaderelection: a candidate takes the Lease when it is free or when the
holder has not renewed it for ``lease_duration_s`` as measured on the candidate's own clock since it
last saw the record change; every write carries the Lease's resourceVersion, so two candidates
cannot both win. Fencing: the leader counts itself leader only until ``renew_deadline_s`` after its
last successful renewal (shorter than the lease duration), so a leader that was cut off stops
writing before anyone else can take over. ``is_leader()`` is what writers check before each write.

Every Lease call is bounded, as client-go bounds a renewal by its renew deadline: an attempt's
calls share ``renew_deadline_s`` as their request timeout, and each goes out once (the elector's
own client does not retry a request; the next round is the retry), so an API connection that
goes silent costs one attempt, not the election. A release on shutdown is bounded the same way.

Lease times are ``metav1.MicroTime``: always written with six fraction digits (the API server
refuses a time without them, and Python's ``isoformat`` drops a zero fraction).
"""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import urllib3
from kubernetes import client
from kubernetes.client.rest import ApiException

from ..clock import Clock, SystemClock

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ElectionConfig:
    namespace: str
    name: str
    identity: str
    lease_duration_s: float = 15.0
    renew_deadline_s: float = 10.0
    retry_period_s: float = 2.0

    def __post_init__(self) -> None:
        if not 0 < self.retry_period_s < self.renew_deadline_s < self.lease_duration_s:
            raise ValueError(
                "leader election needs retry_period_s < renew_deadline_s < lease_duration_s, got "
                f"retry_period_s={self.retry_period_s}, renew_deadline_s={self.renew_deadline_s}, "
                f"lease_duration_s={self.lease_duration_s}"
            )


class MicroTime(dt.datetime):
    """A Lease time as ``metav1.MicroTime`` is written: RFC 3339 in UTC with six fraction
    digits, always (the client sends a datetime's ``isoformat()``, which drops a zero fraction,
    and the API server refuses a MicroTime without one)."""

    def isoformat(self, sep: str = "T", timespec: str = "microseconds") -> str:
        return self.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    @classmethod
    def of(cls, value: dt.datetime) -> MicroTime:
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        v = value.astimezone(dt.UTC)
        return cls(v.year, v.month, v.day, v.hour, v.minute, v.second, v.microsecond, dt.UTC)


def _micro_time(wall_s: float) -> MicroTime:
    return MicroTime.of(dt.datetime.fromtimestamp(wall_s, tz=dt.UTC))


def _as_micro_times(spec: client.V1LeaseSpec) -> client.V1LeaseSpec:
    """``spec`` with its times as ``MicroTime`` (a lease read back carries plain datetimes)."""
    if isinstance(spec.acquire_time, dt.datetime):
        spec.acquire_time = MicroTime.of(spec.acquire_time)
    if isinstance(spec.renew_time, dt.datetime):
        spec.renew_time = MicroTime.of(spec.renew_time)
    return spec


def _once(api_client: client.ApiClient) -> client.ApiClient:
    """A client on the same configuration whose requests go out once: the HTTP library would
    otherwise repeat an idempotent request after a read timeout, each with the full timeout."""
    configuration = copy.deepcopy(api_client.configuration)
    configuration.retries = False
    return client.ApiClient(configuration)


class LeaderElector:
    def __init__(
        self, api_client: client.ApiClient, config: ElectionConfig, clock: Clock | None = None
    ) -> None:
        self.config = config
        self._api = client.CoordinationV1Api(_once(api_client))
        self._clock = clock or SystemClock()
        self._observed: tuple[str | None, str | None] | None = None  # (holder, renewTime)
        self._observed_at = 0.0
        self._renewed_at: float | None = None
        # Terms of leadership won: every acquisition, and a renewal after the renew deadline
        # had passed (this candidate was not leader in between and another may have led).
        self.transitions = 0

    def is_leader(self) -> bool:
        """True while this candidate holds the lease and its last renewal is recent enough."""
        return (
            self._renewed_at is not None
            and self._clock.now() - self._renewed_at < self.config.renew_deadline_s
        )

    def _timeout(self, started: float) -> float:
        """The request timeout of a call in an attempt begun at ``started``: what is left of
        the renew deadline (at least a tenth of it, so a late call is not refused outright)."""
        deadline = self.config.renew_deadline_s
        return max(deadline / 10, deadline - (self._clock.now() - started))

    def try_acquire_or_renew(self) -> bool:
        """One attempt (blocking I/O, bounded by the renew deadline). True when this candidate
        holds the lease afterwards."""
        try:
            return self._try_acquire_or_renew()
        except (OSError, urllib3.exceptions.HTTPError) as exc:  # a timeout: this attempt failed
            log.info("leader election %s/%s: %s", self.config.namespace, self.config.name, exc)
            return False

    def _try_acquire_or_renew(self) -> bool:
        cfg = self.config
        now = self._clock.now()
        wall = _micro_time(self._clock.wall())
        try:
            lease = self._api.read_namespaced_lease(
                cfg.name, cfg.namespace, _request_timeout=self._timeout(now)
            )
        except ApiException as exc:
            if exc.status != 404:
                log.info("reading lease %s/%s: %s", cfg.namespace, cfg.name, exc.reason)
                return False
            body = client.V1Lease(
                metadata=client.V1ObjectMeta(name=cfg.name, namespace=cfg.namespace),
                spec=client.V1LeaseSpec(
                    holder_identity=cfg.identity,
                    lease_duration_seconds=int(cfg.lease_duration_s),
                    acquire_time=wall,
                    renew_time=wall,
                    lease_transitions=0,
                ),
            )
            try:
                self._api.create_namespaced_lease(
                    cfg.namespace, body, _request_timeout=self._timeout(now)
                )
            except ApiException as create_exc:
                log.info("creating lease: %s", create_exc.reason)
                return False
            self._won(now, acquired=True)
            return True

        spec = lease.spec or client.V1LeaseSpec()
        record = (spec.holder_identity, str(spec.renew_time))
        if record != self._observed:
            self._observed, self._observed_at = record, now
        held_by_other = spec.holder_identity not in (None, "", cfg.identity)
        duration = float(spec.lease_duration_seconds or cfg.lease_duration_s)
        if held_by_other and now < self._observed_at + duration:
            self._renewed_at = None
            return False
        acquired = spec.holder_identity != cfg.identity
        if acquired:
            spec.acquire_time = wall
            spec.lease_transitions = (spec.lease_transitions or 0) + 1
        spec.holder_identity = cfg.identity
        spec.lease_duration_seconds = int(cfg.lease_duration_s)
        spec.renew_time = wall
        lease.spec = _as_micro_times(spec)
        try:
            self._api.replace_namespaced_lease(
                cfg.name, cfg.namespace, lease, _request_timeout=self._timeout(now)
            )
        except ApiException as exc:
            log.info("renewing lease: %s", exc.reason)  # 409: someone else wrote first
            return False
        self._won(now, acquired)
        return True

    def _won(self, now: float, acquired: bool) -> None:
        if acquired or not self.is_leader():
            self.transitions += 1
            log.info("%s is now the leader of %s", self.config.identity, self.config.name)
        self._renewed_at = now
        self._observed = None

    def release(self) -> None:
        """Give the lease up on a clean shutdown so another candidate need not wait it out."""
        if self._renewed_at is None:
            return
        self._renewed_at = None
        cfg = self.config
        started = self._clock.now()
        try:
            lease = self._api.read_namespaced_lease(
                cfg.name, cfg.namespace, _request_timeout=self._timeout(started)
            )
            if lease.spec and lease.spec.holder_identity == cfg.identity:
                lease.spec.holder_identity = None
                lease.spec.lease_duration_seconds = 1
                lease.spec = _as_micro_times(lease.spec)
                self._api.replace_namespaced_lease(
                    cfg.name, cfg.namespace, lease, _request_timeout=self._timeout(started)
                )
        except ApiException as exc:
            log.info("releasing lease: %s", exc.reason)
        except (OSError, urllib3.exceptions.HTTPError) as exc:  # the lease expires on its own
            log.info("releasing lease %s/%s: %s", cfg.namespace, cfg.name, exc)

    async def run(
        self,
        on_started: Callable[[], Awaitable[None]] | None = None,
        on_stopped: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """Try every retry period for ever; call the callbacks on each change of leadership."""
        leading = False
        try:
            while True:
                await asyncio.to_thread(self.try_acquire_or_renew)
                now_leading = self.is_leader()
                if now_leading and not leading and on_started is not None:
                    await on_started()
                if leading and not now_leading and on_stopped is not None:
                    await on_stopped()
                leading = now_leading
                await self._clock.sleep(self.config.retry_period_s)
        finally:
            await asyncio.to_thread(self.release)
