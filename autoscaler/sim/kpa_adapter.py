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
evaluating the KPA's own ``reconcile`` on copies of the scaler state (the furthest tick, then
halving: each timer switches once), so the simulator skips the identical ticks in between. This is what makes a day
of 600 revisions with ten-minute keep-alives or ``min-scale: 1`` affordable.

Steady spells: a revision at its count with a light, steady trickle of requests decides the same
count tick after tick while every per-second concurrency stays at most one pod's target (see
``autoscaler.kpa.horizon``). ``steady`` asks that module, and checks the scaler's reconcile is a
fixed point, so the simulator can skip ticks until the load could leave that band.
``steady_band`` does the same at any count, for a band of per-second concurrency around the
current one that the windows already hold.

Held ticks: after a decision, ``hold`` says what later averages it holds for (a band per
window out of panic, the running maximum in panic, empty windows with the reconciler probed
at each tick) and ``holds`` checks a tick's averages against it, so the simulator skips the
``decide`` of a tick that would repeat the last one (``autoscaler.sim.revision``).
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
from autoscaler.kpa.horizon import (
    HoldBands,
    PanicHold,
    decides_alike,
    decides_alike_in_panic,
    hold_bands,
    panic_hold,
    steady_band,
    steady_count,
)
from autoscaler.kpa.scaler import DEFAULT_ACTIVATION_TIMEOUT_S, reconcile_values
from autoscaler.kpa.spec import ScalingSpec
from autoscaler.kpa.windows import bucket_count

POD_NAME = "revision"  # one report per second for the whole revision
QUIET_MARGIN_S = 4.0  # two ticks past the windows before a spell counts as quiet
QUIET_LOOKAHEAD_S = 86400.0  # the furthest a quiet spell is looked ahead


@dataclasses.dataclass(frozen=True, slots=True)
class Hold:
    """A decision and how long it holds (``autoscaler.kpa.horizon.HoldBands``), with what a
    check of single buckets needs: a bucket in ``[low, high]`` is in both bands.

    Without bands, a decision on empty windows (no data, or both averages zero): it holds
    while they stay empty and the reconciler, probed at the tick, answers the same.
    """

    spec: ScalingSpec
    ready: int
    bands: HoldBands | None
    buckets: int  # the stable window's buckets
    low: float
    high: float
    # With zeros in the band, the largest stable bucket at least this: an average of the
    # stable window's buckets then stays above zero after Knative's 6-digit floor.
    need: float
    averages: tuple[float, float] | None = None  # of an idle hold (no bands)
    panic: PanicHold | None = None  # of a hold in panic mode (no bands)

    @classmethod
    def of(cls, spec: ScalingSpec, ready: int, bands: HoldBands) -> Hold:
        buckets = bucket_count(spec.stable_window_s)
        return cls(
            spec,
            ready,
            bands,
            buckets,
            max(bands.stable_low, bands.panic_low),
            min(bands.stable_high, bands.panic_high),
            4e-6 * buckets if bands.stable_low <= 0.0 else 0.0,
        )

    @classmethod
    def idle(cls, spec: ScalingSpec, ready: int, averages: tuple[float, float] | None) -> Hold:
        """A decision on ``averages`` of ``(0, 0)`` or no data (None): no bucket is in it."""
        return cls(spec, ready, None, 1, 1.0, 0.0, math.inf, averages)


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
        # steady's answer for (last decision, spec, ready replicas, peak): see steady
        self._steady_memo: tuple[ScaleDecision, ScalingSpec, int, float, bool] | None = None
        # a probe's answer for (last decision, spec, ready replicas) at any time: see _probe
        self._probe_memo: (
            tuple[ScaleDecision, ScalingSpec, int, tuple[int, int, bool, str]] | None
        ) = None

    def record(self, second_s: float, concurrency: float) -> None:
        self.kpa.record(
            second_s,
            Stat(pod_name=POD_NAME, average_concurrent_requests=concurrency, timestamp=second_s),
        )

    def record_many(self, seconds_s: list[float], concurrency: list[float]) -> None:
        """``record`` for each pair, in order, in one call (the KPA's batch write)."""
        self.kpa.record_many(seconds_s, POD_NAME, concurrency)  # no request counts (rps 0)

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
        spec = self.kpa.spec
        if spec.metric != CONCURRENCY:  # the simulator bounds concurrency only
            return False
        memo = self._steady_memo
        if (
            memo is not None
            and memo[0] is last
            and memo[1] is spec
            and memo[2] == ready_replicas
            and memo[3] == peak
        ):
            return memo[4]
        steady = steady_count(spec, ready_replicas, last.panic_mode, peak)
        if steady is None or steady.desired_pods != last.decider_desired_pods:
            answer = False
        else:
            current = (last.desired_pods, last.want_pods, last.activator_in_path, last.state)
            answer = self._probe(now_s + tick_s, ready_replicas) == current
        # The same answer at a later tick with the same inputs: steady_count reads none of the
        # time, nor does the probe with the decider at one pod or more (see _probe).
        if steady is None or last.decider_desired_pods >= 1:
            self._steady_memo = (last, spec, ready_replicas, peak, answer)
        return answer

    def steady_band(
        self, now_s: float, ready_replicas: int, level: float, tick_s: float
    ) -> tuple[float, float] | None:
        """After a tick at ``now_s``: a band ``(low, high)`` around ``level`` such that every
        tick decides the same while each per-second concurrency stays in it, or None.

        The buckets the windows already hold must lie in the band too
        (``autoscaler.kpa.horizon.steady_band``).
        """
        last = self.last
        if last is None or not last.has_data or self.kpa.spec.metric != CONCURRENCY:
            return None
        band = steady_band(self.kpa.spec, ready_replicas, last.panic_mode, level)
        if band is None or band.desired_pods != last.decider_desired_pods:
            return None
        held = self.kpa.window_ranges(now_s)
        if held is None:
            return None
        (stable_min, stable_max), (panic_min, panic_max) = held
        if min(stable_min, panic_min) < band.low or max(stable_max, panic_max) > band.high:
            return None
        current = (last.desired_pods, last.want_pods, last.activator_in_path, last.state)
        if self._probe(now_s + tick_s, ready_replicas) != current:
            return None
        return band.low, band.high

    def hold(self, now_s: float, ready_replicas: int, tick_s: float) -> Hold | None:
        """After a tick at ``now_s``: the bands of the window averages in which the next ticks
        decide as this one did (``autoscaler.kpa.horizon.hold_bands``), or None. ``holds``
        checks them tick by tick."""
        last = self.last
        spec = self.kpa.spec
        if last is None or spec.metric != CONCURRENCY:
            return None
        if not last.has_data or (last.stable_concurrency == 0.0 and last.panic_concurrency == 0.0):
            # Empty windows: the decider decides alike while they stay so (out of panic and
            # without a scale-down delay window, which move with time); the reconciler's
            # timers are probed at each tick (holds).
            if last.panic_mode or spec.scale_down_delay_s > 0:
                return None
            averages = (0.0, 0.0) if last.has_data else None
            return Hold.idle(spec, ready_replicas, averages)
        if not last.stable_concurrency > 0:  # steady() reads it: both decisions above 0
            return None
        if last.panic_mode:
            panic_time, max_pods = self.kpa.panic_state
            in_panic = panic_hold(
                spec, ready_replicas, panic_time, max_pods, last.panic_concurrency
            )
            if (
                in_panic is None
                or in_panic.max_pods != last.decider_desired_pods
                or in_panic.max_pods < 1  # at zero the reconciler's timers would move
            ):
                return None
            current = (last.desired_pods, last.want_pods, last.activator_in_path, last.state)
            if self._probe(now_s + tick_s, ready_replicas) != current:
                return None
            return Hold(spec, ready_replicas, None, 1, 1.0, 0.0, math.inf, None, in_panic)
        bands = hold_bands(
            spec, ready_replicas, last.panic_mode, last.stable_concurrency, last.panic_concurrency
        )
        if bands is None or bands.desired_pods != last.decider_desired_pods:
            return None
        # the reconciler at a fixed point: with a count above zero it reads no timer, so one
        # look ahead covers every later tick with the same inputs
        current = (last.desired_pods, last.want_pods, last.activator_in_path, last.state)
        if self._probe(now_s + tick_s, ready_replicas) != current:
            return None
        return Hold.of(spec, ready_replicas, bands)

    def note_time(self, now_s: float) -> None:
        """A tick at ``now_s`` whose decision ``holds`` proved: the KPA notes the time only."""
        self.kpa.note_time(now_s)

    def holds_for(self, hold: Hold, ready_replicas: int) -> bool:
        """The hold's annotations and replicas are still the revision's."""
        return hold.spec is self.kpa.spec and hold.ready == ready_replicas

    def holds(self, hold: Hold, now_s: float, ready_replicas: int) -> bool:
        """Whether a tick at ``now_s`` (its buckets written) decides as the one that gave
        ``hold``: same annotations and replicas, averages on which the decider decides alike."""
        kpa = self.kpa
        if hold.spec is not kpa.spec or hold.ready != ready_replicas:  # holds_for
            return False
        averages = kpa.window_averages(now_s)
        if hold.panic is not None:
            return (
                averages is not None
                and averages[0] > 0.0
                and decides_alike_in_panic(hold.spec, ready_replicas, hold.panic, now_s, *averages)
            )
        if hold.bands is None:
            last = self.last
            if averages != hold.averages or last is None:
                return False
            current = (last.desired_pods, last.want_pods, last.activator_in_path, last.state)
            return self._probe(now_s, ready_replicas) == current
        if averages is None:
            return False
        return decides_alike(hold.spec, ready_replicas, hold.bands, averages[0], averages[1])

    def holds_every_bucket(self, hold: Hold, now_s: float) -> bool:
        """Whether every bucket each window averages at ``now_s`` is in that window's band,
        and one stable bucket at least ``hold.need``: then so are the averages, and ``hold``
        can be checked on the buckets recorded later alone (each in both bands)."""
        held = self.kpa.window_ranges(now_s)
        if held is None or hold.bands is None or hold.low > hold.high:
            return False
        (stable_min, stable_max), (panic_min, panic_max) = held
        return (
            hold.bands.stable_low <= stable_min
            and stable_max <= hold.bands.stable_high
            and stable_max >= hold.need
            and hold.bands.panic_low <= panic_min
            and panic_max <= hold.bands.panic_high
        )

    def _probe(self, now_s: float, ready: int) -> tuple[int, int, bool, str]:
        """What the reconciler would answer at ``now_s`` after the last decision, on a copy of
        its state: ``(desired, want, activator in path, condition)``."""
        last = self.last
        assert last is not None
        spec = self.kpa.spec
        memo = self._probe_memo
        if memo is not None and memo[0] is last and memo[1] is spec and memo[2] == ready:
            return memo[3]
        state = self.kpa.scaler_state.copy()
        desired, want, _, in_path, condition, _ = reconcile_values(
            spec,
            state,
            last.decider_desired_pods,
            last.excess_burst_capacity,
            ready,
            True,
            now_s,
            DEFAULT_ACTIVATION_TIMEOUT_S,
        )
        answer = (desired, want, in_path, condition)
        if last.decider_desired_pods >= 1:
            # The same answer at any time: the reconciler reads the time only on its way to
            # zero (scale to zero, activation timeout), and with the decider at one pod or more
            # the bounds keep its count above zero; the state it copies changes only in a
            # decision (a new ``last``).
            self._probe_memo = (last, spec, ready, answer)
        return answer

    def quiet_until(
        self, now_s: float, ready_replicas: int, tick_s: float, limit_s: float
    ) -> float:
        """The last tick time (``now + k * tick``, at most ``limit_s``) with the same decision.

        Call right after a tick at ``now_s``, only when no request came for ``quiet_after_s``.
        Returns ``now_s`` when the very next tick may differ.
        """
        last = self.last
        if last is None or not self.kpa.decider_settled(now_s + tick_s, ready_replicas):
            # a scale-down still stepping (rate limit, delay, panic): its ticks decide anew
            return now_s
        current = (last.desired_pods, last.want_pods, last.activator_in_path, last.state)
        if self._probe(now_s + tick_s, ready_replicas) != current:
            return now_s
        limit_s = min(limit_s, now_s + QUIET_LOOKAHEAD_S)
        max_k = max(1, math.floor((limit_s - now_s) / tick_s))
        # From one state with the decider's inputs fixed, each of the reconciler's timers
        # (stable window, grace, retention, activation timeout) switches once as time goes
        # on: the probes equal the current decision up to some tick and differ after it. So
        # the furthest tick first (a spell cut short by a policy tick is often whole), then
        # halving.
        if max_k == 1 or self._probe(now_s + max_k * tick_s, ready_replicas) == current:
            return now_s + max_k * tick_s
        good, bad = 1, max_k  # probe(bad) differs, probe(good) equals: halve the gap
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
