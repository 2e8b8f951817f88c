"""The decider: targets, rate limits, panic, restart, scale-down delay, activation scale, burst."""

from __future__ import annotations

import dataclasses

import pytest

from autoscaler.kpa.annotations import RevisionScaling
from autoscaler.kpa.decider import (
    Decider,
    apply_activation_scale,
    excess_burst_capacity,
    is_over_panic_threshold,
    next_panic_time,
    scale_bounds,
)
from autoscaler.kpa.settings import AutoscalerConfig
from autoscaler.kpa.spec import ScalingSpec, panic_window_s, resolve, resolve_target

# (name, scaling, expected (target, total))
TARGET_CASES = [
    ("default concurrency: 100 x 70%", RevisionScaling(), (70.0, 100.0)),
    ("containerConcurrency 10", RevisionScaling(container_concurrency=10), (7.0, 10.0)),
    ("target annotation", RevisionScaling(target=50), (35.0, 50.0)),
    (
        "target annotation capped by containerConcurrency",
        RevisionScaling(target=50, container_concurrency=10),
        (7.0, 10.0),
    ),
    ("utilization annotation", RevisionScaling(target_utilization_percentage=50), (50.0, 100.0)),
    (
        "target 1 at full utilization",
        RevisionScaling(target=1, target_utilization_percentage=100),
        (1.0, 1.0),
    ),
    ("rps default: 200 x 70%", RevisionScaling(metric="rps"), (140.0, 200.0)),
    (
        "rps target not capped by containerConcurrency",
        RevisionScaling(metric="rps", target=300, container_concurrency=10),
        (210.0, 300.0),
    ),
    (
        "never below 0.01",
        RevisionScaling(target=0.01, target_utilization_percentage=1),
        (0.01, 0.01),
    ),
]


@pytest.mark.parametrize(
    ("scaling", "expected"), [c[1:] for c in TARGET_CASES], ids=[c[0] for c in TARGET_CASES]
)
def test_target_per_pod(scaling: RevisionScaling, expected: tuple[float, float]) -> None:
    assert resolve_target(AutoscalerConfig(), scaling) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("stable_s", "percentage", "expected_s"),
    [
        (60, 10, 6),
        (6, 1, 1),
        (61, 10, 6),
        (65, 10, 7),
        (3600, 100, 3600),
        # in Knative's nanoseconds these land a hair under the half: down, where the product
        # in seconds (20.5, 20.5, 10.5) would round up
        (125, 16.4, 20),
        (250, 8.2, 20),
        (375, 2.8, 10),
        (45, 10, 5),  # 4.5 s exactly: halves round up, as Go's Duration.Round
    ],
)
def test_panic_window_rounds_to_whole_buckets(
    stable_s: float, percentage: float, expected_s: float
) -> None:
    assert panic_window_s(stable_s, percentage) == expected_s


@pytest.mark.parametrize(
    ("ready", "reachable", "expected"),
    [
        (0, True, (0, 1000)),  # zero ready counts as one
        (1, True, (0, 1000)),
        (10, True, (5, 10000)),  # down by at most half, up by 1000x
        (3, True, (1, 3000)),
        (10, False, (0, 10000)),  # unreachable: may go straight to zero
    ],
)
def test_rate_limits(ready: int, reachable: bool, expected: tuple[int, int]) -> None:
    assert scale_bounds(ready, 1000.0, 2.0, reachable) == expected


@pytest.mark.parametrize(
    ("raw_panic", "ready", "over"),
    [(2, 1, True), (6, 3, True), (7, 4, False), (1, 0, False), (2, 0, True)],
)
def test_panic_threshold_at_200_percent(raw_panic: int, ready: int, over: bool) -> None:
    assert is_over_panic_threshold(raw_panic, ready, 2.0) is over


@pytest.mark.parametrize(
    ("panic_time", "over", "now", "expected"),
    [
        (None, False, 10, None),
        (None, True, 10, 10),  # enter
        (4, True, 10, 10),  # extend
        (4, False, 64, 4),  # a stable window has not fully passed
        (4, False, 64.5, None),  # it has: exit
    ],
    ids=["calm", "enter", "extend", "hold-at-exactly-a-window", "exit"],
)
def test_panic_transitions(
    panic_time: float | None, over: bool, now: float, expected: float | None
) -> None:
    assert next_panic_time(panic_time, over, now, 60.0) == expected


@pytest.mark.parametrize(
    ("count", "raw", "activation", "expected"),
    [(1, 1, 3, 3), (0, 0, 3, 0), (5, 5, 3, 5), (1, 1, 1, 1)],
    ids=["demand-below-activation", "no-demand", "demand-above", "default-1"],
)
def test_activation_scale(count: int, raw: int, activation: int, expected: int) -> None:
    assert apply_activation_scale(count, raw, activation) == expected


@pytest.mark.parametrize(
    ("ready", "tbc", "panic", "expected"),
    [
        (3, 211, 0, 89),  # three idle pods cover the default burst
        (2, 211, 0, -11),  # two do not
        (3, 211, 50.5, 38),  # floor(300 - 211 - 50.5)
        (0, 211, 0, -211),
        (5, 0, 400, 0),  # 0: only at zero
        (5, -1, 0, -1),  # -1: always in the path
    ],
)
def test_excess_burst_capacity(ready: int, tbc: float, panic: float, expected: float) -> None:
    assert excess_burst_capacity(ready, 100.0, tbc, panic) == expected


def spec(**changes: object) -> ScalingSpec:
    return dataclasses.replace(resolve(AutoscalerConfig(), RevisionScaling()), **changes)  # type: ignore[arg-type]


# Timelines: (t, stable, panic, ready) -> (desired, panic_mode)
Step = tuple[float, float, float, int, int, bool]

TIMELINES: list[tuple[str, ScalingSpec, int, list[Step]]] = [
    (
        "350 concurrency with defaults needs 5 pods",
        spec(),
        1,
        [(0, 350, 350, 1, 5, True)],
    ),
    (
        "10 concurrency at target 1 needs 10 pods",
        spec(target_per_pod=1.0, total_per_pod=1.0),
        1,
        [(0, 10, 10, 1, 10, True)],
    ),
    (
        "scale up limited to 1000x ready",
        spec(target_per_pod=0.01),
        1,
        [(0, 100, 100, 1, 1000, True)],
    ),
    (
        "scale down limited to half of ready",
        spec(),
        1,
        [(0, 0, 0, 10, 5, False), (2, 0, 0, 5, 2, False), (4, 0, 0, 2, 1, False)],
    ),
    (
        "panic holds: never scales down while panicking",
        spec(),
        1,
        [
            (0, 70, 280, 1, 4, True),  # 4 panic pods / 1 ready >= 2
            (2, 70, 70, 4, 4, True),  # panic average fell, count held
            (60, 70, 70, 4, 4, True),  # still within a stable window of the last spike
            (62.5, 70, 70, 4, 2, False),  # a full window below the threshold: exit, down by half
        ],
    ),
    (
        "panic extends on every tick over the threshold",
        spec(),
        1,
        [
            (0, 70, 280, 1, 4, True),
            (30, 70, 700, 4, 10, True),  # 10 / 4 >= 2: extended to t=30
            (62.5, 70, 70, 10, 10, True),
            (90.5, 70, 70, 10, 5, False),
        ],
    ),
    (
        "stable count wins inside panic when larger",
        spec(),
        1,
        [(0, 70, 140, 1, 2, True), (2, 700, 70, 2, 10, True)],
    ),
    (
        "restart with 3 ready pods starts in panic, holding 3",
        spec(),
        3,
        [(0, 0, 0, 3, 3, True), (30, 0, 0, 3, 3, True), (61, 0, 0, 3, 1, False)],
    ),
    (
        "restart with 1 ready pod does not panic",
        spec(),
        1,
        [(0, 0, 0, 1, 0, False)],
    ),
    (
        "scale-down delay keeps the maximum over the delay",
        spec(scale_down_delay_s=10.0),
        1,
        [
            (0, 210, 210, 3, 3, False),
            (2, 70, 70, 3, 3, False),
            (8, 70, 70, 3, 3, False),
            (10, 70, 70, 3, 1, False),  # the t=0 bucket left the 10 s window
        ],
    ),
    (
        "scale-down delay never delays scale-up",
        spec(scale_down_delay_s=60.0),
        1,
        [(0, 70, 70, 1, 1, False), (2, 140, 140, 1, 2, True)],
    ),
    (
        "activation scale applies with any demand",
        spec(activation_scale=3),
        0,
        [(0, 1, 1, 0, 3, False), (2, 0, 0, 3, 1, False)],
    ),
    (
        "one idle pod: the decider wants zero",
        spec(),
        1,
        [(0, 0, 0, 1, 0, False)],
    ),
]


@pytest.mark.parametrize(
    ("the_spec", "ready_at_start", "steps"),
    [c[1:] for c in TIMELINES],
    ids=[c[0] for c in TIMELINES],
)
def test_decider_timeline(the_spec: ScalingSpec, ready_at_start: int, steps: list[Step]) -> None:
    d = Decider(ready_at_start, now=0.0, scale_down_delay_s=the_spec.scale_down_delay_s)
    for t, stable, panic, ready, desired, panicking in steps:
        r = d.scale(the_spec, t, stable, panic, ready, reachable=True)
        assert (t, r.desired_pods, r.panic_mode) == (t, desired, panicking), r.reason


def test_unreachable_lower_bound_is_zero() -> None:
    d = Decider(1, now=0.0, scale_down_delay_s=0.0)
    r = d.scale(spec(), 0, 0, 0, ready_pods=10, reachable=False)
    assert r.desired_pods == 0
