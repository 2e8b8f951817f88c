"""Bucketed windows: Knative's partial-window, gap and staleness rules, the weighted variant, max."""

from __future__ import annotations

import math
import random

import pytest

from autoscaler.kpa.windows import MaxWindow, TimedBuckets, WeightedBuckets, smoothing_coefficient

# (name, window_s, [(t, value), ...], read_at, expected average)
AVERAGE_CASES = [
    ("one write is a partial window of one bucket", 60, [(0, 10)], 0, 10.0),
    ("partial window averages buckets since first", 60, [(0, 10), (1, 20), (2, 30)], 2, 20.0),
    ("gap inside the data counts as zero", 60, [(0, 10), (2, 10)], 2, 20 / 3),
    ("same bucket adds up", 60, [(5.1, 3), (5.9, 4)], 5, 7.0),
    ("time after the last write is left out", 60, [(0, 6), (1, 6)], 4, 6.0),
    ("full window", 6, [(t, t) for t in range(10)], 9, (4 + 5 + 6 + 7 + 8 + 9) / 6),
    ("nothing for a whole window reads zero", 6, [(0, 5)], 6, 0.0),
    ("write after a window of silence starts anew", 6, [(0, 100), (7, 1)], 7, 1.0),
    ("value older than the window is dropped", 6, [(10, 4), (3, 100)], 10, 4.0),
    ("value late but within the window is added", 6, [(10, 4), (8, 2)], 10, 2.0),
    ("floored to six decimals", 60, [(0, 1), (1, 1), (2, 0)], 2, 0.666666),
]


@pytest.mark.parametrize(
    ("window_s", "writes", "read_at", "expected"),
    [c[1:] for c in AVERAGE_CASES],
    ids=[c[0] for c in AVERAGE_CASES],
)
def test_window_average(
    window_s: float, writes: list[tuple[float, float]], read_at: float, expected: float
) -> None:
    w = TimedBuckets(window_s)
    for t, v in writes:
        w.record(t, v)
    assert w.window_average(read_at) == pytest.approx(expected, abs=1e-6)


def test_trailing_gap_shrinks_the_divisor_as_knative_documents() -> None:
    # Written every second up to t=100, read at t=110: the 50 buckets t=51..100 count.
    w = TimedBuckets(60)
    for t in range(101):
        w.record(t, float(t))
    assert w.window_average(110) == pytest.approx(sum(range(51, 101)) / 50)
    # Reading again later keeps the rule (stale slots were cleared once, not twice).
    assert w.window_average(115) == pytest.approx(sum(range(56, 101)) / 45)


@pytest.mark.parametrize(
    ("read_at", "empty"),
    [(0, False), (60, False), (61, True)],
    ids=["fresh", "exactly-a-window-later", "more-than-a-window-later"],
)
def test_is_empty_only_after_more_than_a_window(read_at: float, empty: bool) -> None:
    w = TimedBuckets(60)
    w.record(0, 1.0)
    assert w.is_empty(read_at) is empty


def test_new_window_is_empty_and_zero() -> None:
    w = TimedBuckets(60)
    assert w.is_empty(0) and w.window_average(0) == 0.0


def test_resize_keeps_recent_buckets() -> None:
    w = TimedBuckets(60)
    for t in range(60):
        w.record(t, 2.0 if t >= 50 else 1.0)
    w.resize(10, now=59)
    assert w.window_average(59) == pytest.approx(2.0)


def test_smoothing_coefficient() -> None:
    assert smoothing_coefficient(4) == pytest.approx(0.9)  # 1 - 0.0001 ** (1/4)
    assert smoothing_coefficient(60) == 0.2  # the floor for long windows


def test_weighted_average_favours_recent_buckets() -> None:
    # Data [10, 10, 5, 5], newest last, coefficient 0.9 for a 4-bucket window.
    w = WeightedBuckets(4)
    for t, v in enumerate([10, 10, 5, 5]):
        w.record(t, v)
    expected = 5 * 0.9 + 5 * 0.9 * 0.1 + 10 * 0.9 * 0.01 + 10 * 0.9 * 0.001
    assert w.window_average(3) == pytest.approx(expected)
    # Reversed, the same data weighs more.
    r = WeightedBuckets(4)
    for t, v in enumerate([5, 5, 10, 10]):
        r.record(t, v)
    assert r.window_average(3) > w.window_average(3)


def test_weighted_average_decays_after_last_write() -> None:
    w = WeightedBuckets(4)
    for t in range(4):
        w.record(t, 10.0)
    assert w.window_average(5) == pytest.approx(10 * 0.9 * 0.01 * (1 + 0.1))
    assert w.window_average(9) == 0.0


# (name, duration_s, [(t, value)], expected current after the last record)
MAX_CASES = [
    ("holds the maximum", 10, [(0, 5), (2, 3), (4, 1)], 5),
    ("a larger value replaces", 10, [(0, 5), (2, 8)], 8),
    ("expires after the window", 10, [(0, 5), (2, 3), (10, 1)], 3),
    ("two records in one bucket keep the larger", 10, [(0, 2), (1, 7), (1.5, 4)], 7),
    ("everything expires", 4, [(0, 9), (10, 1)], 1),
]


@pytest.mark.parametrize(
    ("duration_s", "records", "expected"),
    [c[1:] for c in MAX_CASES],
    ids=[c[0] for c in MAX_CASES],
)
def test_max_window(duration_s: float, records: list[tuple[float, float]], expected: float) -> None:
    m = MaxWindow(duration_s, granularity_s=2.0)
    for t, v in records:
        m.record(t, v)
    assert m.current() == expected


class _ReferenceWindow:
    """Knative's plain-average rules written the obvious way (absolute buckets, no ring)."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.buckets: dict[int, float] = {}
        self.first: int | None = None
        self.last: int | None = None

    def record(self, t: float, v: float) -> None:
        b = int(t // 1)
        if self.last is None or b - self.last >= self.n:
            self.buckets, self.first, self.last = {}, b, b
        elif b + self.n <= self.last:
            return
        else:
            assert self.first is not None
            self.first = min(self.first, b)
            self.last = max(self.last, b)
        self.buckets[b] = self.buckets.get(b, 0.0) + v

    def average(self, t: float) -> float:
        if self.last is None or self.first is None:
            return 0.0
        now, last, n = int(t // 1), self.last, self.n
        in_ring = sum(v for b, v in self.buckets.items() if last - n < b <= last)
        gap = now - last
        if gap <= 0:
            return math.floor(in_ring / min(last - self.first + 1, n) * 1e6) / 1e6
        if gap >= n:
            return 0.0
        valid = sum(v for b, v in self.buckets.items() if now - n < b <= last)
        return math.floor(valid / min(last - self.first + 1, n - gap) * 1e6) / 1e6


@pytest.mark.parametrize("seed", range(5))
def test_ring_matches_reference_rules(seed: int) -> None:
    rng = random.Random(seed)
    w, ref = TimedBuckets(10), _ReferenceWindow(10)
    t = 0.0
    for _ in range(2000):
        roll = rng.random()
        if roll < 0.6:
            t += rng.choice([0.0, 0.4, 1.0, 1.0, 2.0, 7.0, 13.0])
            value = rng.choice([0.0, 1.0, 2.5, 10.0])
            w.record(t, value)
            ref.record(t, value)
        elif roll < 0.7:
            late = t - rng.uniform(0, 15)
            w.record(late, 3.0)
            ref.record(late, 3.0)
        else:
            at = t + rng.choice([-3.0, 0.0, 0.5, 3.0, 9.0, 10.0, 12.0])
            assert w.window_average(at) == pytest.approx(ref.average(at), abs=2e-6), (seed, at)
