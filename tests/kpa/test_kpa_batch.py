"""Batch writes: ``record_many`` leaves windows, collector and revision exactly as single writes.

Timelines of named cases, then random sequences (gaps longer than a window, late and duplicate
reports, same-second bursts) compared bit for bit against one ``record`` per report.
"""

from __future__ import annotations

import random

import pytest

from autoscaler.kpa import AutoscalerConfig, RevisionAutoscaler, RevisionScaling
from autoscaler.kpa.collector import MetricCollector, Stat
from autoscaler.kpa.windows import TimedBuckets, WeightedBuckets


def window_state(w: TimedBuckets) -> tuple[object, ...]:
    return (w._buckets, w._first, w._last, w._total, w.window_s)


def random_writes(rng: random.Random, n: int) -> list[tuple[float, float]]:
    """Mostly ascending seconds, with gaps (some longer than a window), repeats and late ones."""
    t = rng.uniform(0, 5)
    out = []
    for _ in range(n):
        r = rng.random()
        if r < 0.55:
            t += 1.0
        elif r < 0.7:
            t += rng.uniform(0, 0.9)  # same or next second
        elif r < 0.8:
            t += rng.choice([5.0, 30.0, 59.0, 61.0, 200.0])  # gaps, some over a window
        elif r < 0.9:
            out.append((max(0.0, t - rng.uniform(1, 80)), rng.uniform(0, 10)))  # late
            continue
        else:
            t += 2.0
        value = 0.0 if rng.random() < 0.2 else rng.uniform(0, 50)
        out.append((t, value))
    return out


# (name, window_s, writes)
WINDOW_CASES = [
    ("empty batch", 60, []),
    ("one write", 60, [(3.0, 2.5)]),
    ("consecutive seconds", 6, [(float(t), t * 0.5) for t in range(20)]),
    ("same bucket twice", 6, [(1.2, 1.0), (1.7, 2.0)]),
    ("gap of a whole window restarts", 6, [(0.0, 100.0), (7.0, 1.0), (8.0, 2.0)]),
    ("late write older than the window is dropped", 6, [(10.0, 4.0), (3.0, 100.0)]),
    ("late write within the window is added", 6, [(10.0, 4.0), (8.0, 2.0)]),
]


@pytest.mark.parametrize("weighted", [False, True], ids=["plain", "weighted"])
@pytest.mark.parametrize(
    ("window_s", "writes"), [c[1:] for c in WINDOW_CASES], ids=[c[0] for c in WINDOW_CASES]
)
def test_window_batch_equals_single_writes(
    window_s: float, writes: list[tuple[float, float]], weighted: bool
) -> None:
    cls = WeightedBuckets if weighted else TimedBuckets
    one, batch = cls(window_s), cls(window_s)
    one.record(0.0, 1.0)  # both start from the same history
    batch.record(0.0, 1.0)
    for t, v in writes:
        one.record(t, v)
    batch.record_many([t for t, _ in writes], [v for _, v in writes])
    assert window_state(batch) == window_state(one)
    end = writes[-1][0] if writes else 0.0
    for later in (0.0, 1.0, 3.0, window_s + 2.0):
        assert batch.window_average(end + later) == one.window_average(end + later)


@pytest.mark.parametrize("seed", range(40))
def test_window_batch_random_sequences(seed: int) -> None:
    rng = random.Random(seed)
    window_s = rng.choice([2.0, 6.0, 60.0, 600.0])
    one, batch = TimedBuckets(window_s), TimedBuckets(window_s)
    writes = random_writes(rng, 400)
    # cut into random batches; read between batches as a decider would
    k = 0
    while k < len(writes):
        size = rng.randint(1, 12)
        part = writes[k : k + size]
        for t, v in part:
            one.record(t, v)
        batch.record_many([t for t, _ in part], [v for _, v in part])
        k += size
        now = part[-1][0] + rng.uniform(0, 3)
        assert batch.window_average(now) == one.window_average(now)
        assert batch.is_empty(now) == one.is_empty(now)
        assert window_state(batch) == window_state(one)


@pytest.mark.parametrize("seed", range(30))
def test_window_batch_of_zeros_random_sequences(seed: int) -> None:
    """Zero batches (the window no one feeds) after some data, a restart or none at all."""
    rng = random.Random(500 + seed)
    window_s = rng.choice([6.0, 60.0])
    one, batch = TimedBuckets(window_s), TimedBuckets(window_s)
    for t, v in random_writes(rng, rng.choice([0, 3, 50])):
        one.record(t, v)
        batch.record(t, v)
    writes = [(rng.uniform(0, 10) + t, 0.0) for t, _ in random_writes(rng, 300)]
    k = 0
    while k < len(writes):
        part = writes[k : k + rng.randint(1, 12)]
        for t, v in part:
            one.record(t, v)
        batch.record_many([t for t, _ in part], [v for _, v in part])
        k += len(part)
        now = part[-1][0] + rng.uniform(0, 3)
        assert batch.window_average(now) == one.window_average(now)
        assert window_state(batch) == window_state(one)


def test_window_batch_rejects_mismatched_lengths() -> None:
    with pytest.raises(ValueError, match="2 times but 1 values"):
        TimedBuckets(60).record_many([1.0, 2.0], [1.0])


@pytest.mark.parametrize("seed", range(30))
@pytest.mark.parametrize("weighted", [False, True], ids=["plain", "weighted"])
def test_collector_batch_random_sequences(seed: int, weighted: bool) -> None:
    rng = random.Random(1000 + seed)
    one = MetricCollector(60.0, 6.0, weighted)
    batch = MetricCollector(60.0, 6.0, weighted)
    writes = [
        (t, v, rng.choice([0.0, 0.0, rng.uniform(0, 20)])) for t, v in random_writes(rng, 300)
    ]
    k = 0
    while k < len(writes):
        part = writes[k : k + rng.randint(1, 10)]
        for t, c, r in part:
            one.record(t, Stat(pod_name="p", average_concurrent_requests=c, request_count=r))
        batch.record_many([w[0] for w in part], "p", [w[1] for w in part], [w[2] for w in part])
        k += len(part)
        now = part[-1][0] + rng.uniform(0, 2)
        assert batch.stable_and_panic_concurrency(now) == one.stable_and_panic_concurrency(now)
        assert batch.stable_and_panic_rps(now) == one.stable_and_panic_rps(now)
    for name in ("_concurrency", "_concurrency_panic", "_rps", "_rps_panic"):
        assert window_state(getattr(batch, name)) == window_state(getattr(one, name))
    assert (batch._open_bucket, batch._open_pods) == (one._open_bucket, one._open_pods)


def test_collector_batch_rejects_mismatched_lengths() -> None:
    with pytest.raises(ValueError, match="1 times, 2 concurrencies, 1 rps values"):
        MetricCollector(60.0, 6.0).record_many([1.0], "p", [1.0, 2.0], [0.0])


@pytest.mark.parametrize("seed", range(10))
def test_revision_batch_decides_as_single_writes(seed: int) -> None:
    """Two revision KPAs, one fed per report and one in batches between ticks, decide alike."""
    rng = random.Random(2000 + seed)
    config = AutoscalerConfig()
    annotations = {"autoscaling.knative.dev/target": str(rng.choice([1, 2, 10]))}
    scaling = RevisionScaling.from_annotations(annotations, 0, config)
    one = RevisionAutoscaler(config, scaling, now=0.0)
    batch = RevisionAutoscaler(config, scaling, now=0.0)
    pending_t: list[float] = []
    pending_c: list[float] = []
    ready = 1
    for second in range(600):
        if rng.random() < 0.7:
            c = rng.uniform(0, 30) if rng.random() < 0.9 else 0.0
            one.record(float(second), Stat(pod_name="r", average_concurrent_requests=c))
            pending_t.append(float(second))
            pending_c.append(c)
        if second % 2 == 0:
            batch.record_many(pending_t, "r", pending_c, [0.0] * len(pending_t))
            pending_t, pending_c = [], []
            a = one.tick(float(second), ready_pods=ready)
            b = batch.tick(float(second), ready_pods=ready)
            assert b == a
            ready = max(0, a.desired_pods)


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("weighted", [False, True], ids=["plain", "weighted"])
def test_rps_windows_left_unwritten_while_zero_match_written_ones(
    seed: int, weighted: bool
) -> None:
    """A reporter of concurrency alone: the rps windows are built when first needed; they hold
    what writing every zero would have left, through resizes and then non-zero rps."""
    rng = random.Random(3000 + seed)
    lazy = MetricCollector(60.0, 6.0, weighted)
    eager = MetricCollector(60.0, 6.0, weighted)
    eager._rps_windows()  # written from the first report on
    writes = random_writes(rng, 400)
    switch = rng.randint(100, 300)  # from here on some reports carry requests
    reconfigure_at = rng.randint(50, 350)
    for k, (t, c) in enumerate(writes):
        r = rng.choice([0.0, rng.uniform(0, 5)]) if k >= switch else 0.0
        if rng.random() < 0.5:
            for col in (lazy, eager):
                col.record(t, Stat(pod_name="p", average_concurrent_requests=c, request_count=r))
        else:
            for col in (lazy, eager):
                col.record_many([t], "p", [c], [r])
        if k == reconfigure_at:
            stable = rng.choice([30.0, 60.0, 90.0])
            for col in (lazy, eager):
                col.reconfigure(stable, stable / 10, t)
        if rng.random() < 0.01:  # a read builds the windows too
            assert lazy.stable_and_panic_rps(t) == eager.stable_and_panic_rps(t)
        if not lazy._rps_idle:
            for name in ("_rps", "_rps_panic"):
                assert window_state(getattr(lazy, name)) == window_state(getattr(eager, name))
    now = writes[-1][0] + rng.uniform(0, 3)
    assert lazy.stable_and_panic_rps(now) == eager.stable_and_panic_rps(now)
    assert lazy.stable_and_panic_concurrency(now) == eager.stable_and_panic_concurrency(now)
    for name in ("_concurrency", "_concurrency_panic", "_rps", "_rps_panic"):
        assert window_state(getattr(lazy, name)) == window_state(getattr(eager, name)), name


def test_rps_windows_stay_unwritten_for_a_concurrency_reporter() -> None:
    """The saving itself: zeros for rps never reach the rps windows until they are read."""
    c = MetricCollector(60.0, 6.0)
    c.record_many([1.0, 2.0, 3.0], "p", [1.0, 2.0, 3.0], [0.0, 0.0, 0.0])
    assert c._rps_idle and c._rps._last is None
    assert c.stable_and_panic_rps(3.0) == (0.0, 0.0)
    assert not c._rps_idle and c._rps._last == 3
