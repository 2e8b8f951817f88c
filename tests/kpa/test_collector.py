"""Reports to revision totals: the activator rule, the rps path, per-pod buckets, no data."""

from __future__ import annotations

import pytest

from autoscaler.kpa.collector import MetricCollector, Stat

ACTIVATOR = "activator-0"

# (name, [(t, stat)], read_at, expected (stable, panic) concurrency)
CONCURRENCY_CASES = [
    (
        "proxied requests counted once, from the activator",
        [
            (
                0.2,
                Stat("pod-a", average_concurrent_requests=3, average_proxied_concurrent_requests=2),
            ),
            (0.4, Stat(ACTIVATOR, average_concurrent_requests=2)),
        ],
        0,
        (3.0, 3.0),
    ),
    (
        "pods add up",
        [(0.1, Stat("pod-a", average_concurrent_requests=4)), (0.3, Stat("pod-b", 6))],
        0,
        (10.0, 10.0),
    ),
    (
        "two reports of one pod in one second are averaged",
        [(0.1, Stat("pod-a", 4)), (0.9, Stat("pod-a", 6)), (0.5, Stat("pod-b", 1))],
        0,
        (6.0, 6.0),
    ),
    (
        "stable and panic windows differ",
        [(float(t), Stat("pod-a", 10 if t >= 54 else 0)) for t in range(60)],
        59,
        (1.0, 10.0),
    ),
]


@pytest.mark.parametrize(
    ("reports", "read_at", "expected"),
    [c[1:] for c in CONCURRENCY_CASES],
    ids=[c[0] for c in CONCURRENCY_CASES],
)
def test_concurrency_totals(
    reports: list[tuple[float, Stat]], read_at: float, expected: tuple[float, float]
) -> None:
    c = MetricCollector(stable_window_s=60, panic_window_s=6)
    for t, stat in reports:
        c.record(t, stat)
    assert c.stable_and_panic_concurrency(read_at) == pytest.approx(expected)


def test_rps_path_subtracts_proxied_requests() -> None:
    c = MetricCollector(stable_window_s=60, panic_window_s=6)
    c.record(0.5, Stat("pod-a", request_count=10, proxied_request_count=4))
    c.record(0.6, Stat(ACTIVATOR, request_count=4))
    assert c.stable_and_panic_rps(0) == pytest.approx((10.0, 10.0))
    assert c.stable_and_panic(0, "rps") == pytest.approx((10.0, 10.0))


@pytest.mark.parametrize(
    ("read_at", "has_data"),
    [(30, True), (60, True), (61, False)],
    ids=["within-window", "a-window-later", "more-than-a-window-later"],
)
def test_no_data_after_a_silent_window(read_at: float, has_data: bool) -> None:
    c = MetricCollector(stable_window_s=60, panic_window_s=6)
    c.record(0.0, Stat("pod-a", 1))
    assert (c.stable_and_panic_concurrency(read_at) is not None) is has_data


def test_nothing_recorded_is_no_data() -> None:
    assert MetricCollector(60, 6).stable_and_panic_concurrency(0) is None


def test_reconfigure_keeps_data_and_the_algorithm() -> None:
    c = MetricCollector(60, 6)
    for t in range(10):
        c.record(float(t), Stat("pod-a", 5))
    c.reconfigure(stable_window_s=30, panic_window_s=3, now=9)
    stable, panic = c.stable_and_panic_concurrency(9) or (0.0, 0.0)
    assert stable > 0 and panic > 0
    assert not c.weighted
