"""A busy revision's stable window: the rate that decides it, the window written, the keep-alive
kept as long as on the default window."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
from tuner_plant import latency_counts

from autoscaler.tuner import (
    ANNOTATION_RETENTION,
    ANNOTATION_WINDOW,
    KeepAliveSettings,
    ModelScalerSpec,
    RevisionObservation,
    SettingsError,
    TunerConfig,
    decode_checkpoint,
    encode_checkpoint,
    new_state,
    parse_tuner_config,
    plan,
    recommend,
)
from autoscaler.tuner.busy_window import MIN_RATE_HISTORY_S, RequestRate, decide_window
from autoscaler.tuner.state import RevisionState
from autoscaler.tuner.windows import KeepAliveWindows

SPEC = ModelScalerSpec("m", objective_latency_ms=200)
KS = KeepAliveSettings()


def test_the_rate_counts_the_time_without_ticks() -> None:
    rate = RequestRate().add(0.0, 0, 3600.0)
    for t in range(30, 1230, 30):  # 20 minutes at one request a second
        rate = rate.add(float(t), 30, 3600.0)
    assert rate.rps() == pytest.approx(1.0, rel=0.02)
    # then two hours at zero with no tick (a revision at rest is not ticked): the first tick
    # after counts them
    later = rate.add(1200.0 + 7200.0, 0, 3600.0)
    rps = later.rps()
    assert rps is not None and rps < 0.2
    assert RequestRate().add(0.0, 500, 3600.0).add(30.0, 500, 3600.0).rps() is None  # too new


def rate_at(rps: float) -> RequestRate:
    rate = RequestRate().add(0.0, 0, 3600.0)
    for t in range(30, int(MIN_RATE_HISTORY_S) + 120, 30):
        rate = rate.add(float(t), rps * 30, 3600.0)
    return rate


def test_the_window_shortens_when_busy_and_comes_back_under_half_the_rate() -> None:
    assert decide_window(rate_at(0.01), None, KS) == (None, "")  # never busy: left alone
    window, why = decide_window(rate_at(1.0), None, KS)
    assert window == 15.0 and "busy" in why
    assert decide_window(rate_at(0.02), 15.0, KS)[0] == 15.0  # between half and the line: kept
    window, why = decide_window(rate_at(0.01), 15.0, KS)
    assert window == 60.0 and "no longer busy" in why
    assert decide_window(rate_at(0.02), 60.0, KS)[0] == 60.0  # not busy again yet
    off = replace(KS, busy_window_s=0.0)
    assert decide_window(rate_at(1.0), None, off) == (None, "")
    assert decide_window(rate_at(1.0), 15.0, off)[0] == 60.0  # turned off: the default back


def test_a_busy_window_under_six_seconds_is_refused() -> None:
    with pytest.raises(SettingsError, match="busy_window_s"):
        parse_tuner_config({"busy_window_s": "3"})
    assert parse_tuner_config({"busy_window_s": "0"}).keep_alive.busy_window_s == 0.0


@pytest.mark.parametrize(
    ("windows", "retention"),
    [
        (KeepAliveWindows(0.0, 600.0, "keep-alive", ""), 594.0),  # 6 + 594 = 60 + 540
        # Knative's floor: retention 0 on 60 s waits the 30 s grace: 6 + 84 = 60 + 30
        (KeepAliveWindows(0.0, 90.0, "keep-alive", ""), 84.0),
        (KeepAliveWindows(1800.0, 2400.0, "pre-warm", ""), 84.0),  # unloaded as on 60 s
        (KeepAliveWindows(0.0, 3640.0, "keep-alive", ""), 3600.0),  # Knative's 1 h limit
    ],
)
def test_the_retention_is_longer_by_what_the_window_is_shorter(
    windows: KeepAliveWindows, retention: float
) -> None:
    """A replica goes a window, then max(grace, retention), after the last request (the
    activator in the path, as when it has been at one replica a while): as on the default
    window, at Knative's floor too (90 s, not 36 s)."""
    default = plan(windows, 1000.0, 1010.0, KS, 30.0)
    short = plan(windows, 1000.0, 1010.0, KS, 30.0, window_s=6.0)
    assert short.retention_s == retention
    grace = KS.scale_to_zero_grace_period_s
    if retention < 3600.0:
        assert 6.0 + max(grace, short.retention_s) == 60.0 + max(grace, default.retention_s)
        assert (short.min_scale, short.prewarm_at_s) == (default.min_scale, default.prewarm_at_s)
    else:  # 6 s + 1 h falls short of 3,640 s: min-scale holds the replica the 34 s left
        assert short.min_scale == 1 and default.min_scale == 0


def busy_obs(t: float, n: int = 300) -> RevisionObservation:
    return RevisionObservation(
        t_s=t,
        interval_s=30.0,
        ready_replicas=3,
        avg_concurrency_per_replica=2.0,
        request_count=n,
        latency_counts=latency_counts(50, n),
        applied_target=5.0,
    )


def test_a_busy_revision_gets_the_short_window_and_keeps_its_keep_alive() -> None:
    state = new_state("r")
    written: dict[str, str] = {}
    t = 0.0
    while ANNOTATION_WINDOW not in written and t < 3600:
        t += 30.0
        rec, state = recommend(busy_obs(t), SPEC, TunerConfig(), state, t)
        if rec.should_apply:
            written.update(rec.changed_annotations())
    assert written[ANNOTATION_WINDOW] == "15s"
    assert MIN_RATE_HISTORY_S <= t <= MIN_RATE_HISTORY_S + 120  # once the rate is known
    assert any("busy: 10 requests/s" in r for r in rec.reasons)
    assert written[ANNOTATION_RETENTION] == "585s"  # the fallback's 600 s, on a 15 s window
    # a checkpoint keeps the rate and the window written
    back = decode_checkpoint(encode_checkpoint({"r": state}))["r"]
    assert back.rate == state.rate and back.applied == state.applied
    assert back.applied is not None and back.applied.window_s == 15.0
    # ten hours later (no tick at rest) one request, 20 s before the tick: the KPA's 15 s
    # window no longer holds it, so a 60 s one now would read a minute of nothing at once and
    # let the replica go 45 s early: the way back waits until no replica idles
    t += 36000.0
    one = replace(
        busy_obs(t, n=1), ready_replicas=1, avg_concurrency_per_replica=0.01, arrivals_s=(t - 20,)
    )
    rec, state = recommend(one, SPEC, TunerConfig(), state, t)
    assert ANNOTATION_WINDOW not in rec.changed_annotations()
    assert any("once no replica waits idle" in r for r in rec.reasons)
    t += 30.0
    gone = replace(busy_obs(t, n=0), ready_replicas=0, avg_concurrency_per_replica=0.0)
    rec, state = recommend(gone, SPEC, TunerConfig(), state, t)
    assert rec.changed_annotations()[ANNOTATION_WINDOW] == "60s"
    assert rec.window_reason.startswith("no longer busy")


def test_in_recommend_mode_the_recommended_window_holds_between_half_the_rate_and_the_line() -> (
    None
):
    """Nothing is applied in Recommend mode, so the hysteresis holds on the last recommended
    window: a rate of 0.02/s (between half of 0.03 and 0.03) keeps recommending 15 s, as it
    would keep 15 s applied in Auto mode, instead of flipping back and forth; under half, the
    recommendation is the default 60 s again."""
    spec = replace(SPEC, update_mode="Recommend")
    t = MIN_RATE_HISTORY_S + 120
    config = TunerConfig()
    rec, state = recommend(busy_obs(t), spec, config, replace(new_state("r"), rate=rate_at(1.0)), t)
    assert rec.window_s == 15.0 and not rec.should_apply and state.applied is None
    assert state.last_window_s == 15.0
    back = decode_checkpoint(encode_checkpoint({"r": state}))["r"]
    assert back.last_window_s == 15.0  # kept over a restart
    rec, held = recommend(busy_obs(t, n=1), spec, config, replace(state, rate=rate_at(0.02)), t)
    assert rec.window_s == 15.0
    assert rec.annotations()[ANNOTATION_WINDOW] == "15s"
    rec, _ = recommend(busy_obs(t, n=0), spec, config, replace(held, rate=rate_at(0.005)), t)
    assert rec.window_s == 60.0 and rec.window_reason.startswith("no longer busy")


def test_with_the_busy_window_off_nothing_about_the_window_is_written() -> None:
    config = TunerConfig(keep_alive=KeepAliveSettings(busy_window_s=0.0))
    state = new_state("r")
    for t in range(30, 1800, 30):
        rec, state = recommend(busy_obs(float(t)), SPEC, config, state, float(t))
        assert ANNOTATION_WINDOW not in rec.annotations()


def test_the_rate_weighs_each_second_by_its_age_and_never_counts_one_twice() -> None:
    """A gap's early seconds weigh less than its last ones, as the requests before them do;
    a clock stepping back counts nothing twice."""
    steady = RequestRate().add(0.0, 0, 3600.0, 30.0)
    for t in range(30, 3630, 30):
        steady = steady.add(float(t), 3.0, 3600.0)  # 0.1 requests/s for an hour
    after = steady.add(3600.0 + 7200.0, 0, 3600.0)  # two hours with no tick
    # two half-lives: the hour's requests weigh a quarter; the gap's seconds 3600/ln 2 x 3/4
    expected = steady.requests / 4 / (steady.seconds / 4 + 3600 / math.log(2) * 0.75)
    assert after.rps() == pytest.approx(expected)
    # counted whole, the gap's 7200 s would outweigh the decayed hour before it
    assert after.rps() > (steady.requests / 4) / (steady.seconds / 4 + 7200.0) * 1.3
    back = steady.add(3300.0, 3.0, 3600.0)  # the clock stepped back 300 s
    assert back.last_s == steady.last_s and back.seconds == pytest.approx(steady.seconds)


def test_settings_that_knative_or_the_rate_cannot_take_are_refused() -> None:
    with pytest.raises(SettingsError, match="busy_window_s"):
        parse_tuner_config({"busy_window_s": "15.5"})  # Knative takes whole seconds
    with pytest.raises(SettingsError, match="rate_half_life_s"):
        parse_tuner_config({"rate_half_life_s": "300"})  # would never reach ten minutes


def test_no_window_is_written_through_the_inference_service() -> None:
    """Written on the InferenceService a window would roll out a new revision at each switch."""
    spec = ModelScalerSpec("m", objective_latency_ms=200, apply_method="inferenceservice")
    state = new_state("r")
    for t in range(30, 1800, 30):
        rec, state = recommend(busy_obs(float(t)), spec, TunerConfig(), state, float(t))
        assert ANNOTATION_WINDOW not in rec.annotations()
    assert rec.retention_s == 540.0  # and no retention for a window it does not have


def test_a_window_the_user_set_is_left_alone_and_the_retention_planned_on_it() -> None:
    """The InferenceService's ``autoscaling.knative.dev/window`` is the user's word: a busy
    model gets no window from the tuner, and the keep-alive is reached on the user's window."""
    for user, retention in ((120.0, 480.0), (30.0, 570.0)):
        spec = ModelScalerSpec("m", objective_latency_ms=200, user_window_s=user)
        state = new_state("r")
        for t in range(30, 1800, 30):
            rec, state = recommend(busy_obs(float(t)), spec, TunerConfig(), state, float(t))
            assert ANNOTATION_WINDOW not in rec.annotations()
        # the fallback's 600 s after the last request: the user's window, then the retention
        assert rec.retention_s == retention and rec.keep_alive_s == 600.0
        assert any(f"stable window {user:g} s, as set on the revision" in r for r in rec.reasons)


@pytest.mark.parametrize("apply", ["revision", "podautoscaler"])
def test_a_busy_window_the_tuner_wrote_gives_way_to_the_users(apply: str) -> None:
    """On the revision the user's window is in force at once: the tuner writes none and claims
    none. On the PodAutoscaler (where the tuner's is in force) it writes the user's back."""
    spec = replace(SPEC, apply_method=apply)
    t, state = _with_busy_window(spec)
    user = replace(spec, user_window_s=90.0)
    rec, state = recommend(busy_obs(t + 30), user, TunerConfig(), state, t + 30)
    if apply == "revision":
        assert ANNOTATION_WINDOW not in rec.annotations()
        assert state.applied is not None and state.applied.window_s is None
        assert rec.retention_s == 510.0  # the fallback's 600 s on the user's 90 s window
    else:
        assert rec.changed_annotations()[ANNOTATION_WINDOW] == "90s"
        assert any("the tuner's 15 s withdrawn" in r for r in rec.reasons)
    rec, state = recommend(busy_obs(t + 60), user, TunerConfig(), state, t + 60)
    assert ANNOTATION_WINDOW not in rec.changed_annotations()  # written once at most


@pytest.mark.parametrize(
    ("keep", "retention"),
    [(600.0, 480.0), (150.0, 0.0), (160.0, 40.0), (200.0, 80.0), (90.0, 0.0)],
)
def test_the_retention_is_shorter_by_what_a_longer_window_adds(
    keep: float, retention: float
) -> None:
    """On a 120 s window a replica goes 120 s, then the longer of the grace period (30 s) and
    the retention, after the last request: no retention where the grace period covers it."""
    p = plan(
        KeepAliveWindows(0.0, keep, "keep-alive", ""), 1000.0, 1010.0, KS, 30.0, window_s=120.0
    )
    assert p.retention_s == retention
    assert 120.0 + max(30.0, p.retention_s) == max(keep, 150.0)


def test_fail_static_keeps_the_keep_alive_of_the_window_written() -> None:
    t, state = _with_busy_window()
    rec, _ = recommend(None, SPEC, TunerConfig(), state, t + 30)  # no metrics: fail-static
    assert rec.fail_static and rec.window_s == 15.0
    assert rec.keep_alive_s == 600.0  # 15 s + 585 s, not 60 s + 585 s


def test_with_a_min_scale_holding_the_replica_the_window_comes_back_while_idle() -> None:
    spec = replace(SPEC, replicas_min=1)
    t, state = _with_busy_window(spec)
    t += 36000.0
    quiet = replace(busy_obs(t, n=0), ready_replicas=1, avg_concurrency_per_replica=0.0)
    rec, _ = recommend(quiet, spec, TunerConfig(), state, t)
    assert rec.changed_annotations()[ANNOTATION_WINDOW] == "60s"


def _with_busy_window(spec: ModelScalerSpec = SPEC) -> tuple[float, RevisionState]:
    state = new_state("r")
    t = 0.0
    while not (state.applied and state.applied.window_s == 15.0) and t < 3600:
        t += 30.0
        _, state = recommend(busy_obs(t), spec, TunerConfig(), state, t)
    assert state.applied is not None and state.applied.window_s == 15.0
    assert state.applied is not None and state.applied.window_s == 15.0
    return t, state


@pytest.mark.parametrize("why", ["user-window", "busy-window-off"])
def test_every_way_to_a_longer_window_waits_while_a_replica_idles(why: str) -> None:
    spec, config = replace(SPEC, apply_method="podautoscaler"), TunerConfig()
    t, state = _with_busy_window(spec)
    if why == "user-window":
        spec = replace(spec, user_window_s=120.0)
    else:
        config = TunerConfig(keep_alive=KeepAliveSettings(busy_window_s=0))
    t += 30.0  # requests until 20 s ago, none in flight, one replica up
    one = replace(busy_obs(t, n=1), avg_concurrency_per_replica=0.01, arrivals_s=(t - 20,))
    rec, state = recommend(one, spec, config, state, t)
    assert ANNOTATION_WINDOW not in rec.changed_annotations()
    assert any("once no replica waits idle" in r for r in rec.reasons)
    t += 30.0  # a request 5 s ago: the short window holds it, the longer one will too
    one = replace(busy_obs(t, n=1), avg_concurrency_per_replica=0.01, arrivals_s=(t - 5,))
    rec, _ = recommend(one, spec, config, state, t)
    assert rec.changed_annotations()[ANNOTATION_WINDOW] == (
        "120s" if why == "user-window" else "60s"
    )


def test_through_the_inferenceservice_no_window_is_claimed() -> None:
    """A window written before the apply method became ``inferenceservice`` is left to the
    next rollout: none is recorded as written (the writer there cannot write one)."""
    t, state = _with_busy_window()
    spec = replace(SPEC, apply_method="inferenceservice")
    rec, state = recommend(busy_obs(t + 30), spec, TunerConfig(), state, t + 30)
    assert rec.window_s is None and ANNOTATION_WINDOW not in rec.annotations()
    assert state.applied is not None and state.applied.window_s is None


def test_a_longer_window_is_planned_on_as_knatives_own() -> None:
    """Keep-alive past the 1 h retention limit on a 600 s window: 600 + 3300, no min-scale
    hold; a 90 s keep-alive on a 300 s window is 330 s (window and grace), and says so."""
    long = plan(KeepAliveWindows(0.0, 3900.0, "keep-alive", ""), 1000.0, 1010.0, KS, 30.0, 600.0)
    assert (long.retention_s, long.min_scale, long.keep_alive_s) == (3300.0, 0, 3900.0)
    short = plan(KeepAliveWindows(0.0, 90.0, "keep-alive", ""), 1000.0, 1010.0, KS, 30.0, 300.0)
    assert (short.retention_s, short.keep_alive_s) == (0.0, 330.0)
    assert "on the 300 s window" in short.note
    default = plan(KeepAliveWindows(0.0, 3900.0, "keep-alive", ""), 1000.0, 1010.0, KS, 30.0)
    assert default.retention_s == 3600.0 and default.min_scale == 1  # held: 60 + 3600 < 3900


def test_a_longer_window_waits_a_keep_alive_at_most() -> None:
    """Count-only observations (as the controller's sources give them): a request in each 30 s
    tick is estimated 15 s ago, past the short window, so a replica always idles. The way back
    waits one keep-alive (the fallback's 600 s), then goes: sparse traffic cannot hold the
    short window for ever."""
    t, state = _with_busy_window()
    t += 36000.0  # the rate has fallen under half the line
    first = t
    windows = []
    while t < first + 900:
        sparse = replace(busy_obs(t, n=1), ready_replicas=1, avg_concurrency_per_replica=0.01)
        rec, state = recommend(sparse, SPEC, TunerConfig(), state, t)
        windows.append((t - first, rec.changed_annotations().get(ANNOTATION_WINDOW)))
        t += 30.0
    switched = [at for at, w in windows if w == "60s"]
    assert switched == [600.0], windows
    assert state.window_wait_since_s is None
