"""The decision horizon: when ``steady_count`` promises a count, ticking proves it, and when the
load could change the decision it promises nothing."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from autoscaler.kpa import AutoscalerConfig, RevisionAutoscaler, RevisionScaling, Stat
from autoscaler.kpa.horizon import steady_count
from autoscaler.kpa.spec import ScalingSpec, resolve

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
