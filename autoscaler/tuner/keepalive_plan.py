"""From keep-alive windows to Knative: retention period and min-scale, at ``now``.

Knative drops a revision's last replica once it had no traffic for a stable window (60 s) and
then ``max(scale-to-zero-grace-period 30 s, scale-to-zero-pod-retention-period)`` more
(pkg/reconciler/autoscaling/kpa/scaler.go). So "warm K s after the last request" is a
retention of ``K - stable_window_s`` (capped at Knative's 1 h). Pre-warm has no annotation of
its own: ``min-scale`` goes to 1 a lead time (cold start plus one tick) before the window opens
and back to 0 a grace period before it closes; the retention stays at 0 so the replica leaves
soon after the traffic stops.

With a shorter stable window in force (``window_s``: the tuner's busy window,
``autoscaler.tuner.busy_window``) the wait after it, ``max(grace, retention)``, is longer by the
difference (at Knative's floor a 15 s window gets a 75 s retention), so a replica that
goes a window and a retention after the last request goes when it would on the default window
(pre-warm's unloading included). A longer one (the user's) is planned on as Knative's own:
keep-alive at least that window and the grace period, the retention what is left of it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from autoscaler.tuner.guardrails import clamp_retention
from autoscaler.tuner.settings import KeepAliveSettings
from autoscaler.tuner.spec import MAX_RETENTION_S
from autoscaler.tuner.windows import KeepAliveWindows


@dataclass(frozen=True, slots=True)
class KeepAlivePlan:
    keep_alive_s: float  # warm this long after the last request (without pre-warm)
    retention_s: float  # scale-to-zero-pod-retention-period
    min_scale: int  # 0 or 1: what keep-alive and pre-warm ask for now
    prewarm_at_s: float | None  # when min-scale next goes to 1 (absolute), if planned
    warm_until_s: float | None  # when the window closes (absolute), if known
    note: str


def plan(
    windows: KeepAliveWindows,
    last_request_s: float | None,
    now_s: float,
    settings: KeepAliveSettings,
    tick_period_s: float,
    window_s: float | None = None,
) -> KeepAlivePlan:
    p = _plan(windows, last_request_s, now_s, settings, tick_period_s)
    if window_s is None or window_s == settings.stable_window_s:
        return p
    extra = settings.stable_window_s - window_s
    # Knative waits max(grace, retention) after the window: a retention of 0 (or under the
    # grace period) is the grace period, and that is what the shorter window lengthens
    in_force = max(settings.scale_to_zero_grace_period_s, p.retention_s)
    if extra < 0 or in_force + extra > MAX_RETENTION_S:
        # a longer window (the user's), or past Knative's 1 h retention on a shorter one (the
        # min-scale hold makes up the rest): planned on the window, as Knative counts from it
        on = _plan(windows, last_request_s, now_s, settings, tick_period_s, window_s)
        return replace(on, note=f"{on.note} (on the {window_s:g} s window)")
    # after the last request a replica goes a window, then max(grace, retention), later: on a
    # shorter window that wait is longer by the difference (90 s at Knative's floor: a 15 s
    # window and a 75 s retention)
    retention = clamp_retention(in_force + extra)
    if retention == p.retention_s:
        return p
    return KeepAlivePlan(
        p.keep_alive_s,
        retention,
        p.min_scale,
        p.prewarm_at_s,
        p.warm_until_s,
        f"{p.note}; retention {retention:.0f} s on the {window_s:g} s window",
    )


def _plan(
    windows: KeepAliveWindows,
    last_request_s: float | None,
    now_s: float,
    settings: KeepAliveSettings,
    tick_period_s: float,
    stable_s: float | None = None,
) -> KeepAlivePlan:
    stable = settings.stable_window_s if stable_s is None else stable_s
    grace = settings.scale_to_zero_grace_period_s
    floor = stable + grace
    if not windows.prewarm:
        keep = max(floor, windows.warm_until_s)
        retention = clamp_retention(keep - stable)
        if retention <= grace:
            retention = 0.0  # the grace period covers it: leave Knative's default
        # Beyond stable window + 1 h only min-scale can hold the replica: until the retention
        # that follows covers the rest.
        hold_until = (
            last_request_s + keep - stable - MAX_RETENTION_S
            if last_request_s is not None and keep > stable + MAX_RETENTION_S
            else None
        )
        holding = hold_until is not None and now_s < hold_until
        until_abs = last_request_s + keep if last_request_s is not None else None
        return KeepAlivePlan(
            keep, retention, 1 if holding else 0, None, until_abs,
            f"warm {keep:.0f} s after the last request: retention {retention:.0f} s"
            + (", min-scale 1 held" if holding else ""),
        )  # fmt: skip
    if last_request_s is None:
        return KeepAlivePlan(floor, 0.0, 0, None, None, "pre-warm planned once traffic is seen")
    load_at = last_request_s + windows.warm_from_s - settings.cold_start_s - tick_period_s
    drop_at = last_request_s + windows.warm_until_s - grace
    until_abs = last_request_s + windows.warm_until_s
    in_window = load_at <= now_s < drop_at
    upcoming = load_at if now_s < load_at else None
    if in_window:
        note = f"pre-warm window open until {until_abs:.0f} s: min-scale 1"
    elif upcoming is not None:
        note = f"pre-warm at {load_at:.0f} s (in {load_at - now_s:.0f} s)"
    else:
        note = "pre-warm window passed without traffic: at zero until the next request"
    return KeepAlivePlan(floor, 0.0, 1 if in_window else 0, upcoming, until_abs, note)
