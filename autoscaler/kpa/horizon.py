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
"""

from __future__ import annotations

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
