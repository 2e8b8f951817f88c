"""Decision horizon: when the decider's count provably stays the same, whatever the load does.

An addition to the KPA library, not a part of Knative: a caller that ticks many revisions (the
trace simulator) asks it which ticks it may skip. It changes no behaviour of ``decider``,
``scaler`` or ``revision``; it reasons about them (``pkg/autoscaler/scaling/autoscaler.go``).

The fact used: a window average (plain or weighted) of per-second values that all lie in
``(0, peak]`` lies in ``(0, peak]`` too. So while every bucket of the stable and panic windows is
at most ``peak`` and each window holds at least one non-zero bucket, with ``peak`` no more than
one pod's target:

- ``ceil(stable / target)`` and ``ceil(panic / target)`` are both 1;
- the rate limits clamp 1 to ``[floor(ready / down), ceil(up x ready)]`` the same way each tick;
- panic cannot start while ``1 / max(1, ready) < panic threshold``;
- the excess burst capacity ``floor(ready x total - burst capacity - panic)`` keeps one sign when
  it does at both ends of ``panic`` in ``(0, peak]``, so the activator stays in or out of the path.

``steady_count`` returns the count every such tick decides, or None when one of the conditions
fails (panicking, a scale-down delay window that still moves, a peak above the target, ...).

``steady_band`` does the same for a revision at any count ``k``: while every bucket lies in a
band within ``((k - 1) x target, k x target]`` (a revision with many requests in flight whose
count moves by a few), both averages stay in the band, so both raw counts are ``k``.
``hold_bands`` gives, for the averages a tick has just read, the ranges of the two averages in
which the next ticks decide the same (the caller checks them on the windows, tick by tick,
with ``decides_alike``); ``panic_hold`` and ``decides_alike_in_panic`` do the same for a decider
in panic mode, which holds its running maximum until the panic ends.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from autoscaler.kpa.decider import (
    apply_activation_scale,
    clamp,
    excess_burst_capacity,
    is_over_panic_threshold,
    scale_bounds,
)
from autoscaler.kpa.spec import ScalingSpec


@dataclass(frozen=True, slots=True)
class SteadyDecision:
    """What every tick decides while the load stays in ``(0, peak]``."""

    desired_pods: int
    activator_in_path: bool  # from the sign of the excess burst capacity
    reason: str


def steady_count(
    spec: ScalingSpec,
    ready_pods: int,
    panicking: bool,
    peak_concurrency: float,
    *,
    reachable: bool = True,
) -> SteadyDecision | None:
    """The decider's count at every tick while each window bucket is in ``(0, peak]``.

    ``panicking`` is the decider's panic mode after the last tick. None when the count is not
    provably constant: panic mode, a scale-down delay (its max window holds older counts), a
    peak above one pod's target, a panic threshold a single pod reaches, or a burst capacity
    whose sign the load could flip.
    """
    if panicking:
        return None
    if spec.scale_down_delay_s > 0:
        return None
    if not peak_concurrency > 0 or peak_concurrency > spec.target_per_pod:
        return None
    if is_over_panic_threshold(1, ready_pods, spec.panic_threshold):
        return None
    lower, upper = scale_bounds(
        ready_pods, spec.max_scale_up_rate, spec.max_scale_down_rate, reachable
    )
    count = apply_activation_scale(clamp(1, lower, upper), 1, spec.activation_scale)
    ebc_high = excess_burst_capacity(
        ready_pods, spec.total_per_pod, spec.target_burst_capacity, 0.0
    )
    ebc_low = excess_burst_capacity(
        ready_pods, spec.total_per_pod, spec.target_burst_capacity, peak_concurrency
    )
    if (ebc_low < 0) != (ebc_high < 0):
        return None
    return SteadyDecision(
        desired_pods=count,
        activator_in_path=ebc_low < 0,
        reason=(
            f"load in (0, {peak_concurrency:g}] <= target {spec.target_per_pod:g} per pod: "
            f"{count} pod(s) each tick"
        ),
    )


# Room left at both ends of a band for the rounding of window sums and Knative's 6-digit floor.
BAND_MARGIN = 1e-5


@dataclass(frozen=True, slots=True)
class SteadyBand:
    """While every window bucket lies in ``[low, high]``, every tick decides ``desired_pods``."""

    low: float
    high: float
    desired_pods: int
    activator_in_path: bool


def steady_band(
    spec: ScalingSpec,
    ready_pods: int,
    panicking: bool,
    level: float,
    *,
    reachable: bool = True,
) -> SteadyBand | None:
    """The widest band around ``level`` on which the decider keeps one count, tick after tick.

    The band lies strictly within ``((k - 1) x target, k x target]`` for ``k = ceil(level /
    target)``: a plain average of buckets in it is in it, so both raw counts are ``k``. The
    same rules as ``steady_count`` then fix the count (rate limits, activation scale, no panic
    at ``k / ready``), and the band is cut at the panic value that flips the burst capacity's
    sign. None when ``level`` is not positive, panicking, with a scale-down delay, with the
    weighted average (its weights add up to a little less than 1) or when ``level`` sits within
    the margin of an edge.
    """
    if panicking or spec.scale_down_delay_s > 0 or spec.weighted_average:
        return None
    target = spec.target_per_pod
    if not level > 0 or not target > 0:
        return None
    k = math.ceil(level / target)
    margin = BAND_MARGIN * max(1.0, k * target)
    low = (k - 1) * target + margin
    high = k * target - margin
    if is_over_panic_threshold(k, ready_pods, spec.panic_threshold):
        return None
    tbc = spec.target_burst_capacity
    if tbc > 0:
        # floor(ready x total - tbc - panic) < 0 exactly when panic > ready x total - tbc
        edge = ready_pods * spec.total_per_pod - tbc
        if level <= edge - margin:
            high = min(high, edge - margin)
        elif level >= edge + margin:
            low = max(low, edge + margin)
        else:
            return None
    if not low <= level <= high:
        return None
    lower, upper = scale_bounds(
        ready_pods, spec.max_scale_up_rate, spec.max_scale_down_rate, reachable
    )
    count = apply_activation_scale(clamp(k, lower, upper), k, spec.activation_scale)
    ebc_low = excess_burst_capacity(ready_pods, spec.total_per_pod, tbc, low)
    ebc_high = excess_burst_capacity(ready_pods, spec.total_per_pod, tbc, high)
    if (ebc_low < 0) != (ebc_high < 0):
        return None
    return SteadyBand(low=low, high=high, desired_pods=count, activator_in_path=ebc_low < 0)


@dataclass(frozen=True, slots=True)
class HoldBands:
    """What a tick out of panic decided, and for how long it holds.

    Every later tick (same spec, ready pods and reachability) whose averages pass
    ``decides_alike`` decides ``desired_pods`` again: the same raw stable count ``stable_pods``,
    no panic, the same sign of the burst capacity. ``[stable_low, stable_high]`` and
    ``[panic_low, panic_high]`` are ranges, a margin inside those edges, such that averages
    of per-second values within them pass (for a caller that checks buckets, not averages;
    they may be empty).
    """

    stable_pods: int
    activator_in_path: bool
    desired_pods: int
    stable_low: float
    stable_high: float
    panic_low: float
    panic_high: float


def hold_bands(
    spec: ScalingSpec,
    ready_pods: int,
    panicking: bool,
    stable: float,
    panic: float,
    *,
    reachable: bool = True,
) -> HoldBands | None:
    """The decision on averages ``stable`` and ``panic`` and the ranges in which it holds.

    The stable average fixes the count: ``ceil(stable / target)`` is the same ``k`` on
    ``((k - 1) x target, k x target]``. The panic average only has to stay under the panic
    threshold (``ceil(panic / target) / ready`` below it) and on its side of the burst
    capacity's sign change. None when panicking, with a scale-down delay (its max window
    holds older counts), the weighted average or a stable average at zero.
    """
    if panicking or spec.scale_down_delay_s > 0 or spec.weighted_average:
        return None
    target = spec.target_per_pod
    if not stable > 0 or not panic >= 0 or not target > 0:
        return None
    threshold = spec.panic_threshold
    if is_over_panic_threshold(math.ceil(panic / target), ready_pods, threshold):
        return None
    k = math.ceil(stable / target)
    margin = BAND_MARGIN * max(1.0, k * target)
    stable_low = 0.0 if k == 1 else (k - 1) * target + margin
    stable_high = k * target - margin
    # the largest raw panic count under the threshold
    raw = max(0, math.ceil(threshold * max(1, ready_pods)) + 1)
    while raw > 0 and is_over_panic_threshold(raw, ready_pods, threshold):
        raw -= 1
    panic_low = 0.0
    panic_high = raw * target - margin
    tbc = spec.target_burst_capacity
    in_path = excess_burst_capacity(ready_pods, spec.total_per_pod, tbc, panic) < 0
    if tbc > 0:
        # floor(ready x total - tbc - panic) < 0 exactly when panic > ready x total - tbc
        edge = ready_pods * spec.total_per_pod - tbc
        if in_path:
            panic_low = max(panic_low, edge + margin)
        else:
            panic_high = min(panic_high, edge - margin)
    lower, upper = scale_bounds(
        ready_pods, spec.max_scale_up_rate, spec.max_scale_down_rate, reachable
    )
    return HoldBands(
        stable_pods=k,
        activator_in_path=in_path,
        desired_pods=apply_activation_scale(clamp(k, lower, upper), k, spec.activation_scale),
        stable_low=stable_low,
        stable_high=stable_high,
        panic_low=panic_low,
        panic_high=panic_high,
    )


def decides_alike(
    spec: ScalingSpec, ready_pods: int, bands: HoldBands, stable: float, panic: float
) -> bool:
    """Whether a tick reading these averages decides as the one ``bands`` came from: the
    decider's own arithmetic for the raw counts, the panic threshold and the burst capacity."""
    target = spec.target_per_pod
    return (
        stable > 0
        and math.ceil(stable / target) == bands.stable_pods
        and not is_over_panic_threshold(math.ceil(panic / target), ready_pods, spec.panic_threshold)
        and (
            excess_burst_capacity(ready_pods, spec.total_per_pod, spec.target_burst_capacity, panic)
            < 0
        )
        == bands.activator_in_path
    )


@dataclass(frozen=True, slots=True)
class PanicHold:
    """A decision in panic mode: the decider holds ``max_pods`` (its running maximum) until
    ``panic_until``, unless the panic threshold is crossed again or an average asks for more."""

    max_pods: int
    panic_until: float  # the last tick time at which the panic still holds
    activator_in_path: bool


def panic_hold(
    spec: ScalingSpec,
    ready_pods: int,
    panic_time: float | None,
    max_panic_pods: int,
    panic: float,
) -> PanicHold | None:
    """The hold of a decider panicking since ``panic_time`` at ``max_panic_pods``, its last
    tick's panic average ``panic``; None out of panic or with a scale-down delay."""
    if panic_time is None or spec.scale_down_delay_s > 0 or spec.weighted_average:
        return None
    in_path = (
        excess_burst_capacity(ready_pods, spec.total_per_pod, spec.target_burst_capacity, panic) < 0
    )
    return PanicHold(max_panic_pods, panic_time + spec.stable_window_s, in_path)


def decides_alike_in_panic(
    spec: ScalingSpec,
    ready_pods: int,
    hold: PanicHold,
    now: float,
    stable: float,
    panic: float,
    *,
    reachable: bool = True,
) -> bool:
    """Whether a tick at ``now`` on these averages leaves the panicking decider as it was: the
    panic goes on (``now`` at most ``panic_until``) without being extended (under the
    threshold), neither count exceeds the running maximum, the burst capacity keeps its sign.
    """
    target = spec.target_per_pod
    stable_raw, panic_raw = math.ceil(stable / target), math.ceil(panic / target)
    if now > hold.panic_until or is_over_panic_threshold(
        panic_raw, ready_pods, spec.panic_threshold
    ):
        return False
    lower, upper = scale_bounds(
        ready_pods, spec.max_scale_up_rate, spec.max_scale_down_rate, reachable
    )
    act = spec.activation_scale
    return (
        apply_activation_scale(clamp(stable_raw, lower, upper), stable_raw, act) <= hold.max_pods
        and apply_activation_scale(clamp(panic_raw, lower, upper), panic_raw, act) <= hold.max_pods
        and (
            excess_burst_capacity(ready_pods, spec.total_per_pod, spec.target_burst_capacity, panic)
            < 0
        )
        == hold.activator_in_path
    )
