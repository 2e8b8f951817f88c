"""The scaling loop of one-machine mode: queue-proxy and activator reports into the KPA, decisions
out to the revision pools (Knative's autoscaler process, ``pkg/autoscaler/scaling/multiscaler.go``).

Each report is recorded into its revision's ``RevisionAutoscaler``; every ``tick_interval_s`` (2 s,
as Knative) every revision is decided; a poke (the activator saw a request for a revision at zero,
or a report shows requests while the last decision was zero) decides that revision at once. The
decision sets the pool's desired replica count and whether the activator stays in the path, and is
handed to ``on_decision`` (the reconciler writes it into PodAutoscaler and Revision status, and the
autoscaler gauges are exported from it).

``tick(now)`` and ``decide(key, now)`` are synchronous and take ``now``: tests drive them directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from prometheus_client import CollectorRegistry, Gauge

from autoscaler.clock import Clock
from autoscaler.kpa import AutoscalerConfig, RevisionAutoscaler, RevisionScaling, ScaleDecision
from autoscaler.runtime.spec import RevisionKey
from autoscaler.runtime.stats import Stat

log = logging.getLogger(__name__)

TICK_INTERVAL_S = 2.0


class ScaleTarget(Protocol):
    """What the loop needs of the data plane."""

    def set_desired(self, key: RevisionKey, n: int) -> None: ...
    def set_activator_in_path(self, key: RevisionKey, in_path: bool) -> None: ...
    def ready_replicas(self, key: RevisionKey) -> int: ...


DecisionCallback = Callable[[RevisionKey, ScaleDecision], None]

GAUGE_LABELS = ("namespace_name", "configuration_name", "revision_name")


class AutoscalerGauges:
    """Knative's autoscaler gauges, per revision, from each decision."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._gauges: dict[str, Gauge] = {}
        self._registry = registry

    def update(self, key: RevisionKey, configuration: str, decision: ScaleDecision) -> None:
        for name, value in decision.gauges().items():
            gauge = self._gauges.get(name)
            if gauge is None:
                gauge = Gauge(
                    name, f"Knative autoscaler {name}", GAUGE_LABELS, registry=self._registry
                )
                self._gauges[name] = gauge
            gauge.labels(key.namespace, configuration, key.name).set(value)

    def remove(self, key: RevisionKey, configuration: str) -> None:
        for gauge in self._gauges.values():
            with contextlib.suppress(KeyError):
                gauge.remove(key.namespace, configuration, key.name)


@dataclass
class _Revision:
    kpa: RevisionAutoscaler
    configuration: str
    reachable: bool
    last: ScaleDecision | None = None


class ScalingLoop:
    def __init__(
        self,
        target: ScaleTarget,
        clock: Clock,
        *,
        config: AutoscalerConfig | None = None,
        tick_interval_s: float = TICK_INTERVAL_S,
        on_decision: DecisionCallback | None = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self._target = target
        self._clock = clock
        self.config = config or AutoscalerConfig()
        self.tick_interval_s = tick_interval_s
        self._on_decision = on_decision
        self._revisions: dict[RevisionKey, _Revision] = {}
        self.gauges = AutoscalerGauges(registry) if registry is not None else None
        self._poked: set[RevisionKey] = set()
        self._wake = asyncio.Event()

    # -- revisions -------------------------------------------------------------------------------
    def add_revision(
        self,
        key: RevisionKey,
        scaling: RevisionScaling,
        *,
        configuration: str,
        reachable: bool,
        initialized: bool = False,
        active: bool = True,
    ) -> None:
        """Start autoscaling a revision: it begins activating, at initial-scale, unless it was
        ``initialized`` before a restart (``RevisionAutoscaler.restore``; not ``active``: at
        zero). Already known: its scaling and reachability are updated."""
        if key in self._revisions:
            self.update_scaling(key, scaling)
            self.set_reachable(key, reachable)
            return
        kpa = RevisionAutoscaler(self.config, scaling, now=self._clock.now())
        if initialized:
            kpa.restore(self._clock.now(), active=active)
        self._revisions[key] = _Revision(kpa, configuration, reachable)
        self.poke(key)

    def update_scaling(self, key: RevisionKey, scaling: RevisionScaling) -> None:
        rev = self._revisions[key]
        if rev.kpa.scaling != scaling:
            rev.kpa.update_scaling(scaling, self._clock.now())
            self.poke(key)

    def set_reachable(self, key: RevisionKey, reachable: bool) -> None:
        rev = self._revisions[key]
        if rev.reachable != reachable:
            rev.reachable = reachable
            self.poke(key)

    def remove_revision(self, key: RevisionKey) -> None:
        rev = self._revisions.pop(key, None)
        if rev is not None and self.gauges is not None:
            self.gauges.remove(key, rev.configuration)

    def has(self, key: RevisionKey) -> bool:
        return key in self._revisions

    def last_decision(self, key: RevisionKey) -> ScaleDecision | None:
        rev = self._revisions.get(key)
        return None if rev is None else rev.last

    # -- inputs ----------------------------------------------------------------------------------
    def record(self, key: RevisionKey, stat: Stat) -> None:
        rev = self._revisions.get(key)
        if rev is None:
            return
        rev.kpa.record(self._clock.now(), stat)
        if rev.kpa.should_poke(stat):
            self.poke(key)

    def poke(self, key: RevisionKey) -> None:
        """Decide this revision at the next turn of the loop, not at the next tick."""
        self._poked.add(key)
        self._wake.set()

    # -- deciding --------------------------------------------------------------------------------
    def decide(self, key: RevisionKey, now: float) -> ScaleDecision | None:
        rev = self._revisions.get(key)
        if rev is None:
            return None
        decision = rev.kpa.tick(
            now, ready_pods=self._target.ready_replicas(key), reachable=rev.reachable
        )
        self._target.set_desired(key, decision.desired_pods)
        self._target.set_activator_in_path(key, decision.activator_in_path)
        previous, rev.last = rev.last, decision
        if self.gauges is not None:
            self.gauges.update(key, rev.configuration, decision)
        if previous is None or previous.desired_pods != decision.desired_pods:
            log.info("%s: %d pods (%s)", key, decision.desired_pods, decision.reason)
        if self._on_decision is not None:
            self._on_decision(key, decision)
        return decision

    def tick(self, now: float) -> dict[RevisionKey, ScaleDecision]:
        self._poked.clear()
        out = {}
        for key in list(self._revisions):
            decision = self.decide(key, now)
            if decision is not None:
                out[key] = decision
        return out

    async def run(self) -> None:
        """Tick every interval; decide poked revisions as soon as they are poked."""
        next_tick = self._clock.now()
        while True:
            now = self._clock.now()
            if now >= next_tick:
                self.tick(now)
                next_tick = now + self.tick_interval_s
            else:
                for key in list(self._poked):
                    self._poked.discard(key)
                    self.decide(key, now)
            self._wake.clear()
            sleeper = asyncio.ensure_future(
                self._clock.sleep(max(0.0, next_tick - self._clock.now()))
            )
            waker = asyncio.ensure_future(self._wake.wait())
            try:
                await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                sleeper.cancel()
                waker.cancel()
