"""What the KPA reconciler adds around the decider: bounds, scale to zero, activator, activeness.

Mirrors knative/serving ``pkg/reconciler/autoscaling/kpa/scaler.go`` (``scale``,
``handleScaleToZero``, ``applyBounds``) and ``kpa.go`` (the activator-in-path rule and
``computeActiveCondition``), with the ServerlessService's "in proxy mode since" kept as
``proxy_since``.

- Bounds: ``min-scale`` (ignored while unreachable), ``max-scale`` (0: no limit), and until the
  revision first has enough ready pods, at least ``initial-scale`` (when above 1).
- Scale to zero, when the bounded count is 0: an *active* revision first stays at 1 pod until it
  has been active for a whole stable window, then is marked *inactive* and the activator is put in
  the path (the pod stays); an *inactive* revision loses its last pod once it has been inactive for
  ``max(grace 30 s, retention)``, or earlier, once the retention has passed and the activator has
  been in the path for the grace period. With the default target burst capacity the activator is
  usually in the path already (one pod: ``1 x 100 - 211 < 0``), so the pod goes one tick after it
  is marked inactive; with target burst capacity 0 the grace period runs from that moment.
- A revision stuck activating (no ready pod) for ``activation_timeout_s`` goes to zero.
- With scale to zero disabled, 0 becomes 1.

Departure from Knative: the reconciler runs on every tick (2 s) instead of on change events and
timed re-queues, so waits end on the first tick at or after their deadline, and the activator
counts as in the path from the tick that asks for it (Knative probes it first).
"""

from __future__ import annotations

from dataclasses import dataclass

from autoscaler.kpa.spec import ScalingSpec

ACTIVATING = "activating"
ACTIVE = "active"
INACTIVE = "inactive"
SCALE_UNKNOWN = -1
# Knative: the Deployment's progress deadline (600 s) plus a 30 s buffer.
DEFAULT_ACTIVATION_TIMEOUT_S = 630.0


@dataclass(slots=True)
class ScalerState:
    """The PodAutoscaler status the reconciler keeps between ticks."""

    condition: str  # activating | active | inactive
    condition_since: float
    applied_pods: int  # the replica count last applied to the scale target
    initialized: bool = False  # enough ready pods were seen once (initial scale reached)
    proxy_since: float | None = None  # the activator has been in the path since

    def copy(self) -> ScalerState:
        """An independent copy (``dataclasses.replace`` does the same, several times slower:
        a caller probing future reconciles copies once per probe)."""
        return ScalerState(
            self.condition,
            self.condition_since,
            self.applied_pods,
            self.initialized,
            self.proxy_since,
        )


def new_scaler_state(spec: ScalingSpec, now: float) -> ScalerState:
    """A new revision: activating, created with ``initial_scale`` replicas."""
    return ScalerState(condition=ACTIVATING, condition_since=now, applied_pods=spec.initial_scale)


@dataclass(frozen=True, slots=True)
class ScalerOutcome:
    desired_pods: int  # replicas the scale target should have
    want_pods: int  # the reconciler's want; -1 while unknown (no metrics yet)
    applied: bool  # whether this tick changed what to apply
    activator_in_path: bool
    condition: str
    reason: str


def scale_bounds(spec: ScalingSpec, reachable: bool, initialized: bool) -> tuple[int, int]:
    """``(min, max)``: min-scale only while reachable; raised to initial-scale until initialized."""
    lower = spec.min_scale if reachable else 0
    if spec.initial_scale > 1 and not initialized:
        lower = max(lower, spec.initial_scale)
    return lower, spec.max_scale


def apply_bounds(lower: int, upper: int, count: int) -> int:
    if count < lower:
        return lower
    if upper != 0 and count > upper:
        return upper
    return count


def handle_scale_to_zero(
    spec: ScalingSpec, state: ScalerState, count: int, now: float, activation_timeout_s: float
) -> tuple[int, bool, str]:
    """``(want, apply, reason)`` for a bounded count; only 0 needs more than passing through."""
    if count != 0:
        return count, True, f"scale to {count}"
    if not spec.enable_scale_to_zero:
        return 1, True, "scale to zero disabled: keep 1"
    since = now - state.condition_since
    if state.condition == ACTIVATING:
        if since >= activation_timeout_s:
            return 0, True, f"activation timed out after {since:.0f}s: scale to 0"
        return SCALE_UNKNOWN, False, "activating: wait"
    if state.condition == ACTIVE:
        if since >= spec.stable_window_s:
            return 0, False, "idle for a stable window: mark inactive, activator into the path"
        return 1, True, f"idle: keep 1 pod {spec.stable_window_s - since:.0f}s more"
    # Inactive: the activator must be in the path before the last pod goes.
    if state.proxy_since is None:
        return 0, False, "inactive: wait for the activator in the path"
    grace = spec.scale_to_zero_grace_period_s
    retention = spec.scale_to_zero_pod_retention_period_s
    if since >= max(grace, retention):
        return 0, True, f"inactive for {since:.0f}s: scale to 0"
    if retention > 0 and since < retention:
        return 0, False, f"inactive: keep the last pod {retention - since:.0f}s more (retention)"
    if now - state.proxy_since >= grace:
        return 0, True, "activator in the path for the grace period: scale to 0"
    return 0, False, f"inactive: grace period, {grace - (now - state.proxy_since):.0f}s more"


def is_activator_in_path(
    want: int, excess_burst_capacity: float, condition: str, ready_pods: int
) -> bool:
    """The activator serves requests at zero, with too little spare capacity, or no ready pod."""
    return (
        want == 0
        or excess_burst_capacity < 0
        or (want == SCALE_UNKNOWN and condition == INACTIVE)
        # With no ready endpoint the service falls back to the activator whatever the mode.
        or ready_pods == 0
    )


def active_threshold(spec: ScalingSpec, reachable: bool, initialized: bool) -> int:
    """Ready pods needed to call the revision active."""
    lower = spec.min_scale if reachable else 0
    if not initialized:
        return max(lower, spec.initial_scale)
    return max(lower, 1)


def next_condition(
    state: ScalerState, want: int, ready_pods: int, min_ready: int
) -> tuple[str, bool]:
    """``(condition, initialized)`` after this tick, from Knative's activeness table."""
    initialized = state.initialized or ready_pods >= min_ready
    condition = state.condition
    if want == 0 or min_ready == 0:
        condition = INACTIVE
    elif ready_pods < min_ready:
        condition = ACTIVATING if want > 0 or condition != INACTIVE else INACTIVE
    elif want > 0 or condition != INACTIVE:
        condition = ACTIVE
    return condition, initialized


def reconcile(
    spec: ScalingSpec,
    state: ScalerState,
    decider_desired: int,
    excess_burst_capacity: float,
    ready_pods: int,
    reachable: bool,
    now: float,
    activation_timeout_s: float = DEFAULT_ACTIVATION_TIMEOUT_S,
) -> ScalerOutcome:
    """One reconcile of the PodAutoscaler; updates ``state`` in place."""
    return ScalerOutcome(
        *reconcile_values(
            spec,
            state,
            decider_desired,
            excess_burst_capacity,
            ready_pods,
            reachable,
            now,
            activation_timeout_s,
        )
    )


def reconcile_values(
    spec: ScalingSpec,
    state: ScalerState,
    decider_desired: int,
    excess_burst_capacity: float,
    ready_pods: int,
    reachable: bool,
    now: float,
    activation_timeout_s: float = DEFAULT_ACTIVATION_TIMEOUT_S,
) -> tuple[int, int, bool, bool, str, str]:
    """``reconcile`` without building its result: the ``ScalerOutcome`` fields in their order
    (desired, want, applied, activator in path, condition, reason). For a caller reconciling
    every tick."""
    if decider_desired < 0 and state.condition != ACTIVATING:
        want, apply, reason = SCALE_UNKNOWN, False, "no metrics yet: keep the current scale"
    else:
        lower, upper = scale_bounds(spec, reachable, state.initialized)
        bounded = apply_bounds(lower, upper, decider_desired)
        want, apply, reason = handle_scale_to_zero(spec, state, bounded, now, activation_timeout_s)
        if bounded != decider_desired and decider_desired >= 0:
            reason = f"bounded {decider_desired} to [{lower}, {upper or 'no max'}]; " + reason
    if apply:
        state.applied_pods = want

    in_path = is_activator_in_path(want, excess_burst_capacity, state.condition, ready_pods)
    if in_path and state.proxy_since is None:
        state.proxy_since = now
    elif not in_path:
        state.proxy_since = None

    min_ready = active_threshold(spec, reachable, state.initialized)
    condition, state.initialized = next_condition(state, want, ready_pods, min_ready)
    if condition != state.condition:
        state.condition, state.condition_since = condition, now
    return state.applied_pods, want, apply, in_path, state.condition, reason
