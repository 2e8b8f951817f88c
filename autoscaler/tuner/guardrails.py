"""Guardrails on every value the tuner writes: step bounds, hysteresis, intervals, ranges.

Each function takes the current and proposed values and returns the value to write with a
short note when it changed something, so the policy can add the note to its reasons. Ranges
are Knative's (pkg/apis/autoscaling/annotation_validation.go): ``target`` >= 0.01,
``scale-to-zero-pod-retention-period`` in [0, 1 h], ``min-scale`` <= ``max-scale`` when the
latter is set.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from autoscaler.tuner.spec import MAX_RETENTION_S, MIN_TARGET

TARGET_DIGITS = 3  # the target annotation's significant digits (policy.format_target)


def bound_step(
    current: float, proposed: float, max_up_ratio: float, max_down_ratio: float
) -> tuple[float, str | None]:
    """At most ``current x max_up`` and at least ``current / max_down``."""
    hi = current * max_up_ratio
    lo = current / max_down_ratio
    if proposed > hi:
        return hi, f"step limited to x{max_up_ratio:g} ({proposed:.3g} -> {hi:.3g})"
    if proposed < lo:
        return lo, f"step limited to /{max_down_ratio:g} ({proposed:.3g} -> {lo:.3g})"
    return proposed, None


def within_hysteresis(current: float, proposed: float, fraction: float) -> bool:
    """True when the change is under ``fraction`` of ``current``: not worth a write."""
    if current <= 0:
        return False
    return abs(proposed - current) < fraction * current


def clamp_target(
    value: float, target_min: float, target_max: float | None
) -> tuple[float, str | None]:
    """Within the user's ``target`` bounds and Knative's floor of 0.01."""
    lo = max(MIN_TARGET, target_min)
    if value < lo:
        return lo, f"raised to the lower bound {lo:g}"
    if target_max is not None and value > target_max:
        return target_max, f"capped at the upper bound {target_max:g}"
    return value, None


def _significant(value: float, rounding: str) -> float:
    d = Decimal(repr(value))
    return float(d.quantize(Decimal(1).scaleb(d.adjusted() - TARGET_DIGITS + 1), rounding=rounding))


def written_within(
    value: float, target_min: float, target_max: float | None
) -> tuple[float, str | None]:
    """``value`` (within the bounds) as written, three significant digits, still within them:
    rounded toward the inside where plain rounding would cross a bound (``target.max`` 12.46 is
    written 12.4, not 12.5; ``target.min`` 1.005 is 1.01, not 1). Unchanged when plain rounding
    stays inside. Bounds closer than one step of the third digit hold no such value: the
    nearest is kept, and the note says so."""
    lo = max(MIN_TARGET, target_min)
    written = float(f"{value:.{TARGET_DIGITS}g}")
    if lo <= written and (target_max is None or written <= target_max):
        return value, None
    inside = (
        _significant(target_max, ROUND_FLOOR)
        if target_max is not None and written > target_max
        else _significant(lo, ROUND_CEILING)
    )
    if lo <= inside and (target_max is None or inside <= target_max):
        return inside, None
    bounds = f"[{lo:g}, {target_max:g}]" if target_max is not None else f">= {lo:g}"
    return value, (
        f"no {TARGET_DIGITS}-digit target lies within the bounds {bounds}: written "
        f"{written:g}, the nearest"
    )


def apply_due(now_s: float, last_apply_s: float | None, min_interval_s: float) -> bool:
    """True when at least ``min_interval_s`` passed since the last applied change."""
    return last_apply_s is None or now_s - last_apply_s >= min_interval_s


def clamp_retention(seconds: float) -> float:
    """Knative accepts a retention period of 0 to 1 h."""
    return max(0.0, min(MAX_RETENTION_S, seconds))


def clamp_min_scale(min_scale: int, replicas_min: int, replicas_max: int) -> int:
    """At least the user's minimum, at most ``max-scale`` when one is set (0: no limit)."""
    value = max(min_scale, replicas_min)
    if replicas_max > 0:
        value = min(value, replicas_max)
    return value
