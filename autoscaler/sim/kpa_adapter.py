"""The simulator's hold on ``autoscaler.kpa``: one ``RevisionAutoscaler`` per simulated revision.

Implements the ``RevisionAutoscaler`` seam of ``autoscaler.sim.seams`` on the KPA library (the
same code one-machine mode runs). The simulator reports the revision-wide concurrency of each
1 s bucket as one report (the queue-proxies and the activator summed, nothing proxied counted
twice); a request reaching a revision at zero records the activator's report and ticks at once
(the poke); annotation patches go through ``RevisionScaling.from_annotations`` and
``update_scaling``, windows kept, as on a live revision.

Quiet spells: a revision with replicas and no request for longer than its stable window plus
scale-down delay gets the same decision tick after tick until a timer of the scale-to-zero
path ends (marking inactive, grace period, retention). ``quiet_until`` finds that tick by
evaluating the KPA's own ``reconcile`` on copies of the scaler state (doubling then halving the
look-ahead), so the simulator skips the identical ticks in between. This is what makes a day
of 600 revisions with ten-minute keep-alives or ``min-scale: 1`` affordable.

Steady spells: a revision at its count with a light, steady trickle of requests decides the same
count tick after tick while every per-second concurrency stays at most one pod's target (see
``autoscaler.kpa.horizon``). ``steady`` asks that module, and checks the scaler's reconcile is a
fixed point, so the simulator can skip ticks until the load could leave that band.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping

from autoscaler.kpa import (
    CONCURRENCY,
    AutoscalerConfig,
    RevisionAutoscaler,
    RevisionScaling,
    Stat,
)
from autoscaler.kpa.decision import ScaleDecision
from autoscaler.kpa.horizon import steady_count
from autoscaler.kpa.scaler import DEFAULT_ACTIVATION_TIMEOUT_S, reconcile

POD_NAME = "revision"  # one report per second for the whole revision
QUIET_MARGIN_S = 4.0  # two ticks past the windows before a spell counts as quiet
QUIET_LOOKAHEAD_S = 86400.0  # the furthest a quiet spell is looked ahead


class KpaRevision:
    """One revision's KPA behind the simulator's seam."""

    def __init__(
        self,
        annotations: Mapping[str, str],
        *,
        container_concurrency: int = 0,
        config: AutoscalerConfig | None = None,
        now_s: float = 0.0,
    ) -> None:
        self.config = config or AutoscalerConfig()
        self.container_concurrency = container_concurrency
        scaling = RevisionScaling.from_annotations(annotations, container_concurrency, self.config)
        self.kpa = RevisionAutoscaler(self.config, scaling, now=now_s)
        self.last: ScaleDecision | None = None

    def record(self, second_s: float, concurrency: float) -> None:
        self.kpa.record(
            second_s,
            Stat(pod_name=POD_NAME, average_concurrent_requests=concurrency, timestamp=second_s),
        )

    def record_many(self, seconds_s: list[float], concurrency: list[float]) -> None:
        """``record`` for each pair, in order, in one call (the KPA's batch write)."""
        self.kpa.record_many(seconds_s, POD_NAME, concurrency, [0.0] * len(seconds_s))

    def decide(self, now_s: float, ready_replicas: int) -> int:
        self.last = self.kpa.tick(now_s, ready_pods=ready_replicas, reachable=True)
        return self.last.desired_pods

    def poke(self, now_s: float, in_system: float, ready_replicas: int) -> int:
        """A request at zero: the activator's report, then a decision at once."""
        self.record(now_s, in_system)
        return self.decide(now_s, ready_replicas)

    def update_annotations(self, annotations: Mapping[str, str]) -> None:
        scaling = RevisionScaling.from_annotations(
            annotations, self.container_concurrency, self.config
        )
        self.kpa.update_scaling(scaling)

    @property
    def quiet_after_s(self) -> float:
        """How long without requests before the decision depends on timers alone."""
        spec = self.kpa.spec
        return spec.stable_window_s + spec.scale_down_delay_s + QUIET_MARGIN_S

    @property
    def target_per_pod(self) -> float:
        return self.kpa.spec.target_per_pod

    @property
    def stable_window_s(self) -> float:
        return self.kpa.spec.stable_window_s

    @property
    def panic_window_s(self) -> float:
        return self.kpa.spec.panic_window_s

    def steady(self, now_s: float, ready_replicas: int, peak: float, tick_s: float) -> bool:
        """After a tick at ``now_s``: will every tick decide the same while each per-second
        concurrency stays in ``(0, peak]``?"""
        last = self.last
        if last is None or not last.has_data or last.stable_concurrency <= 0:
            return False
        if self.kpa.spec.metric != CONCURRENCY:  # the simulator bounds concurrency only
            return False
        steady = steady_count(self.kpa.spec, ready_replicas, last.panic_mode, peak)
        if steady is None or steady.desired_pods != last.decider_desired_pods:
            return False
        current = (last.desired_pods, last.want_pods, last.activator_in_path, last.state)
        return self._probe(now_s + tick_s, ready_replicas) == current

    def _probe(self, now_s: float, ready: int) -> tuple[int, int, bool, str]:
        last = self.last
        assert last is not None
        state = dataclasses.replace(self.kpa.scaler_state)
        out = reconcile(
            self.kpa.spec,
            state,
            last.decider_desired_pods,
            last.excess_burst_capacity,
            ready,
            True,
            now_s,
            DEFAULT_ACTIVATION_TIMEOUT_S,
        )
        return out.desired_pods, out.want_pods, out.activator_in_path, out.condition

    def quiet_until(
        self, now_s: float, ready_replicas: int, tick_s: float, limit_s: float
    ) -> float:
        """The last tick time (``now + k * tick``, at most ``limit_s``) with the same decision.

        Call right after a tick at ``now_s``, only when no request came for ``quiet_after_s``.
        Returns ``now_s`` when the very next tick may differ.
        """
        last = self.last
        if last is None:
            return now_s
        current = (last.desired_pods, last.want_pods, last.activator_in_path, last.state)
        if self._probe(now_s + tick_s, ready_replicas) != current:
            return now_s
        limit_s = min(limit_s, now_s + QUIET_LOOKAHEAD_S)
        max_k = max(1, math.floor((limit_s - now_s) / tick_s))
        good, k = 1, 2
        while k <= max_k and self._probe(now_s + k * tick_s, ready_replicas) == current:
            good, k = k, k * 2
        if k > max_k:
            if self._probe(now_s + max_k * tick_s, ready_replicas) == current:
                return now_s + max_k * tick_s
            k = max_k
        bad = k  # probe(bad) differs, probe(good) equals: halve the gap
        while bad - good > 1:
            mid = (good + bad) // 2
            if self._probe(now_s + mid * tick_s, ready_replicas) == current:
                good = mid
            else:
                bad = mid
        return now_s + good * tick_s


@dataclasses.dataclass(frozen=True)
class KpaFactory:
    """Makes a ``KpaRevision`` per revision from its starting annotations."""

    config: AutoscalerConfig = dataclasses.field(default_factory=AutoscalerConfig)

    def __call__(self, annotations: Mapping[str, str], container_concurrency: int) -> KpaRevision:
        return KpaRevision(
            annotations, container_concurrency=container_concurrency, config=self.config
        )
