"""The autoscaler decision: stable and panic averages in, desired pod count and burst capacity out.

Mirrors knative/serving ``pkg/autoscaler/scaling/autoscaler.go`` (``autoscaler.Scale``), written
as named stages instead of one long function:

1. ``scale_bounds``: the rate limits, ``[floor(ready / 2), ceil(1000 x ready)]`` with
   ``ready = max(1, ready pods)``; the lower bound is 0 when the revision is unreachable.
2. ``raw_pod_counts``: ``ceil(stable / target)`` and ``ceil(panic / target)``.
3. ``apply_activation_scale``: with any demand, at least ``activation-scale`` pods.
4. ``next_panic_time``: panic starts when ``raw panic pods / ready >= threshold`` (2.0), every tick
   over the threshold extends it, and it ends only when a whole stable window has passed since the
   last such tick.
5. ``hold_in_panic``: while panicking, ``max(stable, panic)`` and never below the running maximum.
6. scale-down delay: the maximum desired count over the delay window (``MaxWindow``).
7. ``excess_burst_capacity``: ``floor(ready x total - target_burst_capacity - panic)``; 0 when the
   target burst capacity is 0, -1 when it is -1 (activator always in the path).

Worked example: 350 concurrent requests, defaults (target 70), 1 ready pod: stable pods
``ceil(350 / 70) = 5``, within ``[0, 1000]``; panic pods 5, ``5 / 1 >= 2`` so it panics; 5 pods.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from autoscaler.kpa.spec import ScalingSpec
from autoscaler.kpa.windows import MaxWindow

TICK_INTERVAL_S = 2.0


@dataclass(frozen=True, slots=True)
class DeciderResult:
    """One valid decision of the autoscaler (Knative's ScaleResult plus what led to it)."""

    desired_pods: int
    excess_burst_capacity: float
    stable_value: float
    panic_value: float
    stable_pods: int  # ceil(stable / target), before the rate limits
    panic_pods: int  # ceil(panic / target), before the rate limits
    panic_mode: bool
    reason: str


def scale_bounds(
    ready_pods: int, max_scale_up_rate: float, max_scale_down_rate: float, reachable: bool
) -> tuple[int, int]:
    """Rate limits: at most ``ceil(up x ready)``, at least ``floor(ready / down)`` (0 unreachable)."""
    ready = max(1, ready_pods)
    # ceil on the way up so a slow rate still grows by at least one pod.
    upper = math.ceil(max_scale_up_rate * ready)
    lower = math.floor(ready / max_scale_down_rate) if reachable else 0
    return lower, upper


def raw_pod_counts(stable: float, panic: float, target: float) -> tuple[int, int]:
    """Pods needed to carry the stable and the panic averages at ``target`` each."""
    return math.ceil(stable / target), math.ceil(panic / target)


def clamp(count: int, lower: int, upper: int) -> int:
    return min(max(count, lower), upper)


def apply_activation_scale(count: int, raw_count: int, activation_scale: int) -> int:
    """With any demand (``raw_count > 0``), never fewer than ``activation_scale`` pods."""
    if activation_scale > 1 and raw_count > 0 and activation_scale > count:
        return activation_scale
    return count


def is_over_panic_threshold(raw_panic_pods: int, ready_pods: int, panic_threshold: float) -> bool:
    return raw_panic_pods / max(1, ready_pods) >= panic_threshold


def next_panic_time(
    panic_time: float | None, over_threshold: bool, now: float, stable_window_s: float
) -> float | None:
    """The last time over the threshold while panicking; None when not panicking."""
    if over_threshold:
        return now  # start panicking, or extend the panic
    if panic_time is not None and panic_time + stable_window_s < now:
        return None  # the surge has made its way into the stable average
    return panic_time


def hold_in_panic(stable_count: int, panic_count: int, max_panic_pods: int) -> int:
    """While panicking: the larger of the two counts, never below what panic already asked."""
    return max(stable_count, panic_count, max_panic_pods)


def excess_burst_capacity(
    ready_pods: int, total_per_pod: float, target_burst_capacity: float, panic_value: float
) -> float:
    """Spare capacity beyond the burst to absorb; negative puts the activator in the path."""
    if target_burst_capacity == 0:
        return 0.0
    if target_burst_capacity < 0:
        return -1.0
    return float(math.floor(ready_pods * total_per_pod - target_burst_capacity - panic_value))


def initial_excess_burst_capacity(spec: ScalingSpec) -> float:
    """Before the first decision: assume ``initial_scale`` pods carrying nothing."""
    tbc = spec.target_burst_capacity
    if tbc in (0, -1):
        return tbc
    return float(int(spec.initial_scale * spec.total_per_pod - tbc))


class Decider:
    """One revision's decider with its panic and delay state (held here, explicit)."""

    __slots__ = ("_delay", "max_panic_pods", "panic_time")

    def __init__(self, ready_pods: int, now: float, scale_down_delay_s: float) -> None:
        # Starting with more than one ready pod means the history was lost (a restart): panic,
        # holding the current count, so an empty history does not scale the revision down.
        self.panic_time: float | None = now if ready_pods > 1 else None
        self.max_panic_pods = ready_pods
        # The delay is the one at creation, for the decider's life: Knative's autoscaler builds
        # its delay window in New() and Update() replaces only the spec, so a scale-down-delay
        # changed on a live revision takes effect when its decider is next created.
        self._delay: MaxWindow | None = (
            MaxWindow(scale_down_delay_s, TICK_INTERVAL_S) if scale_down_delay_s > 0 else None
        )

    @property
    def panic_mode(self) -> bool:
        return self.panic_time is not None

    def undelayed_copy(self) -> Decider:
        """This decider's panic state without the scale-down delay: what it would decide
        before the delay holds the count (a trial for ``RevisionAutoscaler.decider_settled``)."""
        trial = Decider.__new__(Decider)
        trial.panic_time = self.panic_time
        trial.max_panic_pods = self.max_panic_pods
        trial._delay = None
        return trial

    def scale(
        self,
        spec: ScalingSpec,
        now: float,
        stable: float,
        panic: float,
        ready_pods: int,
        reachable: bool,
    ) -> DeciderResult:
        """Decide from the window averages; updates the panic and delay state."""
        desired, burst, stable_raw, panic_raw, reason = self.scale_values(
            spec, now, stable, panic, ready_pods, reachable
        )
        return DeciderResult(
            desired_pods=desired,
            excess_burst_capacity=burst,
            stable_value=stable,
            panic_value=panic,
            stable_pods=stable_raw,
            panic_pods=panic_raw,
            panic_mode=self.panic_mode,
            reason=reason,
        )

    def scale_values(
        self,
        spec: ScalingSpec,
        now: float,
        stable: float,
        panic: float,
        ready_pods: int,
        reachable: bool,
    ) -> tuple[int, float, int, int, str]:
        """``scale`` without building its result: ``(desired_pods, excess_burst_capacity,
        stable_pods, panic_pods, reason)`` (the panic mode is the decider's own after the
        call). For a caller deciding every tick that reads only some of the fields."""
        lower, upper = scale_bounds(
            ready_pods, spec.max_scale_up_rate, spec.max_scale_down_rate, reachable
        )
        stable_raw, panic_raw = raw_pod_counts(stable, panic, spec.target_per_pod)
        stable_count = apply_activation_scale(
            clamp(stable_raw, lower, upper), stable_raw, spec.activation_scale
        )
        panic_count = apply_activation_scale(
            clamp(panic_raw, lower, upper), panic_raw, spec.activation_scale
        )

        over = is_over_panic_threshold(panic_raw, ready_pods, spec.panic_threshold)
        was_panicking = self.panic_mode
        self.panic_time = next_panic_time(self.panic_time, over, now, spec.stable_window_s)
        if self.panic_time is None:
            self.max_panic_pods = 0
            desired = stable_count
            reason = "stable" + (": panic ended" if was_panicking else "")
        else:
            desired = hold_in_panic(stable_count, panic_count, self.max_panic_pods)
            self.max_panic_pods = desired
            reason = "panic" + ("" if was_panicking else ": started")
        if self._delay is not None:
            self._delay.record(now, desired)
            delayed = int(self._delay.current())
            if delayed != desired:
                reason += f"; scale-down to {desired} delayed"
                desired = delayed

        burst = excess_burst_capacity(
            ready_pods, spec.total_per_pod, spec.target_burst_capacity, panic
        )
        return desired, burst, stable_raw, panic_raw, reason
