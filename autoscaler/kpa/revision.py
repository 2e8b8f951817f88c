"""One revision's KPA: collector, decider and reconciler joined behind ``record`` and ``tick``.

This is what Knative splits over the autoscaler's multiscaler (``pkg/autoscaler/scaling/
multiscaler.go``: the decider status, the "poke" when a revision at zero gets a request) and the
KPA reconciler; here it is one object per revision, driven with ``now``:

    kpa = RevisionAutoscaler(config, scaling)
    kpa.record(now, stat)                                  # every queue-proxy or activator report
    decision = kpa.tick(now, ready_pods=n, reachable=True)  # every 2 s, and on a poke
    kpa.update_scaling(new_scaling, now)                   # annotations changed: windows are kept

The decider is created on the first tick, with the ready pods seen then (so a driver restarted
next to running pods starts in panic mode, as Knative's autoscaler does after a restart).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from autoscaler.kpa.annotations import RevisionScaling
from autoscaler.kpa.collector import MetricCollector, Stat
from autoscaler.kpa.decider import Decider, initial_excess_burst_capacity
from autoscaler.kpa.decision import ScaleDecision
from autoscaler.kpa.scaler import (
    DEFAULT_ACTIVATION_TIMEOUT_S,
    INACTIVE,
    SCALE_UNKNOWN,
    ScalerState,
    new_scaler_state,
    reconcile_values,
)
from autoscaler.kpa.settings import AutoscalerConfig
from autoscaler.kpa.spec import ScalingSpec, resolve


class RevisionAutoscaler:
    """The Knative Pod Autoscaler for one revision; pure: no clock, no I/O."""

    __slots__ = (
        "_activation_timeout_s",
        "_collector",
        "_config",
        "_decider",
        "_desired",
        "_excess_burst_capacity",
        "_last_now",
        "_scaler",
        "_scaling",
        "_spec",
    )

    def __init__(
        self,
        config: AutoscalerConfig,
        scaling: RevisionScaling,
        *,
        now: float = 0.0,
        activation_timeout_s: float = DEFAULT_ACTIVATION_TIMEOUT_S,
    ) -> None:
        """``now`` is when the revision was created (it starts activating then)."""
        if not scaling.is_kpa:
            raise ValueError(
                f"revision uses autoscaler class {scaling.autoscaler_class!r}, not KPA"
            )
        self._config = config
        self._scaling = scaling
        self._spec = resolve(config, scaling)
        self._activation_timeout_s = activation_timeout_s
        self._collector = MetricCollector(
            self._spec.stable_window_s, self._spec.panic_window_s, self._spec.weighted_average
        )
        self._decider: Decider | None = None
        # The decider status: no decision yet, and burst capacity as if initial_scale idle pods.
        self._desired = SCALE_UNKNOWN
        self._excess_burst_capacity = initial_excess_burst_capacity(self._spec)
        self._scaler: ScalerState = new_scaler_state(self._spec, now)
        self._last_now = now

    @property
    def spec(self) -> ScalingSpec:
        return self._spec

    @property
    def scaling(self) -> RevisionScaling:
        return self._scaling

    @property
    def scaler_state(self) -> ScalerState:
        return self._scaler

    def record(self, now: float, stat: Stat) -> None:
        """Take one report from a queue-proxy or the activator."""
        self._last_now = max(self._last_now, now)
        self._collector.record(now, stat)

    def record_many(
        self,
        times: Sequence[float],
        pod_name: str,
        concurrency: Sequence[float],
        rps: Sequence[float] | None = None,
    ) -> None:
        """One pod's reports in a batch: as ``record`` for each, in order
        (``MetricCollector.record_many``; ``rps`` None: no request counts)."""
        if times:
            latest = max(times)
            if latest > self._last_now:  # max(self._last_now, latest)
                self._last_now = latest
        self._collector.record_many(times, pod_name, concurrency, rps)

    def note_time(self, now: float) -> None:
        """Time has reached ``now`` (as a tick notes it): for a caller that skips a tick whose
        decision it has proven (``autoscaler.kpa.horizon``); annotation changes then resize
        the windows at the same time as when every tick ran."""
        if now > self._last_now:  # max(self._last_now, now)
            self._last_now = now

    @property
    def panic_state(self) -> tuple[float | None, int]:
        """The decider's ``(panic_time, max_panic_pods)`` (``(None, 0)`` before any tick), for
        ``autoscaler.kpa.horizon.panic_hold``."""
        if self._decider is None:
            return None, 0
        return self._decider.panic_time, self._decider.max_panic_pods

    def decider_settled(self, now: float, ready_pods: int) -> bool:
        """Whether a decision at ``now`` on the windows as they are gives the decider's last
        count and keeps giving it while they and ``ready_pods`` stay: no panic, no scale-down
        the delay still holds back, no rate-limited step of a scale-down left to take. (For a
        caller that skips the ticks of an idle revision, ``autoscaler.sim``.)"""
        decider = self._decider
        if decider is None:
            return False
        values = self._collector.stable_and_panic(now, self._spec.metric)
        if values is None:
            return True  # no data: the decider is not asked, its count stays
        if decider.panic_mode:
            return False
        result = decider.undelayed_copy().scale(self._spec, now, *values, ready_pods, True)
        return not result.panic_mode and result.desired_pods == self._desired

    def window_averages(self, now: float) -> tuple[float, float] | None:
        """``(stable, panic)`` averages of the scaling metric a tick at ``now`` decides on, or
        None with no data (``tick`` reads them the same way)."""
        return self._collector.stable_and_panic(now, self._spec.metric)

    def window_ranges(self, now: float) -> tuple[tuple[float, float], tuple[float, float]] | None:
        """``(min, max)`` of the per-second values each window (stable, panic) averages for
        a decision at ``now``, for ``autoscaler.kpa.horizon`` (None: a window has no data)."""
        return self._collector.value_ranges(now, self._spec.metric)

    def should_poke(self, stat: Stat) -> bool:
        """True when this report should trigger a tick at once: requests for a revision at zero."""
        return self._desired == 0 and stat.average_concurrent_requests != 0

    def tick(self, now: float, *, ready_pods: int, reachable: bool = True) -> ScaleDecision:
        """Decide at ``now`` given the ready pod count and whether traffic is routed here."""
        if now > self._last_now:  # max(self._last_now, now)
            self._last_now = now
        spec = self._spec
        if self._decider is None:
            self._decider = Decider(ready_pods, now, spec.scale_down_delay_s)
        values = self._collector.stable_and_panic(now, spec.metric)
        stable, panic = values if values is not None else (0.0, 0.0)
        if values is not None:
            # the decider's and reconciler's results as plain values (scale_values,
            # reconcile_values): this runs every tick, and only the decision is kept
            self._desired, self._excess_burst_capacity, _, _, decider_reason = (
                self._decider.scale_values(spec, now, stable, panic, ready_pods, reachable)
            )
        else:
            decider_reason = "no data"
        desired, want, _, in_path, condition, reason = reconcile_values(
            spec,
            self._scaler,
            self._desired,
            self._excess_burst_capacity,
            ready_pods,
            reachable,
            now,
            self._activation_timeout_s,
        )
        return ScaleDecision(  # positional, in the order of its fields
            now,
            desired,  # desired_pods
            in_path,  # activator_in_path
            self._excess_burst_capacity,
            stable,  # stable_concurrency
            panic,  # panic_concurrency
            spec.target_per_pod,
            self._decider.panic_mode,
            f"{decider_reason}; {reason}",
            self._desired,  # decider_desired_pods
            want,  # want_pods
            condition,  # state
            ready_pods,
            reachable,
            spec.metric,
            values is not None,  # has_data
        )

    def restore(self, now: float, *, active: bool) -> None:
        """Resume a revision initialized before a restart (its PodAutoscaler says
        ScaleTargetInitialized=True): initial-scale does not apply to it again. One that was
        inactive resumes as it was: no pods, the activator in the path, the decider's last
        count 0, so it stays at zero until a request (or min-scale) asks for pods."""
        self._scaler.initialized = True
        if not active:
            self._scaler = ScalerState(INACTIVE, now, 0, initialized=True)
            self._desired = 0

    def update_scaling(self, scaling: RevisionScaling, now: float | None = None) -> None:
        """Annotations changed on the live revision: new targets and bounds, windows kept."""
        if not scaling.is_kpa:
            raise ValueError(
                f"revision uses autoscaler class {scaling.autoscaler_class!r}, not KPA"
            )
        self._scaling = scaling
        self._apply_spec(resolve(self._config, scaling), now)

    def update_config(self, config: AutoscalerConfig, now: float | None = None) -> None:
        """The global ``config-autoscaler`` changed."""
        self._config = config
        self._apply_spec(resolve(config, self._scaling), now)

    def _apply_spec(self, spec: ScalingSpec, now: float | None) -> None:
        at = self._last_now if now is None else max(self._last_now, now)
        # As Knative: the aggregation algorithm is the one the collection was created with
        # (``MetricCollector.reconfigure``), and the decider keeps its scale-down delay
        # (``Decider``); the spec says so too, so every reader of it agrees.
        delay_s = (
            spec.scale_down_delay_s if self._decider is None else self._spec.scale_down_delay_s
        )
        spec = replace(
            spec, weighted_average=self._spec.weighted_average, scale_down_delay_s=delay_s
        )
        self._collector.reconfigure(spec.stable_window_s, spec.panic_window_s, at)
        self._spec = spec
