"""The tuner's policy: one revision, one tick. Observation, settings, state and ``now`` in; a
frozen ``Recommendation`` and the new state out.

Named stages, each adding a sentence to the reasons:

1. mode: ``Off`` learns nothing and recommends nothing;
2. freshness: no observation, or one older than ``stale_after_s``, is fail-static: the last
   applied values stay (nothing is lowered, nothing scales to zero for lack of data);
3. learn: the interval goes into the latency curve, closed idle periods into the histogram;
4. target: ``target.decide_target`` proposes, the guardrails bound it (in ``Recommend`` mode
   without the per-step bounds: nothing is applied, so the recommendation is where the
   evidence points rather than one step from the live value);
5. keep-alive and pre-warm: the idle policy's windows (cached until a new idle period), planned
   onto Knative's retention period and min-scale at ``now``; a busy revision's short stable
   window (``busy_window``), the retention making up the difference;
6. changes: what differs from what was applied; in ``Auto`` mode those are to be written.

The controller writes ``Recommendation.changed_annotations()`` when ``should_apply`` and keeps
the returned state only if the write succeeded.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from autoscaler.tuner.busy_window import decide_window
from autoscaler.tuner.guardrails import (
    apply_due,
    bound_step,
    clamp_min_scale,
    clamp_target,
    within_hysteresis,
    written_within,
)
from autoscaler.tuner.idle import IdleHistogram, observe_idle_periods
from autoscaler.tuner.keepalive import LearnedKeepAlive
from autoscaler.tuner.keepalive_plan import KeepAlivePlan, plan
from autoscaler.tuner.lived import history_keep_s, lived_concurrency
from autoscaler.tuner.observation import KNATIVE_DEFAULT_TARGET, RevisionObservation
from autoscaler.tuner.settings import TunerConfig
from autoscaler.tuner.spec import ModelScalerSpec, UpdateMode
from autoscaler.tuner.state import AppliedValues, RevisionState
from autoscaler.tuner.target import Judgement, TargetDecision, decide_target, settling
from autoscaler.tuner.windows import KeepAliveWindows

ANNOTATION_TARGET = "autoscaling.knative.dev/target"
ANNOTATION_RETENTION = "autoscaling.knative.dev/scale-to-zero-pod-retention-period"
ANNOTATION_MIN_SCALE = "autoscaling.knative.dev/min-scale"
ANNOTATION_WINDOW = "autoscaling.knative.dev/window"


@dataclass(frozen=True, slots=True)
class Recommendation:
    """What the tuner wants on one revision at ``now_s``, and why."""

    revision: str
    now_s: float
    mode: UpdateMode
    target: float  # autoscaling.knative.dev/target (the KPA aims at target x utilization)
    keep_alive_s: float  # how long a replica stays warm after the last request
    retention_s: float  # scale-to-zero-pod-retention-period
    min_scale: int
    prewarm_at_s: float | None  # when min-scale next goes to 1 for pre-warm
    warm_until_s: float | None  # when the current keep-alive or pre-warm window closes
    windows: KeepAliveWindows | None
    confidence: float  # 0..1, from the evidence behind the latency curve
    latency_ms: float | None  # the objective's percentile that was judged
    fail_static: bool
    changed: tuple[str, ...]  # the annotations whose value differs from what was applied
    should_apply: bool  # Auto mode and something changed
    reasons: tuple[str, ...]
    observation: RevisionObservation | None
    window_s: float | None = None  # autoscaling.knative.dev/window, when the tuner sets it
    window_reason: str = ""  # why the window is what it is (its change's event says this)
    # the target stage's judgement of the interval against the objective; None when nothing
    # was judged (mode Off, fail-static, a new revision's first target from its predecessor)
    judgement: Judgement | None = None

    def annotations(self) -> dict[str, str]:
        """The annotations as Knative expects their values: target, retention and min-scale,
        and the stable window once the tuner sets it."""
        return format_annotations(self.target, self.retention_s, self.min_scale, self.window_s)

    def changed_annotations(self) -> dict[str, str]:
        """Only the annotations to write (empty when nothing changed)."""
        all_ = self.annotations()
        return {k: all_[k] for k in self.changed}


def format_annotations(
    target: float, retention_s: float, min_scale: int, window_s: float | None
) -> dict[str, str]:
    """Knative's annotations for these values (the window only when there is one)."""
    out = {
        ANNOTATION_TARGET: format_target(target),
        ANNOTATION_RETENTION: f"{round(retention_s)}s",
        ANNOTATION_MIN_SCALE: str(min_scale),
    }
    if window_s is not None:
        out[ANNOTATION_WINDOW] = f"{round(window_s)}s"  # whole seconds, as Knative takes them
    return out


def format_target(target: float) -> str:
    """Three significant digits, no exponent: ``4.2``, ``17``, ``0.05``."""
    text = f"{target:.3g}"
    return f"{float(text):f}".rstrip("0").rstrip(".") if "e" in text else text


def recommend(
    obs: RevisionObservation | None,
    spec: ModelScalerSpec,
    config: TunerConfig,
    state: RevisionState,
    now_s: float,
) -> tuple[Recommendation, RevisionState]:
    """The recommendation for one revision at ``now_s`` and the state to keep."""
    # Stage 1: mode.
    if spec.update_mode == "Off":
        off = ("updateMode Off: not learning, nothing applied",)
        return _static(obs, spec, config, state, now_s, False, off), state

    # Stage 2: freshness.
    stale_after = config.loop.stale_after_s
    if obs is None or now_s - obs.t_s > stale_after:
        why = (
            "no metrics for this revision"
            if obs is None
            else f"metrics are stale (last interval ended {now_s - obs.t_s:.0f} s ago, limit {stale_after:.0f} s)"
        )
        why += ": fail-static, keeping the last applied values (nothing lowered, nothing to zero)"
        return _static(obs, spec, config, state, now_s, True, (why,)), state

    # Stage 3: learn.
    ts, ks = config.target, config.keep_alive
    state = _clock_stepped_back(state, now_s)
    in_flight = obs.request_count == 0 and obs.avg_concurrency_per_replica > 0
    unfinished_since: float | None = None
    if in_flight:
        unfinished_since = (
            state.unfinished_since_s if state.unfinished_since_s is not None else obs.t_s
        )
    elif obs.request_count == 0 and not obs.in_flight_known:
        # none finished and the source cannot tell whether any is in flight: the count of how
        # long they have been goes on (neither started nor restarted)
        unfinished_since = state.unfinished_since_s
    unfinished_for_s = (
        now_s - unfinished_since if in_flight and unfinished_since is not None else 0.0
    )
    history = state.history
    if obs.ready_replicas > 0 and not obs.concurrency_from_completions:  # see lived.py
        history = history.add(
            obs.start_s,
            obs.t_s,
            obs.avg_concurrency_per_replica,
            history_keep_s(spec.objective_latency_ms, obs.interval_s),
        )
    # Requests longer than the interval were served at the concurrency of their lifetime.
    lived = lived_concurrency(obs, history, unfinished_for_s)
    latency = state.latency
    woke_s = obs.t_s if obs.ready_replicas > 0 and state.ready_seen == 0 else state.woke_s
    # Latencies from an interval begun before the last target change took effect belong to
    # the old target (requests started at the old concurrency finish in it), and those of the
    # interval the revision came up from zero in to the wake-up: not learned.
    if (
        obs.request_count > 0
        and not settling(obs, state.last_target_change_s, ts.settle_s)
        and not settling(obs, woke_s, ts.settle_s)
    ):
        latency = latency.add(
            obs.t_s,
            lived,
            obs.latency_counts,
            ts.latency_half_life_s,
            obs.tail_sum_ms,
            obs.exact_sum_ms,
        )
    idle_periods, activity = observe_idle_periods(
        obs, state.activity, ks.min_idle_s, ks.cold_start_s
    )
    idle = state.idle
    for gap, woken in idle_periods:
        idle = idle.add(obs.t_s, gap, ks.idle_half_life_s, woken)
    idle = idle.count_requests(obs.t_s, obs.request_count, ks.idle_half_life_s)
    rate = state.rate.add(obs.t_s, obs.request_count, ks.rate_half_life_s, obs.interval_s)
    reasons: list[str] = []

    # Stage 4: target.
    current = _current_target(obs, state)
    applied_min_scale = state.applied.min_scale if state.applied else 0
    floor = max(1, spec.replicas_min, applied_min_scale)
    # The previous revision's target is a one-tick start: once proposed (and, in Auto mode,
    # applied: a failed write keeps the previous state, so it is proposed again) the revision is
    # judged on its own evidence, also where nothing is ever applied (Recommend, paused).
    inherited_start = (
        state.inherited_from is not None
        and state.applied is None
        and state.last_target is not None
        and state.inherited_start_s is None
    )
    if inherited_start:
        assert state.last_target is not None
        decision = TargetDecision(
            state.last_target, True, state.knee, 0.0, None,
            f"new revision: starting from {state.inherited_from}'s target {state.last_target:.3g}",
        )  # fmt: skip
    else:
        decision = decide_target(
            obs, latency, state.knee, current, spec, ts, now_s, state.last_target_change_s, floor,
            step_limited=spec.update_mode == "Auto",
            unfinished_for_s=unfinished_for_s,
            lived_concurrency=lived,
            woke_s=woke_s,
        )  # fmt: skip
    reasons.append(decision.reason)
    target = _guard_target(
        obs, decision, current, spec, config, state, now_s, reasons, inherited_start
    )

    # Stage 5: keep-alive and pre-warm.
    windows, cached_for, windows_policy = _windows(spec, config, idle, state, now_s)
    applied_window = state.applied.window_s if state.applied else None
    # a longer window waits while a replica idles past the short one, within its keep-alive,
    # and at most that long (see decide_window)
    keep_s = max(ks.stable_window_s + ks.scale_to_zero_grace_period_s, windows.warm_until_s)
    wait_since = state.window_wait_since_s
    hold = (wait_since is None or now_s - wait_since < keep_s) and _replica_idle(
        obs, in_flight, activity.last_request_s, applied_window, spec, applied_min_scale, keep_s,
        now_s,
    )  # fmt: skip
    # the tuner sets no window: written on the InferenceService one would roll out a new
    # revision each time; a user's window on the revision is already in force where the tuner
    # would write (on the PodAutoscaler the tuner must give its own back to the user's)
    managed = spec.apply_method == "podautoscaler" or (
        spec.apply_method == "revision" and spec.user_window_s is None
    )

    # the hysteresis holds on what was applied; in Recommend mode nothing is, so on what was
    # recommended (else a rate about the line would flip the recommendation every tick)
    basis = applied_window
    if spec.update_mode != "Auto" and spec.user_window_s is None:
        basis = state.last_window_s

    def window_for(idle: bool) -> tuple[float | None, str]:
        return decide_window(
            rate,
            basis,
            ks,
            managed=managed,
            user_s=spec.user_window_s,
            replica_idle=idle,
        )

    window_s, window_why = window_for(hold)
    waiting = hold and window_for(False)[0] != window_s
    wait_since = (now_s if wait_since is None else wait_since) if waiting else None
    in_force_window = window_s if window_s is not None else spec.user_window_s
    p = plan(
        windows, activity.last_request_s, now_s, ks, config.loop.tick_period_s, in_force_window
    )
    reasons.append(windows.reason)
    if window_why:
        reasons.append(window_why)
    if p.note:
        reasons.append(p.note)
    min_scale = clamp_min_scale(p.min_scale, spec.replicas_min, spec.replicas_max)
    if min_scale != p.min_scale:
        reasons.append(
            f"min-scale {min_scale} from spec.replicas ({spec.replicas_min}..{spec.replicas_max or 'no limit'})"
        )

    # Stage 6: changes.
    changed = _changed(state.applied, target, p, min_scale, current, window_s)
    should_apply = spec.update_mode == "Auto" and bool(changed)
    if spec.update_mode == "Recommend":
        reasons.append("updateMode Recommend: recommended, not applied")
    applied = state.applied
    if not managed and applied is not None and applied.window_s is not None:
        applied = replace(applied, window_s=None)  # no window of the tuner's is claimed
    last_change = state.last_target_change_s
    if should_apply:
        applied = AppliedValues(target, p.retention_s, min_scale, now_s, window_s)
        if ANNOTATION_TARGET in changed:
            last_change = now_s
    new_state = RevisionState(  # every field: one added to the state is carried here too
        revision=state.revision,
        latency=latency,
        idle=idle,
        activity=activity,
        knee=decision.knee,
        applied=applied,
        last_target_change_s=last_change,
        last_target=target,
        windows=windows if spec.keep_alive_policy == "learned" else state.windows,
        windows_samples=cached_for,
        windows_policy=windows_policy,
        inherited_from=state.inherited_from,
        inherited_start_s=now_s if inherited_start else state.inherited_start_s,
        unfinished_since_s=unfinished_since,
        history=history,
        rate=rate,
        last_window_s=window_s if window_s is not None else state.last_window_s,
        window_wait_since_s=wait_since,
        uid=state.uid,
        ready_seen=obs.ready_replicas,
        woke_s=woke_s,
    )
    rec = Recommendation(
        revision=state.revision,
        now_s=now_s,
        mode=spec.update_mode,
        target=target,
        keep_alive_s=p.keep_alive_s,
        retention_s=p.retention_s,
        min_scale=min_scale,
        prewarm_at_s=p.prewarm_at_s,
        warm_until_s=p.warm_until_s,
        windows=windows,
        confidence=decision.confidence,
        latency_ms=decision.latency_ms,
        fail_static=False,
        changed=changed,
        should_apply=should_apply,
        reasons=tuple(reasons),
        observation=obs,
        window_s=window_s,
        window_reason=window_why,
        judgement=decision.judgement,
    )
    return rec, new_state


def _clock_stepped_back(state: RevisionState, now_s: float) -> RevisionState:
    """A last change or knee dated after ``now_s`` (the clock stepped back, or a controller
    whose clock is behind resumed the checkpoint) is taken as made now: it settles and holds
    for one settle period and apply interval, not until the clock catches up."""
    change = state.last_target_change_s
    knee = state.knee
    if (change is None or change <= now_s) and (knee is None or knee.at_s <= now_s):
        return state
    return replace(
        state,
        last_target_change_s=min(change, now_s) if change is not None else None,
        knee=replace(knee, at_s=now_s) if knee is not None and knee.at_s > now_s else knee,
    )


def _replica_idle(
    obs: RevisionObservation,
    in_flight: bool,
    last_request_s: float | None,
    window_s: float | None,
    spec: ModelScalerSpec,
    min_scale: int,
    keep_s: float,
    now_s: float,
) -> bool:
    """A replica is up and idle for longer than the window in force (``window_s``, the tuner's),
    within its keep-alive, with no min-scale holding it: a longer window now would cut it short
    (``autoscaler.tuner.busy_window.decide_window``)."""
    if window_s is None or last_request_s is None or in_flight or obs.ready_replicas == 0:
        return False
    if max(spec.replicas_min, min_scale) > 0:
        return False  # held: no keep-alive to cut short
    return window_s <= now_s - last_request_s < keep_s


def _current_target(obs: RevisionObservation | None, state: RevisionState) -> float:
    if obs is not None and obs.applied_target is not None:
        return obs.applied_target
    if state.applied is not None:
        return state.applied.target
    return KNATIVE_DEFAULT_TARGET


def _guard_target(
    obs: RevisionObservation,
    decision: TargetDecision,
    current: float,
    spec: ModelScalerSpec,
    config: TunerConfig,
    state: RevisionState,
    now_s: float,
    reasons: list[str],
    inherited_start: bool = False,
) -> float:
    ts = config.target
    proposed = decision.target
    # Recommend mode applies nothing, so it never sees a step's effect: the recommendation is
    # where the evidence points, not one bounded step from the live value.
    if spec.update_mode == "Auto" and not inherited_start and proposed != current:
        # from the target in force: one above containerConcurrency acts as containerConcurrency
        in_force = obs.target_in_force(current)
        proposed, note = bound_step(
            in_force, proposed, ts.max_step_up_ratio, ts.max_step_down_ratio
        )
        if note:
            reasons.append(note)
    if proposed != current and not decision.urgent:
        if within_hysteresis(current, proposed, ts.hysteresis_fraction):
            reasons.append(
                f"change {current:.3g} -> {proposed:.3g} is under {ts.hysteresis_fraction:.0%}: kept {current:.3g}"
            )
            proposed = current
        elif not apply_due(now_s, state.last_target_change_s, config.loop.min_apply_interval_s):
            since = now_s - (state.last_target_change_s or 0.0)
            reasons.append(
                f"last change {since:.0f} s ago, under the {config.loop.min_apply_interval_s:.0f} s "
                f"minimum interval: kept {current:.3g} for now"
            )
            proposed = current
    final, note = clamp_target(proposed, spec.target_min, spec.target_max)
    if note:
        reasons.append(f"target {note}")
    final, note = written_within(final, spec.target_min, spec.target_max)
    if note:
        reasons.append(f"target {note}")
    return final


def _windows(
    spec: ModelScalerSpec,
    config: TunerConfig,
    idle: IdleHistogram,
    state: RevisionState,
    now_s: float,
) -> tuple[KeepAliveWindows, int, LearnedKeepAlive | None]:
    ks = config.keep_alive
    floor = ks.stable_window_s + ks.scale_to_zero_grace_period_s
    if spec.keep_alive_policy == "off":
        off = KeepAliveWindows(0.0, floor, "off", "keepAlive off: Knative's default scale-to-zero")
        return off, -1, None
    if spec.keep_alive_policy == "fixed":
        fixed = spec.keep_alive_fixed_s or 0.0
        return KeepAliveWindows(0.0, fixed, "fixed", f"keepAlive fixed: {fixed:.0f} s"), -1, None
    prewarm = spec.prewarm_enabled and spec.replicas_min == 0
    ratio = LearnedKeepAlive.ratio_for(ks, spec.replica_memory_mb)
    policy = LearnedKeepAlive(ks, prewarm, config.loop.tick_period_s, ratio)
    if (
        state.windows is not None
        and state.windows_samples == idle.count
        and state.windows_policy == policy
    ):
        return state.windows, idle.count, policy
    return policy.decide(idle, now_s), idle.count, policy


def _changed(
    applied: AppliedValues | None,
    target: float,
    p: KeepAlivePlan,
    min_scale: int,
    current: float,
    window_s: float | None = None,
) -> tuple[str, ...]:
    window = (ANNOTATION_WINDOW,) if window_s is not None else ()
    if applied is None:
        return (ANNOTATION_TARGET, ANNOTATION_RETENTION, ANNOTATION_MIN_SCALE, *window)
    out = []
    if not (_written_alike(target, applied.target) and _written_alike(target, current)):
        out.append(ANNOTATION_TARGET)
    if round(p.retention_s) != round(applied.retention_s):
        out.append(ANNOTATION_RETENTION)
    if min_scale != applied.min_scale:
        out.append(ANNOTATION_MIN_SCALE)
    if window and window_s != applied.window_s:
        out.append(ANNOTATION_WINDOW)
    return tuple(out)


def _written_alike(a: float, b: float) -> bool:
    """Whether two targets are written as the same annotation value (``format_target``).
    Equal values are, unless zero (0.0 and -0.0 are equal and written apart): not formatted."""
    return (a == b and a != 0) or format_target(a) == format_target(b)


def _static(
    obs: RevisionObservation | None,
    spec: ModelScalerSpec,
    config: TunerConfig,
    state: RevisionState,
    now_s: float,
    fail_static: bool,
    reasons: tuple[str, ...],
) -> Recommendation:
    """The last applied values, unchanged (fail-static, or mode Off)."""
    a = state.applied
    target = a.target if a is not None else _current_target(obs, state)
    retention = a.retention_s if a is not None else 0.0
    min_scale = a.min_scale if a is not None else spec.replicas_min
    ks = config.keep_alive
    window = a.window_s if a is not None and a.window_s is not None else spec.user_window_s
    return Recommendation(
        revision=state.revision,
        now_s=now_s,
        mode=spec.update_mode,
        target=target,
        keep_alive_s=(window if window is not None else ks.stable_window_s)
        + max(ks.scale_to_zero_grace_period_s, retention),
        retention_s=retention,
        min_scale=min_scale,
        prewarm_at_s=None,
        warm_until_s=None,
        windows=None,
        confidence=0.0,
        latency_ms=None,
        fail_static=fail_static,
        changed=(),
        should_apply=False,
        reasons=reasons,
        observation=obs,
        window_s=a.window_s if a is not None else None,
    )
