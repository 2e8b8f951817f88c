"""The seams between the simulator and the pure cores it drives: Protocols, one per role.

- ``RevisionAutoscaler``: one revision's KPA as the simulator drives it. It takes the
  revision-wide average concurrency of each finished 1 s bucket, decides every 2 s (and at once
  when a request reaches a revision at zero: the activator's poke), and takes new annotations
  when a policy patches the live revision. ``autoscaler.sim.kpa_adapter`` implements it on
  ``autoscaler.kpa``.
- ``Policy`` / ``RevisionPolicy``: what a compared policy does: the annotations a revision
  starts with and, at the policy's own ticks, a chance to change them (as the tuner patches a
  live revision). Adding a policy is one small class; see ``autoscaler.sim.policies``.
- ``HoldingAutoscaler``: the optional part of the first, with which the simulator skips the
  ticks it can prove decide alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from autoscaler.sim.model import ModelSpec
from autoscaler.tuner.observation import RevisionObservation

Annotations = Mapping[str, str]


class RevisionAutoscaler(Protocol):
    """One revision's KPA, fed and asked by the simulator."""

    def record(self, second_s: float, concurrency: float) -> None:
        """The average in-system concurrency of the bucket ``[second_s, second_s + 1)``."""
        ...

    def record_many(self, seconds_s: list[float], concurrency: list[float]) -> None:
        """``record`` for each pair, in order: the simulator hands over its buckets in batches,
        always before the next ``decide``, ``poke`` or ``update_annotations``."""
        ...

    def decide(self, now_s: float, ready_replicas: int) -> int:
        """The replica count to run now (scale bounds and scale to zero applied)."""
        ...

    def poke(self, now_s: float, in_system: float, ready_replicas: int) -> int:
        """A request reached the revision at zero: the activator reports it and asks at once."""
        ...

    def update_annotations(self, annotations: Annotations) -> None:
        """The live revision's autoscaling annotations changed."""
        ...

    @property
    def quiet_after_s(self) -> float:
        """Seconds without requests after which decisions depend on timers alone."""
        ...

    def quiet_until(
        self, now_s: float, ready_replicas: int, tick_s: float, limit_s: float
    ) -> float:
        """The last tick (``now_s + k * tick_s`` <= ``limit_s``) whose decision is unchanged."""
        ...

    @property
    def target_per_pod(self) -> float:
        """The concurrency one pod should carry (target x utilization)."""
        ...

    @property
    def stable_window_s(self) -> float: ...

    @property
    def panic_window_s(self) -> float: ...

    def steady(self, now_s: float, ready_replicas: int, peak: float, tick_s: float) -> bool:
        """After a tick: every tick decides the same while per-second load is in (0, peak]."""
        ...


class HoldingAutoscaler(RevisionAutoscaler, Protocol):
    """An autoscaler that can also prove ticks alike (optional: the simulator asks for these
    when the autoscaler has them; ``autoscaler.sim.kpa_adapter.KpaRevision`` does)."""

    def hold(self, now_s: float, ready_replicas: int, tick_s: float) -> Any:
        """After a decision: the band its window averages may move in and decide the same."""
        ...

    def holds(self, hold: Any, now_s: float, ready_replicas: int) -> bool: ...

    def holds_for(self, hold: Any, ready_replicas: int) -> bool: ...

    def holds_every_bucket(self, hold: Any, now_s: float) -> bool: ...

    def note_time(self, now_s: float) -> None:
        """A tick that decided as the last one did: only the time moves on."""
        ...

    def steady_band(
        self, now_s: float, ready_replicas: int, level: float, tick_s: float
    ) -> tuple[float, float] | None:
        """The per-second concurrency band every later tick decides the same in."""
        ...


class AutoscalerFactory(Protocol):
    def __call__(
        self, annotations: Annotations, container_concurrency: int
    ) -> RevisionAutoscaler: ...


class RevisionPolicy(Protocol):
    """A policy's hold on one revision."""

    def initial_annotations(self) -> dict[str, str]:
        """The revision's autoscaling annotations when it is created."""
        ...

    def next_tick_s(self, now_s: float) -> float:
        """When this policy next wants to look at the revision (``math.inf``: never)."""
        ...

    def tick(self, now_s: float, observation: RevisionObservation) -> dict[str, str] | None:
        """New annotations to patch onto the live revision, or None to leave them."""
        ...


class Policy(Protocol):
    """A named policy: makes one ``RevisionPolicy`` per model."""

    @property
    def name(self) -> str: ...

    def for_revision(self, model: ModelSpec) -> RevisionPolicy: ...
