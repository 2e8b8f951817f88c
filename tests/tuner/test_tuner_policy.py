"""The policy tick by tick: timelines of (t, observation, expected decision)."""

from __future__ import annotations

from dataclasses import dataclass, replace

import pytest
from tuner_plant import KneePlant, Loop, obs

from autoscaler.tuner import (
    ANNOTATION_MIN_SCALE,
    ANNOTATION_RETENTION,
    ANNOTATION_TARGET,
    LATENCY_BUCKETS_MS,
    ModelScalerSpec,
    Recommendation,
    RevisionObservation,
    RevisionState,
    TunerConfig,
    explain,
    inherit_state,
    learned_status,
    new_state,
    recommend,
    recommendation_status,
)

SPEC = ModelScalerSpec("m", objective_latency_ms=200)
CONFIG = TunerConfig()


@dataclass(frozen=True)
class Step:
    now: float
    observation: RevisionObservation | None
    target: float  # expected recommended target
    apply: bool
    says: str  # expected in the first reason


def run(
    steps: list[Step], spec: ModelScalerSpec = SPEC, state: RevisionState | None = None
) -> list[Recommendation]:
    state = state or new_state("rev-1")
    out = []
    for step in steps:
        rec, state = recommend(step.observation, spec, CONFIG, state, step.now)
        assert rec.target == pytest.approx(step.target, rel=0.01), (step, rec.reasons)
        assert rec.should_apply == step.apply, (step, rec.reasons)
        assert step.says in rec.reasons[0], (step.says, rec.reasons)
        out.append(rec)
    return out


TIMELINES = {
    "miss-backs-off-at-once": [
        # 1 replica at 20 conc misses 200 ms: down (bounded to /2 of 20).
        Step(30, obs(30, 14, 1, 900, 20.0), 10.0, True, "misses the 200 ms objective"),
        # The interval [10, 40] began before the change: its latencies are the old target's.
        Step(40, obs(40, 7, 2, 400, 10.0), 10.0, False, "waiting for a full interval"),
        # A full interval at 10 still misses, 30 s after the change: a backoff is exempt from
        # the minimum apply interval (60 s).
        Step(60, obs(60, 7, 2, 400, 10.0), 5.0, True, "misses"),
    ],
    "room-explores-up-then-waits-a-full-interval": [
        Step(30, obs(30, 3.5, 4, 50, 5.0), 6.25, True, "exploring up to 4.38"),
        # The interval [20, 50] straddles the change at 30: wait.
        Step(50, obs(50, 3.5, 4, 50, 6.25), 6.25, False, "waiting for a full interval"),
    ],
    "no-room-holds": [
        Step(
            30, obs(30, 3.5, 4, 160, 5.0), 5.0, True, "exploring needs 20%"
        ),  # first tick writes all
        Step(60, obs(60, 3.5, 4, 160, 5.0), 5.0, False, "holding"),
    ],
    "floor-replica-does-not-explore": [
        Step(30, obs(30, 2.0, 1, 50, 10.0), 10.0, True, "at the floor"),
    ],
    "few-requests-hold": [
        # five 50 ms requests in 30 s on 3 replicas: 0.003 in flight per replica
        Step(30, obs(30, 0.003, 3, 50, 10.0, n=5), 10.0, True, "too few to judge"),
    ],
    "few-completions-many-in-flight-backs-off": [
        # five finished while 2 per replica stayed in flight all along: by Little's law
        # requests spend over 17 s in a replica, far past the 200 ms objective
        Step(30, obs(30, 2.0, 3, 50, 10.0, n=5), 5.0, True, "requests in flight"),
    ],
    "no-traffic-holds": [
        Step(30, obs(30, 0.0, 0, 50, 10.0, n=0), 10.0, True, "no requests in the interval"),
    ],
    "fail-static-without-metrics": [
        Step(30, obs(30, 3.5, 4, 160, 5.0), 5.0, True, "holding"),
        Step(60, None, 5.0, False, "no metrics for this revision: fail-static"),
        # An observation 300 s old is stale (limit 120 s).
        Step(360, obs(60, 30, 1, 5000, 5.0), 5.0, False, "metrics are stale"),
    ],
}


@pytest.mark.parametrize("name", list(TIMELINES))
def test_timeline(name: str) -> None:
    run(TIMELINES[name])


RECOMMEND = replace(SPEC, update_mode="Recommend")

# (spec, steps): Recommend mode applies nothing, so its recommendation is where the evidence
# points, not one bounded step from the live value; Auto keeps its per-step limits.
MODE_TIMELINES = {
    "recommend-goes-where-the-miss-points-and-stays": (
        RECOMMEND,
        [
            # 14 conc/replica at p95 900 ms against 200 ms: 14 x 0.9 x 200/900 = 2.8 -> 4.0.
            Step(30, obs(30, 14, 1, 900, 20.0), 4.0, False, "in proportion to the miss"),
            # The live target is still 20 (nothing applied): the same evidence, the same
            # recommendation, not a walk of halvings.
            Step(60, obs(60, 14, 1, 900, 20.0), 4.0, False, "in proportion to the miss"),
        ],
    ),
    "auto-backs-off-one-bounded-step": (
        SPEC,
        [Step(30, obs(30, 14, 1, 900, 20.0), 10.0, True, "misses the 200 ms objective")],
    ),
    "recommend-goes-to-the-learned-safe-concurrency": (
        RECOMMEND,
        [
            Step(30, obs(30, 3.0, 4, 100, 5.0), 6.25, False, "exploring up to 4.38"),
            # 3 met it with 400 requests: 3 less the margin (20.5 % at 63 % confidence) is
            # 2.38 conc/replica, target 3.41, although Auto would stop at 20 / 2 = 10.
            Step(60, obs(60, 14, 1, 900, 20.0), 3.41, False, "below 3 that met it"),
        ],
    ),
    "auto-bounds-the-step-to-the-learned-safe-concurrency": (
        SPEC,
        [
            Step(30, obs(30, 3.0, 4, 100, 5.0), 6.25, True, "exploring up to 4.38"),
            Step(60, obs(60, 14, 1, 900, 20.0), 10.0, True, "below 3 that met it"),
        ],
    ),
    # Under one request per replica requests do not share a replica: a lower target only adds
    # idle replicas, so such a miss is the model's own latency.
    "miss-under-one-request-per-replica-holds": (
        SPEC,
        [
            Step(30, obs(30, 0.7, 5, 900, 1.0), 1.0, True, "not the target's doing"),
            Step(60, obs(60, 0.7, 5, 900, 1.0), 1.0, False, "not the target's doing"),
        ],
    ),
    # A step in traffic the replicas have not caught up with (a canary promoted to all of it):
    # 4 requests per replica against an aim of 1.4 (target 2 at 70 %) miss; backing off in
    # proportion from 4 (4 x 0.6 = 2.4) would raise the aim, so the target holds.
    "a-miss-above-the-aim-never-raises-the-target": (
        SPEC,
        [
            Step(30, obs(30, 4.0, 1, 300, 2.0), 2.0, True, "already under the 2.4"),
            Step(60, obs(60, 4.0, 1, 300, 2.0), 2.0, False, "before the replicas caught up"),
        ],
    ),
    "back-off-stops-at-one-request-per-replica": (
        SPEC,
        [
            # proportional would be 1.4 x 0.5 = 0.7; it stops at 1 conc/replica: 1 / 0.7.
            Step(30, obs(30, 1.4, 5, 900, 2.0), 1 / 0.7, True, "stop sharing a replica"),
        ],
    ),
    "no-room-under-one-request-per-replica-is-no-edge": (
        SPEC,
        [
            # 196 ms against 200 ms at 0.7 conc/replica: the model's own latency, not an edge
            # (which would be remembered and cap exploring for knee_memory_s)
            Step(30, obs(30, 0.7, 5, 196, 1.0), 1.0, True, "exploring needs 20%"),
        ],
    ),
    # A knee just above one request per replica: its cap (less the margin) is under one, but
    # the aim does not follow it there (it would only add idle replicas).
    "a-knee-near-one-lowers-the-aim-no-further-than-one": (
        SPEC,
        [
            Step(30, obs(30, 1.05, 5, 900, 1 / 0.7), 1 / 0.7, True, "stop sharing a replica"),
            Step(120, obs(120, 0.9, 5, 50, 1 / 0.7), 1 / 0.7, False, "within reach: settled"),
        ],
    ),
    "misses-under-one-request-per-replica-learn-no-knee": (
        SPEC,
        [
            Step(30, obs(30, 0.7, 5, 900, 1.0), 1.0, True, "not the target's doing"),
            Step(60, obs(60, 0.7, 5, 900, 1.0), 1.0, False, "not the target's doing"),
            # 800 requests missed at 0.7, yet meeting with room at 3 explores upward: no knee
            # at 0.7 caps it (it would lower the target to 0.7 x 0.8 / 0.7 = 0.8).
            Step(120, obs(120, 3.0, 4, 50, 5.0), 6.25, True, "exploring up to 4.38"),
        ],
    ),
}


@pytest.mark.parametrize("name", list(MODE_TIMELINES))
def test_mode_and_shared_concurrency_timeline(name: str) -> None:
    spec, steps = MODE_TIMELINES[name]
    run(steps, spec)


def test_min_shared_concurrency_zero_restores_backing_off_below_one() -> None:
    config = replace(CONFIG, target=replace(CONFIG.target, min_shared_concurrency=0.0))
    rec, _ = recommend(obs(30, 0.7, 5, 900, 1.0), SPEC, config, new_state("r"), 30)
    assert rec.target == pytest.approx(0.5) and "misses" in rec.reasons[0]


def test_hysteresis_and_min_interval_hold_small_or_early_changes() -> None:
    # Settled at 5 with 4 replicas; explore is 1.25x but the knee caps it near: under 10 %.
    state = replace(new_state("r"), knee=None)
    rec, state = recommend(obs(30, 3.5, 4, 50, 5.0), SPEC, CONFIG, state, 30)
    assert rec.should_apply and rec.target == pytest.approx(6.25)
    # 40 s later (< 60 s interval), room again: the next step waits for the interval.
    rec, _ = recommend(obs(70, 4.2, 4, 50, 6.25), SPEC, CONFIG, state, 70)
    assert rec.target == pytest.approx(6.25)
    assert any("minimum interval" in r for r in rec.reasons)


def test_fail_static_keeps_min_scale_and_never_goes_to_zero() -> None:
    spec = ModelScalerSpec("m", 200, replicas_min=1)
    rec, state = recommend(obs(30, 1.0, 1, 50, 5.0), spec, CONFIG, new_state("r"), 30)
    assert rec.min_scale == 1
    static, same = recommend(None, spec, CONFIG, state, 600)
    assert static.fail_static and static.min_scale == 1 and static.target == rec.target
    assert not static.should_apply and same is state
    assert "FAIL-STATIC" in explain(static)[0]
    assert any("fail-static" in line for line in explain(static))


def test_requests_in_flight_with_none_finishing_are_a_miss_once_past_the_objective() -> None:
    # Minutes-long requests at Knative's default target: 70 in flight per replica, none
    # finishing. Nothing is known until one has been in flight longer than the 60 s objective;
    # then it is a miss and the target backs off in proportion (90 s in flight: to 0.9 x 60/90
    # of 70 per replica, target 60), and on at every tick while none finishes.
    spec = ModelScalerSpec("m", objective_latency_ms=60_000)
    state = new_state("r")
    targets = []
    for t in range(30, 181, 30):
        in_force = targets[-1] if targets else 100.0
        o = obs(t, 0.7 * in_force, 2, 50, targets[-1] if targets else None, n=0)
        rec, state = recommend(o, spec, CONFIG, state, t)
        targets.append(rec.target)
    assert state.unfinished_since_s == 30
    assert targets[:3] == [100.0, 100.0, 100.0]  # in flight 0, 30, 60 s: not past 60 s yet
    assert targets[3] == pytest.approx(60.0)
    assert targets[3] > targets[4] > targets[5]
    assert "with none finished" in rec.reasons[0]
    # one finishes: the run ends
    rec, state = recommend(obs(210, 5.0, 2, 50, 12.5, n=3), spec, CONFIG, state, 210)
    assert state.unfinished_since_s is None


def test_an_interval_that_cannot_tell_what_is_in_flight_does_not_restart_the_count() -> None:
    # Requests in flight since 30 s; at 90 s the source has no sample of its gauge (scraped
    # too seldom): the count goes on, so at 120 s they have been in flight 90 s, past the 60 s
    # objective, and the target backs off as if the gap had been read. An interval read as
    # none in flight does end it.
    spec = ModelScalerSpec("m", objective_latency_ms=60_000)
    state = new_state("r")
    for t in (30, 60):
        _, state = recommend(obs(t, 70.0, 2, 50, None, n=0), spec, CONFIG, state, t)
    assert state.unfinished_since_s == 30
    unknown = replace(obs(90, 0.0, 2, 50, None, n=0), in_flight_known=False)
    rec, state = recommend(unknown, spec, CONFIG, state, 90)
    assert state.unfinished_since_s == 30 and rec.target == 100.0
    rec, state = recommend(obs(120, 70.0, 2, 50, None, n=0), spec, CONFIG, state, 120)
    assert state.unfinished_since_s == 30
    assert rec.target < 100.0 and "in flight 90 s with none finished" in rec.reasons[0]
    _, state = recommend(obs(150, 0.0, 2, 50, rec.target, n=0), spec, CONFIG, state, 150)
    assert state.unfinished_since_s is None


def test_thin_history_falls_back_to_a_ten_minute_keep_alive() -> None:
    rec, _ = recommend(obs(30, 1.0, 1, 50, 5.0), SPEC, CONFIG, new_state("r"), 30)
    assert rec.windows is not None and rec.windows.kind == "fallback"
    assert (rec.keep_alive_s, rec.retention_s, rec.min_scale) == (600.0, 540.0, 0)


def test_fixed_and_off_keep_alive() -> None:
    fixed = ModelScalerSpec("m", 200, keep_alive_policy="fixed", keep_alive_fixed_s=600)
    rec, _ = recommend(obs(30, 1.0, 1, 50, 5.0), fixed, CONFIG, new_state("r"), 30)
    assert (rec.keep_alive_s, rec.retention_s) == (600.0, 540.0)
    assert rec.annotations()[ANNOTATION_RETENTION] == "540s"
    off = ModelScalerSpec("m", 200, keep_alive_policy="off")
    rec, _ = recommend(obs(30, 1.0, 1, 50, 5.0), off, CONFIG, new_state("r"), 30)
    assert rec.retention_s == 0.0 and rec.windows is not None and rec.windows.kind == "off"


def test_modes_off_and_recommend_apply_nothing() -> None:
    off = replace(SPEC, update_mode="Off")
    rec, state = recommend(obs(30, 14, 1, 900, 20.0), off, CONFIG, new_state("r"), 30)
    assert not rec.should_apply and rec.target == 20.0 and state == new_state("r")
    rmode = replace(SPEC, update_mode="Recommend")
    rec, state = recommend(obs(30, 14, 1, 900, 20.0), rmode, CONFIG, new_state("r"), 30)
    # where the miss points (14 x 0.9 x 200/900 = 2.8 conc/replica), not one step (10)
    assert rec.target == pytest.approx(4.0) and not rec.should_apply and rec.changed
    assert state.applied is None and state.latency.bins  # learned, nothing applied
    assert "would write (not applied)" in explain(rec)[-1]


def test_only_changed_annotations_are_written() -> None:
    state = new_state("r")
    first, state = recommend(obs(30, 3.5, 4, 160, 5.0), SPEC, CONFIG, state, 30)
    assert set(first.changed_annotations()) == {
        ANNOTATION_TARGET,
        ANNOTATION_RETENTION,
        ANNOTATION_MIN_SCALE,
    }
    assert first.annotations() == {
        ANNOTATION_TARGET: "5",
        ANNOTATION_RETENTION: "540s",
        ANNOTATION_MIN_SCALE: "0",
    }
    second, state = recommend(obs(60, 3.5, 4, 160, 5.0), SPEC, CONFIG, state, 60)
    assert second.changed == () and not second.should_apply
    third, _ = recommend(obs(90, 7, 2, 900, 5.0), SPEC, CONFIG, state, 90)
    assert third.changed == (ANNOTATION_TARGET,)


def test_new_revision_inherits_what_the_previous_learned() -> None:
    loop = Loop(KneePlant(4, 40), SPEC)
    loop.run(30)
    learned_target = loop.state.last_target
    assert learned_target is not None
    child = inherit_state(loop.state, "rev-2")
    assert child.inherited_from == "rev-1" and child.applied is None
    assert child.latency.evidence(loop.now_s, 3600) < loop.state.latency.evidence(loop.now_s, 3600)
    # The new revision starts with Knative's default target (100) on it; the first tick jumps
    # straight to the learned target instead of walking down from 100.
    t = loop.now_s + 30
    rec, after = recommend(loop.plant.observe(t, 30, None), SPEC, CONFIG, child, t)
    assert rec.target == pytest.approx(learned_target) and rec.should_apply
    assert "new revision: starting from rev-1's target" in rec.reasons[0]
    assert after.applied is not None and rec.confidence < 1


def test_a_canary_inherits_its_share_of_the_request_rate() -> None:
    loop = Loop(KneePlant(4, 40), SPEC)
    loop.run(30)
    rps = loop.state.rate.rps()
    assert rps is not None and rps > 0
    canary = inherit_state(loop.state, "rev-2", traffic_fraction=0.1)
    assert canary.rate.rps() == pytest.approx(rps / 10)
    assert canary.rate.seconds == loop.state.rate.seconds  # as much history behind it
    assert inherit_state(loop.state, "rev-2").rate == loop.state.rate
    with pytest.raises(ValueError, match=r"traffic_fraction must be within 0\.\.1, got 1\.5"):
        inherit_state(loop.state, "rev-2", traffic_fraction=1.5)


def test_explain_and_status_render_the_decision() -> None:
    loop = Loop(KneePlant(4, 40), SPEC)
    loop.run(10)
    rec = loop.history[-1][4]
    lines = explain(rec)
    assert lines[0].startswith("revision rev-1 at t=300 s (mode Auto)")
    assert any("conc/replica" in line for line in lines) and "why:" in lines
    status = recommendation_status(rec)
    assert status["target"] == pytest.approx(rec.target, rel=0.01) and status["reasons"]
    learned = learned_status(loop.state, SPEC, CONFIG, loop.now_s)
    assert learned["name"] == "rev-1" and learned["points"] and len(learned["points"][0]) == 3
    assert learned["idleHistogram"]["samples"] == 0


def test_observation_rejects_bad_input_with_clear_messages() -> None:
    with pytest.raises(ValueError, match="latency_counts must have 27 entries"):
        RevisionObservation(1, 1, 1, 1.0, 1, (1.0,))
    with pytest.raises(ValueError, match="interval_s must be > 0"):
        RevisionObservation(1, 0, 1, 1.0, 1, (0.0,) * 27)


def short_obs(t: float, interval: float, c: float, replicas: int, p95: float, target: float,
              n: int = 400) -> RevisionObservation:  # fmt: skip
    return replace(obs(t, c, replicas, p95, target, n), interval_s=interval)


@pytest.mark.parametrize(
    ("start_after_change_s", "judged"),
    [
        pytest.param(-2.0, False, id="began-before-the-change"),
        pytest.param(2.0, False, id="began-inside-settle"),
        pytest.param(6.0, True, id="began-once-settled"),
    ],
)
def test_settling_interval_is_neither_judged_nor_learned(
    start_after_change_s: float, judged: bool
) -> None:
    # 2 s ticks, settle_s 6: a backoff at t=100, then a 2 s interval beginning at 100 + x that
    # still shows the old target's latencies (900 ms at 7 conc/replica).
    config = replace(CONFIG, target=replace(CONFIG.target, settle_s=6.0))
    state = new_state("r")
    rec, state = recommend(short_obs(100, 2, 14, 1, 900, 20.0), SPEC, config, state, 100)
    assert rec.should_apply and rec.target == pytest.approx(10.0)
    t = 100 + start_after_change_s + 2
    after, next_state = recommend(short_obs(t, 2, 7, 2, 900, 10.0), SPEC, config, state, t)
    if judged:
        assert after.target < 10.0 and "misses" in after.reasons[0]
        assert next_state.latency.evidence(t, 3600) > state.latency.evidence(t, 3600)
    else:
        assert after.target == pytest.approx(10.0) and not after.should_apply
        assert "waiting" in after.reasons[0], after.reasons
        assert next_state.knee == state.knee
        assert next_state.latency == state.latency, "a settling interval teaches nothing"


@pytest.mark.parametrize("settle_s", [0.0, 6.0])
def test_the_interval_a_revision_comes_up_from_zero_in_is_neither_judged_nor_learned(
    settle_s: float,
) -> None:
    """Requests the activator held at zero reach the first ready replica together while the
    others start: 900 ms at 3 conc/replica averaged over 2 replicas is the wake-up's, not a knee
    at 3. The next interval (settle_s 0), or the first begun settle_s after it, is judged."""
    config = replace(CONFIG, target=replace(CONFIG.target, settle_s=settle_s))
    state = new_state("r")
    _, state = recommend(
        replace(obs(30, 0, 0, 0, 20.0, n=0), ready_replicas=0), SPEC, config, state, 30
    )
    woke, after = recommend(short_obs(62, 2, 3, 2, 900, 20.0), SPEC, config, state, 62)
    assert woke.target == pytest.approx(20.0) and not woke.should_apply
    assert "came up from zero" in woke.reasons[0], woke.reasons
    assert after.knee == state.knee and after.latency == state.latency, "nothing learned"
    state = after
    t = 64.0
    if settle_s:
        held, state = recommend(short_obs(t, 2, 3, 2, 900, 20.0), SPEC, config, state, t)
        assert "after the revision came up from zero" in held.reasons[0], held.reasons
        t = 62 + settle_s + 2
    judged, state = recommend(short_obs(t, 2, 7, 2, 900, 20.0), SPEC, config, state, t)
    assert judged.target < 20.0 and "misses" in judged.reasons[0]
    assert state.latency.evidence(t, 3600) > after.latency.evidence(t, 3600)


def test_one_slow_interval_at_a_well_known_level_backs_off_but_learns_no_knee() -> None:
    # 20 intervals at 3.5 conc/replica meeting 200 ms with 60 % room, then one at 600 ms.
    config = replace(CONFIG, loop=replace(CONFIG.loop, min_apply_interval_s=0))
    spec = replace(SPEC, target_max=5.0)  # keeps the target (and concurrency) where it is
    state = new_state("r")
    for i in range(20):
        t = 30.0 * (i + 1)
        _, state = recommend(obs(t, 3.5, 4, 80, 5.0), spec, config, state, t)
    slow, after = recommend(obs(630, 3.5, 4, 600, 5.0), spec, config, state, 630)
    assert slow.should_apply and slow.target < 5.0, "a miss always backs off at once"
    assert after.knee is None, "the curve at 3.5 still meets the objective: no knee"


def test_a_briefly_seen_level_becomes_a_knee_when_it_misses_again() -> None:
    # min_bin_requests 500, 400 requests per interval: one miss at 7 conc/replica is not yet
    # evidence of a knee (it still backs off); a second miss there is.
    config = replace(CONFIG, target=replace(CONFIG.target, min_bin_requests=500.0))
    state = new_state("r")
    first, state = recommend(obs(30, 7, 2, 900, 20.0), SPEC, config, state, 30)
    assert first.should_apply and first.target < 20.0 and state.knee is None
    again, state = recommend(obs(60, 7, 2, 900, first.target), SPEC, config, state, 60)
    assert again.target < first.target
    assert state.knee is not None and state.knee.concurrency == pytest.approx(7)


def test_an_exact_sum_reads_a_wide_bucket_as_the_requests_it_holds() -> None:
    # 19.9 s requests served in 20.5 s at one per replica: all in Knative's (20, 50] s bucket,
    # which linear interpolation reads as p95 48.5 s, a miss of a 39.8 s objective
    spec = ModelScalerSpec("m", objective_latency_ms=39_800)
    counts = [0.0] * 27
    counts[24] = 100.0  # (20000, 50000] ms: the bucket reads p95 as 48.5 s
    assert LATENCY_BUCKETS_MS[24] == 50_000

    def interval(exact: bool) -> RevisionObservation:
        return RevisionObservation(
            30.0, 30.0, 50, 1.0, 100, tuple(counts), 1 / 0.7,
            latency_sum_ms=100 * 20_500.0, sum_matches_counts=exact,
        )  # fmt: skip

    rec, _ = recommend(interval(True), spec, CONFIG, new_state("r"), 30.0)
    # the sum allows at most 5 % of them above 20 + 0.5 / 0.05 s
    assert "p95 30000 ms" in rec.reasons[0] and "meets" in rec.reasons[0]
    # the same sum from a source whose counts are estimates (PromQL, re-bucketed): not used
    rec, _ = recommend(interval(False), spec, CONFIG, new_state("r"), 30.0)
    assert "p95 48500 ms" in rec.reasons[0] and "misses" in rec.reasons[0]
