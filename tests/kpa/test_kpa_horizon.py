"""The decision horizon: when ``steady_count`` promises a count, ticking proves it, and when the
load could change the decision it promises nothing. The same for ``steady_band`` (any count)
and ``hold_bands``/``decides_alike`` (a decision checked on later averages), against the
decider itself on random loads."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from autoscaler.kpa import AutoscalerConfig, RevisionAutoscaler, RevisionScaling, Stat
from autoscaler.kpa.decider import Decider
from autoscaler.kpa.horizon import (
    decides_alike,
    decides_alike_in_panic,
    hold_bands,
    panic_hold,
    steady_band,
    steady_count,
)
from autoscaler.kpa.spec import ScalingSpec, resolve
from autoscaler.kpa.windows import TimedBuckets

CONFIG = AutoscalerConfig()


def spec(**annotations: str) -> ScalingSpec:
    scaling = RevisionScaling.from_annotations(
        {f"autoscaling.knative.dev/{k}": v for k, v in annotations.items()}, 0, CONFIG
    )
    return resolve(CONFIG, scaling)


# (id, spec, ready, panicking, peak, expected count or None)
CASES = [
    ("default target, one pod, light load", spec(), 1, False, 5.0, 1),
    ("peak exactly one pod's target", spec(target="10"), 1, False, 7.0, 1),
    ("peak above one pod's target", spec(target="10"), 1, False, 7.5, None),
    ("panicking", spec(), 1, True, 1.0, None),
    ("scale-down delay window", spec(**{"scale-down-delay": "30s"}), 1, False, 1.0, None),
    ("no load bound", spec(), 1, False, 0.0, None),
    ("two ready pods: the rate limit keeps 1", spec(), 2, False, 1.0, 1),
    ("activation scale 3", spec(**{"activation-scale": "3"}), 3, False, 1.0, 3),
    # ready x 100 - 200 - panic: -100 at panic 0, -101 at panic 1: the activator stays in
    ("burst capacity keeps its sign", spec(), 1, False, 1.0, 1),
    # ready x 100 - 10 - panic: 90 at panic 0, 20 at panic 70: out of the path throughout
    ("small burst capacity, out of the path", spec(**{"target-burst-capacity": "10"}), 1, False, 70.0, 1),
    # 100 - 60 - panic: 40 at panic 0, -30 at panic 70: the sign could flip
    ("burst capacity sign could flip", spec(**{"target-burst-capacity": "60"}), 1, False, 70.0, None),
]  # fmt: skip


@pytest.mark.parametrize(
    ("s", "ready", "panicking", "peak", "expected"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_steady_count(
    s: ScalingSpec, ready: int, panicking: bool, peak: float, expected: int | None
) -> None:
    got = steady_count(s, ready, panicking, peak)
    assert (None if got is None else got.desired_pods) == expected


def test_in_path_follows_the_burst_capacity_sign() -> None:
    got = steady_count(spec(), 1, False, 1.0)
    assert got is not None and got.activator_in_path
    got = steady_count(spec(**{"target-burst-capacity": "10"}), 1, False, 70.0)
    assert got is not None and not got.activator_in_path


@pytest.mark.parametrize("seed", [0, 1, 2], ids=["seed-0", "seed-1", "seed-2"])
@pytest.mark.parametrize(
    "annotations",
    [{}, {"target": "5"}, {"metric-aggregation-algorithm": "weighted-exponential"}],
    ids=["default", "target-5", "weighted"],
)
def test_promise_holds_tick_after_tick(seed: int, annotations: dict[str, str]) -> None:
    """A KPA settled at one pod, fed random per-second load in (0, peak], decides the promised
    count at every tick for ten minutes."""
    s = spec(**annotations)
    kpa = RevisionAutoscaler(
        CONFIG,
        RevisionScaling.from_annotations(
            {f"autoscaling.knative.dev/{k}": v for k, v in annotations.items()}, 0, CONFIG
        ),
        now=0.0,
    )
    rng = np.random.default_rng(seed)
    peak = s.target_per_pod
    now = 0.0
    decision = None
    for second in range(600):
        value = float(rng.uniform(0.01, peak))
        kpa.record(float(second), Stat("p", average_concurrent_requests=value))
        now = float(second + 1)
        if second % 2 == 1:
            decision = kpa.tick(now, ready_pods=1)
            if second < 80:
                continue  # windows filling: the promise is about a settled revision
            promised = steady_count(kpa.spec, 1, decision.panic_mode, peak)
            assert promised is not None
            assert decision.decider_desired_pods == promised.desired_pods
            assert decision.activator_in_path == promised.activator_in_path
    assert decision is not None and decision.desired_pods == 1


def test_a_load_above_the_peak_breaks_the_promise_it_did_not_make() -> None:
    """Above one pod's target the KPA does change its count, which is why None is returned."""
    s = spec(target="10")
    assert steady_count(s, 1, False, 20.0) is None
    kpa = RevisionAutoscaler(
        CONFIG,
        RevisionScaling.from_annotations({"autoscaling.knative.dev/target": "10"}, 0, CONFIG),
        now=0.0,
    )
    for second in range(120):
        kpa.record(float(second), Stat("p", average_concurrent_requests=20.0))
    assert kpa.tick(120.0, ready_pods=1).desired_pods > 1


def test_spec_is_not_changed() -> None:
    s = spec()
    before = dataclasses.asdict(s)
    steady_count(s, 1, False, 1.0)
    assert dataclasses.asdict(s) == before


def test_scaler_state_copy_is_a_full_independent_copy() -> None:
    """``ScalerState.copy`` must carry every field (a new field left out would fail here)."""
    from autoscaler.kpa.scaler import ScalerState

    values = {"condition": "inactive", "condition_since": 12.5, "applied_pods": 3,
              "initialized": True, "proxy_since": 40.0}  # fmt: skip
    assert {f.name for f in dataclasses.fields(ScalerState)} == set(values)
    state = ScalerState(**values)  # type: ignore[arg-type]
    copy = state.copy()
    assert copy == state and copy is not state
    copy.applied_pods = 5
    assert state.applied_pods == 3


# (id, annotations, ready, stable, panic, desired count or None)
HOLD_CASES = [
    ("one pod, light load", {}, 1, 5.0, 4.0, 1),
    ("eight pods at the edge of a count", {}, 8, 559.999999, 560.0, 8),
    ("two pods kept by the rate limit", {}, 4, 10.0, 10.0, 2),
    ("panic average over the threshold", {}, 1, 60.0, 150.0, None),
    ("no load on the stable window", {}, 1, 0.0, 0.0, None),
    ("scale-down delay window", {"scale-down-delay": "30s"}, 1, 5.0, 5.0, None),
    ("weighted average", {"metric-aggregation-algorithm": "weighted-exponential"}, 1, 5.0, 5.0, None),
    ("small target, three pods", {"target": "2"}, 3, 4.0, 3.5, 3),
]  # fmt: skip


@pytest.mark.parametrize(
    ("annotations", "ready", "stable", "panic", "expected"),
    [c[1:] for c in HOLD_CASES],
    ids=[c[0] for c in HOLD_CASES],
)
def test_hold_bands(
    annotations: dict[str, str], ready: int, stable: float, panic: float, expected: int | None
) -> None:
    got = hold_bands(spec(**annotations), ready, False, stable, panic)
    assert (None if got is None else got.desired_pods) == expected
    if got is not None:
        assert decides_alike(spec(**annotations), ready, got, stable, panic)


def random_spec(rng: np.random.Generator) -> ScalingSpec:
    return spec(
        target=str(rng.choice(["1", "2", "10", "100"])),
        **{
            "target-burst-capacity": str(rng.choice(["0", "-1", "10", "211"])),
            "panic-threshold-percentage": str(rng.choice(["110", "200", "1000"])),
            "activation-scale": str(rng.choice(["1", "3"])),
        },
    )


@pytest.mark.parametrize("seed", range(40))
def test_decides_alike_matches_the_decider(seed: int) -> None:
    """Random specs, pods and averages: where ``decides_alike`` says a later tick decides as the
    first, the decider (out of panic) gives the same count and burst-capacity sign and stays
    out of panic; and averages of random buckets within the bands are always alike."""
    rng = np.random.default_rng(seed)
    s = random_spec(rng)
    checked = alike = 0
    for _ in range(200):
        ready = int(rng.integers(1, 20))
        top = s.target_per_pod * ready * 2.5
        stable0, panic0 = float(rng.uniform(0, top)), float(rng.uniform(0, top))
        bands = hold_bands(s, ready, False, stable0, panic0)
        if bands is None:
            continue
        decider = Decider(1, 0.0, 0.0)  # out of panic
        first = decider.scale(s, 2.0, stable0, panic0, ready, True)
        assert not first.panic_mode
        assert first.desired_pods == bands.desired_pods
        assert (first.excess_burst_capacity < 0) == bands.activator_in_path
        for k in range(20):
            near = stable0 * float(rng.uniform(0.8, 1.2)), panic0 * float(rng.uniform(0.5, 1.5))
            if not decides_alike(s, ready, bands, *near):
                continue
            alike += 1
            later = decider.scale(s, 4.0 + 2 * k, near[0], near[1], ready, True)
            assert not later.panic_mode
            assert later.desired_pods == bands.desired_pods
            assert (later.excess_burst_capacity < 0) == bands.activator_in_path
        # buckets within the bands average within them: decided alike
        if bands.stable_low > bands.stable_high or bands.panic_low > bands.panic_high:
            continue
        low = max(bands.stable_low, bands.panic_low)
        high = min(bands.stable_high, bands.panic_high)
        if low > high or high <= 0:
            continue
        stable_w, panic_w = TimedBuckets(60.0), TimedBuckets(6.0)
        for second in range(90):
            value = float(rng.uniform(max(low, 1e-3), high))
            stable_w.record(float(second), value)
            panic_w.record(float(second), value)
        now = 90.0
        checked += 1
        assert decides_alike(
            s, ready, bands, stable_w.window_average(now), panic_w.window_average(now)
        )
    assert alike > 0 and checked > 0


@pytest.mark.parametrize("seed", range(20))
def test_steady_band_holds_for_buckets_in_it(seed: int) -> None:
    """Per-second values anywhere in the band: the decider's count is the band's, every tick."""
    rng = np.random.default_rng(100 + seed)
    s = random_spec(rng)
    ready = int(rng.integers(1, 30))
    level = float(rng.uniform(0.1, 2.0)) * s.target_per_pod * ready
    band = steady_band(s, ready, False, level)
    if band is None:
        return
    stable_w, panic_w = TimedBuckets(s.stable_window_s), TimedBuckets(s.panic_window_s)
    decider = Decider(1, 0.0, 0.0)
    for second in range(240):
        value = float(rng.uniform(band.low, band.high))
        stable_w.record(float(second), value)
        panic_w.record(float(second), value)
        if second % 2 == 1 and second > 60:
            now = float(second + 1)
            got = decider.scale(
                s, now, stable_w.window_average(now), panic_w.window_average(now), ready, True
            )
            assert got.desired_pods == band.desired_pods
            assert (got.excess_burst_capacity < 0) == band.activator_in_path


@pytest.mark.parametrize(
    ("writes", "now", "expected"),
    [
        ([], 10.0, None),
        ([(float(t), 3.0 + t % 3) for t in range(8)], 8.0, (3.0, 5.0)),
        # a partial window: the slots not written yet hold zeros
        ([(0.0, 3.0), (1.0, 5.0), (2.0, 4.0)], 3.0, (0.0, 5.0)),
        # the slot a read leaves out (a window old) is not in the range
        ([(float(t), 9.0 if t == 0 else 1.0) for t in range(6)], 6.0, (1.0, 1.0)),
        # a second not written is a zero the average divides by
        ([(0.0, 3.0), (2.0, 4.0)], 3.0, (0.0, 4.0)),
        # nothing for a whole window: no data
        ([(0.0, 3.0)], 10.0, None),
    ],
    ids=["empty", "consecutive", "partial window", "stale slot left out", "gap is zero", "no data"],
)
def test_value_range(
    writes: list[tuple[float, float]], now: float, expected: tuple[float, float] | None
) -> None:
    w = TimedBuckets(6.0)
    for t, v in writes:
        w.record(t, v)
    assert w.value_range(now) == expected


@pytest.mark.parametrize("seed", range(30))
def test_panic_hold_matches_the_decider(seed: int) -> None:
    """A decider driven into panic by a burst: wherever ``decides_alike_in_panic`` says a later
    tick changes nothing, the decider keeps its count, its panic time and its maximum."""
    rng = np.random.default_rng(500 + seed)
    s = random_spec(rng)
    ready = int(rng.integers(1, 6))
    decider = Decider(1, 0.0, 0.0)
    burst = s.target_per_pod * ready * s.panic_threshold * float(rng.uniform(1.0, 3.0))
    first = decider.scale(s, 2.0, burst * 0.5, burst, ready, True)
    if not first.panic_mode:
        return
    hold = panic_hold(s, ready, decider.panic_time, decider.max_panic_pods, burst)
    assert hold is not None and hold.max_pods == first.desired_pods
    alike = 0
    for k in range(1, 60):
        now = 2.0 + 2 * k
        stable = burst * float(rng.uniform(0.0, 1.2))
        panic = burst * float(rng.uniform(0.0, 1.2))
        if not decides_alike_in_panic(s, ready, hold, now, stable, panic):
            continue
        alike += 1
        before = (decider.panic_time, decider.max_panic_pods)
        got = decider.scale(s, now, stable, panic, ready, True)
        assert got.desired_pods == hold.max_pods and got.panic_mode
        assert (decider.panic_time, decider.max_panic_pods) == before
        assert (got.excess_burst_capacity < 0) == hold.activator_in_path
    # past the stable window after the burst the panic may end: never promised
    assert not decides_alike_in_panic(s, ready, hold, 2.0 + s.stable_window_s + 2.0, 0.0, 0.0)
    assert alike > 0  # the random loads do reach the held case
