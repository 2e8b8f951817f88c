"""The seam between the controller and its metric sources: ``MetricSource`` and what it is asked.

The controller calls ``observe(revisions, now_s)`` once per tick with one ``RevisionRef`` per
revision it tunes and gets back one ``RevisionObservation`` (autoscaler.tuner.observation) per
revision, or ``None`` (or no key) when there is no data for that revision this tick: the
controller then holds its values and sets the MetricsAvailable condition to False. A failure of
the whole source (Prometheus down, a query rejected) raises ``MetricsUnavailable`` instead.
A source may keep, in ``last_reasons``, why each revision of its last ``observe`` got what it
got; the controller puts the reason of a revision with no data in the condition's message.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from autoscaler.tuner.observation import (
    KNATIVE_DEFAULT_UTILIZATION_PERCENTAGE,
    RevisionObservation,
)

__all__ = [
    "MetricSource",
    "MetricsUnavailable",
    "ReplicaEndpoint",
    "RevisionKey",
    "RevisionRef",
]


class MetricsUnavailable(RuntimeError):
    """The metric source as a whole could not answer this tick; the message says why."""


@dataclass(frozen=True, order=True, slots=True)
class RevisionKey:
    """A revision's identity: its namespace and name."""

    namespace: str
    revision: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.revision}"


@dataclass(frozen=True, slots=True)
class ReplicaEndpoint:
    """One replica (pod) of a revision and the URLs its queue-proxy serves its metrics on.

    Knative's queue-proxy serves the autoscaling gauges on port 9090 (Prometheus text before
    1.6, the autoscaler's ``Stat`` in protobuf since) and the user-facing request metrics on
    9091; one-machine mode serves both as text on one URL. All URLs of a replica are read and
    merged. ``gauge_urls``: those of them with only the concurrency gauges, all a sampling round
    between ticks reads (empty: all of ``urls``); one of them failing leaves the gauges out.
    The replica counts as answered when every other URL did (and at least one URL).
    """

    pod: str
    urls: tuple[str, ...]
    gauge_urls: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.pod:
            raise ValueError("ReplicaEndpoint.pod: must not be empty")
        if isinstance(self.urls, str):
            object.__setattr__(self, "urls", (self.urls,))
        if not self.urls:
            raise ValueError(f"ReplicaEndpoint {self.pod!r}: needs at least one URL")
        if isinstance(self.gauge_urls, str):
            object.__setattr__(self, "gauge_urls", (self.gauge_urls,))
        if not set(self.gauge_urls) <= set(self.urls):
            raise ValueError(f"ReplicaEndpoint {self.pod!r}: gauge_urls must be among urls")


@dataclass(frozen=True, slots=True)
class RevisionRef:
    """What a source needs to know about one revision for one tick.

    ``applied_target`` and ``target_utilization_percentage`` are the values in force on the
    revision (copied into the observation so the tuner knows what the KPA aimed at).
    ``replicas`` are the scrape endpoints (direct source only). ``ready_replicas`` is the ready
    pod count the controller read from the API (None: unknown; the Prometheus source then counts
    the pods that export request metrics). ``container_concurrency`` is the revision's
    ``containerConcurrency`` (0: none), copied into the observation: Knative caps the target at it.
    """

    namespace: str
    revision: str
    configuration: str = ""
    service: str = ""
    applied_target: float | None = None
    target_utilization_percentage: float = KNATIVE_DEFAULT_UTILIZATION_PERCENTAGE
    replicas: tuple[ReplicaEndpoint, ...] = ()
    ready_replicas: int | None = None
    container_concurrency: int = 0

    @property
    def key(self) -> RevisionKey:
        return RevisionKey(self.namespace, self.revision)


class MetricSource(Protocol):
    """Gives the tuner one observation per revision and tick."""

    async def observe(
        self, revisions: Sequence[RevisionRef], now_s: float
    ) -> dict[RevisionKey, RevisionObservation | None]:
        """Observations for the interval ending at ``now_s`` (monotonic seconds).

        Raises ``MetricsUnavailable`` when the source as a whole failed.
        """
        ...

    @property
    def sample_period_s(self) -> float:
        """How often ``sample`` wants to be called between ticks (0: never)."""
        ...

    async def sample(self, revisions: Sequence[RevisionRef], now_s: float) -> None:
        """Between ticks: sample ``revisions``' replicas (as listed now) at ``now_s`` (the clock
        of ``observe``), for the next observation's figures. Never raises for a replica that
        does not answer."""
        ...

    async def close(self) -> None:
        """Release connections; the source can not be used afterwards."""
        ...
