"""Edge cases of the policy: targets that do not bind, inherited starts, decayed histograms,
short windows, tiny objectives, bad checkpoints, clocks stepping back and bounds."""

from __future__ import annotations

import base64
import json
import zlib
from collections.abc import Callable
from typing import Any

import pytest
from tuner_plant import obs

from autoscaler.tuner import (
    ANNOTATION_TARGET,
    CheckpointError,
    ModelScalerSpec,
    TunerConfig,
    decay,
    decode_checkpoint,
    encode_checkpoint,
    inherit_state,
    new_state,
    parse_spec,
    parse_tuner_config,
    recommend,
    tuner_config_to_configmap,
)
from autoscaler.tuner.guardrails import written_within
from autoscaler.tuner.idle import IdleHistogram
from autoscaler.tuner.keepalive import LearnedKeepAlive

SPEC = ModelScalerSpec("m", objective_latency_ms=200)
CONFIG = TunerConfig()


# -- a target that does not bind is not explored ------------------------------------------


def test_replicas_held_far_under_the_aim_do_not_explore() -> None:
    # 8 replicas at 0.5 conc/replica against an aim of 7 (a scale-down delay holds them)
    state = new_state("r")
    target = 10.0
    for i in range(30):
        t = 30.0 * (i + 1)
        rec, state = recommend(obs(t, 0.5, 8, 50, target), SPEC, CONFIG, state, t)
        if rec.should_apply:
            target = rec.target
    assert target == 10.0
    assert "does not bind" in rec.reasons[0]


def test_a_target_that_binds_still_explores() -> None:
    rec, _ = recommend(obs(30, 3.5, 4, 50, 5.0), SPEC, CONFIG, new_state("r"), 30)
    assert rec.target == pytest.approx(6.25)
    assert "exploring" in rec.reasons[0]


def test_container_concurrency_caps_exploring() -> None:
    # target 3.5 with containerConcurrency 4: exploring goes up to 4, not to 4.38
    state = new_state("r")
    rec, state = recommend(obs(30, 2.2, 4, 50, 3.5, cc=4), SPEC, CONFIG, state, 30)
    assert rec.target == pytest.approx(4.0)
    rec, state = recommend(obs(120, 2.7, 4, 50, 4.0, cc=4), SPEC, CONFIG, state, 120)
    assert rec.target == pytest.approx(4.0)
    assert "containerConcurrency 4 caps the target" in rec.reasons[0]


def test_a_target_above_container_concurrency_backs_off_from_it() -> None:
    # Knative's default target 100 with containerConcurrency 4 is 4 in force: a miss backs off
    # one step from 4, not by halving 100
    rec, _ = recommend(obs(30, 2.8, 8, 400, 100.0, cc=4), SPEC, CONFIG, new_state("r"), 30)
    assert rec.target <= 4.0
    assert rec.should_apply


# -- a new revision's inherited target is a one-tick start ----------------------------------


@pytest.mark.parametrize("mode", ["Recommend", "Auto"])
def test_an_inherited_target_is_a_start_not_a_freeze(mode: str) -> None:
    spec = ModelScalerSpec("m", objective_latency_ms=200, update_mode=mode)  # type: ignore[arg-type]
    old = new_state("rev-1")
    for t in (30.0, 60.0, 90.0):
        rec, old = recommend(obs(t, 3, 4, 60, 10.0), spec, CONFIG, old, t)
    new = inherit_state(old, "rev-2")
    rec, new = recommend(obs(120, 7, 4, 2000, 10.0), spec, CONFIG, new, 120)
    assert "new revision: starting from rev-1's target" in rec.reasons[0]
    # the revision badly misses from then on: judged on its own latency, not frozen at 10
    rec, new = recommend(obs(150, 7, 4, 2000, 10.0), spec, CONFIG, new, 150)
    assert "misses the 200 ms objective" in rec.reasons[0]
    assert rec.target < 10.0
    # the start is remembered across a checkpoint
    again = decode_checkpoint(encode_checkpoint({"rev-2": new}))["rev-2"]
    assert again.inherited_start_s == new.inherited_start_s == 120.0


# -- an idle histogram decayed to nothing falls back --------------------------------------


def test_an_idle_histogram_decayed_to_no_weight_falls_back() -> None:
    config = parse_tuner_config({"idle_half_life_s": "60"})
    hist = IdleHistogram()
    for i in range(6):
        hist = hist.add(300.0 * (i + 1), 280.0, 60.0)
    # a day of traffic with no idle period: the rebases decay every weight to 0.0
    for i in range(2880):
        hist = hist.count_requests(1800.0 + 30.0 * (i + 1), 50, 60.0)
    assert hist.count == 6 and sum(hist.weights) == 0.0
    windows = LearnedKeepAlive(config.keep_alive).decide(hist, 1800.0 + 86400.0)
    assert windows.kind == "fallback"
    assert "decayed to no weight" in windows.reason


# -- a clock that steps back ---------------------------------------------------------------


def test_a_clock_an_hour_back_settles_once_then_judges() -> None:
    state = new_state("r")
    t = 100_000.0
    rec, state = recommend(obs(t, 3.5, 4, 50, 5.0), SPEC, CONFIG, state, t)
    assert state.last_target_change_s == t
    written = rec.target
    t -= 3600.0  # a controller whose clock is an hour behind resumes
    rec, state = recommend(obs(t + 30, 9, 4, 3000, written), SPEC, CONFIG, state, t + 30)
    assert state.last_target_change_s == t + 30, "a change dated in the future is taken as now"
    rec, state = recommend(obs(t + 60, 9, 4, 3000, written), SPEC, CONFIG, state, t + 60)
    assert "misses the 200 ms objective" in rec.reasons[0]
    assert rec.target < written and rec.should_apply


def test_a_clock_far_back_does_not_overflow_the_decay() -> None:
    config = parse_tuner_config({"latency_half_life_s": "60", "idle_half_life_s": "60"})
    state = new_state("r")
    t = 200_000.0
    for i in range(3):
        _, state = recommend(obs(t + 30 * i, 3, 4, 50, 10.0), SPEC, config, state, t + 30 * i)
    t -= 17 * 3600.0  # 2 ** 1020 at a 60 s half-life
    for i in range(3):
        _, state = recommend(obs(t + 30 * i, 3, 4, 50, 10.0), SPEC, config, state, t + 30 * i)
    assert state.latency.ref_s <= t + 60, "the reference moved back with the clock"
    assert decay.weight_now(1.0, 0.0, 1e12, 60.0) == 1.0  # ages clamped at zero


# -- checkpoints with impossible values are refused on decode -------------------------------


def _edited_checkpoint(edit: Callable[[dict[str, Any]], None]) -> str:
    state = new_state("r")
    t = 0.0
    for _ in range(7):
        t += 30
        _, state = recommend(obs(t, 3, 2, 50, 10.0), SPEC, CONFIG, state, t)
        t += 300
        _, state = recommend(obs(t, 0, 0, 50, 10.0, n=0), SPEC, CONFIG, state, t)
    text = encode_checkpoint({"r": state})
    doc = json.loads(zlib.decompress(base64.urlsafe_b64decode(text[3:])))
    edit(doc["revisions"][0])
    raw = zlib.compress(json.dumps(doc).encode())
    return "v1:" + base64.urlsafe_b64encode(raw).decode()


def _set(path: tuple[Any, ...], value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(rev: dict[str, Any]) -> None:
        cur: Any = rev
        for key in path[:-1]:
            cur = cur[key]
        cur[path[-1]] = value

    return edit


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        pytest.param(_set(("l", 1), 1), "bin_ratio", id="bin-ratio-1"),
        pytest.param(_set(("l", 1), -1.1), "bin_ratio", id="bin-ratio-negative"),
        pytest.param(_set(("i", 0, 8), -1e308), "idle weight", id="idle-weight-negative"),
        pytest.param(_set(("i", 0), []), "no bins", id="idle-samples-without-bins"),
        pytest.param(_set(("l", 0), 1e12), "latency ref", id="latency-ref-far-ahead"),
        pytest.param(_set(("l", 2, 0, 1), -5.0), "weight", id="latency-weight-negative"),
        pytest.param(_set(("p", 0), 0), "target", id="applied-target-zero"),
    ],
)
def test_a_checkpoint_with_impossible_values_is_refused(
    edit: Callable[[dict[str, Any]], None], field: str
) -> None:
    with pytest.raises(CheckpointError, match=field):
        decode_checkpoint(_edited_checkpoint(edit))


def test_an_unedited_checkpoint_still_decodes() -> None:
    states = decode_checkpoint(_edited_checkpoint(lambda rev: None))
    assert states["r"].idle.count >= 5


# -- the written target stays within the user's bounds ------------------------------------


@pytest.mark.parametrize(
    ("bounds", "c", "p95", "written"),
    [
        pytest.param({"max": 12.46}, 7.0, 50, "12.4", id="max-rounds-down"),  # not 12.5
        # at target 1 the tuner holds: raised to the bound 1.005
        pytest.param({"min": 1.005}, 0.1, 50, "1.01", id="min-rounds-up"),  # not 1
    ],
)
def test_the_written_target_rounds_toward_the_inside_of_the_bounds(
    bounds: dict[str, float], c: float, p95: float, written: str
) -> None:
    spec = parse_spec(
        {"targetRef": {"name": "m"}, "objective": {"latencyMs": 200}, "target": bounds}
    )
    current = 10.0 if "max" in bounds else 1.0
    rec, _ = recommend(obs(30, c, 4, p95, current), spec, CONFIG, new_state("r"), 30)
    assert rec.annotations()[ANNOTATION_TARGET] == written
    assert spec.target_min <= float(written) <= (spec.target_max or float("inf"))


def test_bounds_closer_than_a_digit_keep_the_nearest_and_say_so() -> None:
    value, note = written_within(12.43, 12.41, 12.46)
    assert value == 12.43 and note is not None and "no 3-digit target" in note


# -- the ConfigMap round-trips ------------------------------------------------------------


def test_the_tuner_configmap_parses_back_to_the_same_config() -> None:
    config = parse_tuner_config({"min_bin_requests": "1234567", "max_step_up_ratio": "1.0000001"})
    data = tuner_config_to_configmap(config)
    assert data["min_bin_requests"] == "1234567"
    assert parse_tuner_config(data) == config
    assert tuner_config_to_configmap()["tick_period_s"] == "30"  # whole numbers as written
