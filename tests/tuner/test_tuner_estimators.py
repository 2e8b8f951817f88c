"""Each estimator alone: percentile, latency curve, safe concurrency, confidence, margin, decay."""

from __future__ import annotations

import math

import pytest
from tuner_plant import latency_counts

from autoscaler.tuner import decay
from autoscaler.tuner.estimators import (
    confidence,
    margin_fraction,
    safe_concurrency,
    with_margin,
)
from autoscaler.tuner.latency_model import (
    LatencyModel,
    LatencyPoint,
    Reference,
    beyond_last_bound,
)
from autoscaler.tuner.observation import (
    LATENCY_BUCKETS_MS,
    RevisionObservation,
    counts_from_cumulative,
    tail_sum_ms,
)
from autoscaler.tuner.percentile import percentile_from_counts

N = len(LATENCY_BUCKETS_MS) + 1


def counts_at(**by_bound: float) -> tuple[float, ...]:
    """Counts keyed by upper bound, e.g. counts_at(b5=90, b150=10); 'inf' for +Inf."""
    out = [0.0] * N
    for key, n in by_bound.items():
        i = N - 1 if key == "inf" else LATENCY_BUCKETS_MS.index(float(key[1:]))
        out[i] = n
    return tuple(out)


@pytest.mark.parametrize(
    ("counts", "q", "expected"),
    [
        pytest.param(counts_at(b5=90, b150=10), 95, 125.0, id="interpolates-in-bucket"),
        pytest.param(counts_at(b5=100), 50, 2.5, id="first-bucket-from-zero"),
        pytest.param(counts_at(b5=90, inf=10), 95, math.inf, id="rank-in-inf-is-inf"),
        pytest.param(counts_at(b200=1), 99, 199.5, id="single-sample"),
        pytest.param(counts_at(), 95, None, id="no-samples"),
    ],
)
def test_percentile_from_counts(
    counts: tuple[float, ...], q: float, expected: float | None
) -> None:
    got = percentile_from_counts(counts, q)
    if expected is None or math.isinf(expected):
        assert got == expected
    else:
        assert got == pytest.approx(expected)


@pytest.mark.parametrize(
    ("counts", "sum_ms", "expected"),
    [
        pytest.param(
            counts_at(inf=10), 10 * 499_000.0, 100_000 + 2 * 399_000 * 0.95, id="all-beyond-100s"
        ),
        pytest.param(
            counts_at(b100=90, inf=10), 90 * 90.0 + 10 * 300_000.0, 300_000.0, id="tail-of-ten"
        ),
        pytest.param(
            counts_at(b5=90, inf=10),
            90 * 2.5 + 10 * 50_000.0,
            100_000.0,
            id="sum-below-bound-clamps-to-bound",
        ),
        pytest.param(counts_at(b5=90, inf=10), None, math.inf, id="no-sum-is-inf"),
        pytest.param(
            counts_at(b5=96, inf=4),
            96 * 2.5 + 4 * 400_000.0,
            5 * 95 / 96,
            id="rank-below-tail-ignores-it",
        ),
    ],
)
def test_percentile_beyond_the_last_bound_is_the_tail_mean(
    counts: tuple[float, ...], sum_ms: float | None, expected: float
) -> None:
    obs = RevisionObservation(
        t_s=30.0,
        interval_s=30.0,
        ready_replicas=1,
        avg_concurrency_per_replica=1.0,
        request_count=int(sum(counts)),
        latency_counts=counts,
        latency_sum_ms=sum_ms,
    )
    got = percentile_from_counts(counts, 95, tail_sum=obs.tail_sum_ms)
    assert got == pytest.approx(expected)


def test_latency_model_keeps_the_tail_through_decay_and_scaling() -> None:
    tail = counts_at(inf=10)
    model = LatencyModel().add(0.0, 2.0, tail, 3600.0, 10 * 250_000.0)
    model = model.add(3600.0, 2.0, tail, 3600.0, 10 * 350_000.0)  # half the weight of the first
    (point,) = model.points(95, 3600.0, 3600.0)
    mean = (0.5 * 250_000 + 350_000) / 1.5
    assert point.latency_ms == pytest.approx(100_000 + 2 * (mean - 100_000) * 0.95)
    rebased = model.rebased(7200.0, 3600.0)
    assert rebased.points(95, 7200.0, 3600.0)[0].latency_ms == pytest.approx(point.latency_ms)
    assert model.scaled(0.1).points(95, 3600.0, 3600.0)[0].latency_ms == pytest.approx(
        point.latency_ms
    )


def counts_of(latencies_ms: list[float]) -> tuple[float, ...]:
    out = [0.0] * N
    for v in latencies_ms:
        out[next((i for i, b in enumerate(LATENCY_BUCKETS_MS) if v <= b), N - 1)] += 1
    return tuple(out)


@pytest.mark.parametrize(
    ("latencies_ms", "expected"),
    [
        # a 19.9 s model served in 20.5 s: linear interpolation says 48.5 s; the sum allows at
        # most 5 % of the bucket's requests above 20 + 0.5 / 0.05 s
        pytest.param([20_500.0] * 100, 30_000.0, id="all-just-past-a-bound"),
        # a slow tail in the same bucket is not hidden: the sum cannot bound it under linear
        pytest.param([21_000.0] * 90 + [45_000.0] * 10, 48_500.0, id="tail-in-bucket"),
        # other buckets' requests count at their lower bounds; these are 1 s above theirs, so
        # the bound is looser: 20 + (0.5 + 1) x 50 / (50 x 0.1) s
        pytest.param([3_000.0] * 50 + [20_500.0] * 50, 35_000.0, id="others-above-lower-bounds"),
    ],
)
def test_the_sum_bounds_a_percentile_in_a_wide_bucket(
    latencies_ms: list[float], expected: float
) -> None:
    counts = counts_of(latencies_ms)
    linear = percentile_from_counts(counts, 95)
    got = percentile_from_counts(counts, 95, latency_sum=math.fsum(latencies_ms))
    assert got == pytest.approx(min(expected, linear or math.inf))
    assert got is not None and linear is not None and got <= linear
    assert got >= sorted(latencies_ms)[math.ceil(0.95 * len(latencies_ms)) - 1]


def test_the_sum_bound_is_never_below_the_true_percentile() -> None:
    import numpy as np

    rng = np.random.default_rng(7)
    lowered = 0
    for _ in range(300):
        n = int(rng.integers(5, 400))
        base = float(rng.choice([0.3, 3.0, 19.9, 40.0, 120.0])) * 1000.0
        shape = rng.choice(["flat", "exp", "bimodal"])
        if shape == "flat":
            lat = base * (1.0 + rng.uniform(0, 0.1, n))
        elif shape == "exp":
            lat = base * (1.0 + rng.exponential(0.5, n))
        else:
            lat = base * np.where(rng.random(n) < 0.9, 1.02, rng.uniform(1.5, 3.0, n))
        values = lat.tolist()
        q = float(rng.choice([50.0, 90.0, 95.0, 99.0]))
        counts = counts_of(values)
        total = math.fsum(values)
        obs = RevisionObservation(30.0, 30.0, 1, 1.0, n, counts, latency_sum_ms=total)
        tail = obs.tail_sum_ms
        linear = percentile_from_counts(counts, q, tail_sum=tail)
        got = percentile_from_counts(counts, q, tail_sum=tail, latency_sum=total)
        assert got is not None and linear is not None
        assert got <= linear
        truth = sorted(values)[math.ceil(q / 100.0 * n) - 1]
        # where the sum lowers the estimate, it stays at or above the truth (linear
        # interpolation alone may be on either side)
        assert got == linear or got >= truth * (1 - 1e-9), (shape, base, n, q)
        lowered += got < linear
    assert lowered >= 10  # the bound did bite (mostly the flat ones just past a bound)


def test_a_sum_below_what_the_counts_need_is_ignored() -> None:
    counts = counts_at(b50000=100)
    # 100 requests in (20, 50] s cannot sum to 1 s: the sum is from other requests
    assert percentile_from_counts(counts, 95, latency_sum=1_000.0) == pytest.approx(48_500.0)


def test_latency_model_keeps_the_whole_sum_unless_an_interval_had_none() -> None:
    counts = counts_at(b50000=100)
    model = LatencyModel().add(0.0, 1.0, counts, 3600.0, latency_sum=100 * 20_500.0)
    model = model.add(3600.0, 1.0, counts, 3600.0, latency_sum=100 * 20_500.0)
    (point,) = model.points(95, 3600.0, 3600.0)
    assert point.latency_ms == pytest.approx(30_000.0)
    assert model.rebased(7200.0, 3600.0).points(95, 7200.0, 3600.0)[0].latency_ms == (
        pytest.approx(30_000.0)
    )
    assert model.scaled(0.1).points(95, 3600.0, 3600.0)[0].latency_ms == pytest.approx(30_000.0)
    # one interval without a sum: the bin's sum is no longer known; linear again
    unsummed = model.add(3700.0, 1.0, counts, 3600.0)
    assert unsummed.bins[0].latency_sum is None
    assert unsummed.points(95, 3700.0, 3600.0)[0].latency_ms == pytest.approx(48_500.0)


# A model of 67 s requests with a tenth at 268 s, as one replica serves them alone (c 0.9) and
# slowed three times (c 3): at 3 every request is past Knative's last bound (100 s).
ALONE = [67_000.0] * 90 + [268_000.0] * 10
SLOWED = [3 * v for v in ALONE]


def test_beyond_the_last_bound_the_percentile_scales_with_the_mean() -> None:
    counts = counts_of(SLOWED)
    total = math.fsum(SLOWED)
    obs = RevisionObservation(30.0, 30.0, 1, 3.0, 100, counts, latency_sum_ms=total)
    spread = percentile_from_counts(counts, 95, tail_sum=obs.tail_sum_ms)
    assert spread == pytest.approx(406_000, rel=0.01)  # the tail spread evenly: 406 s
    ref = Reference(mean_ms=math.fsum(ALONE) / 100, percentile_ms=268_000.0)
    # the truth is 3 x 268 s; the mean grew 3 times
    assert beyond_last_bound(counts, 95, total, ref) == pytest.approx(804_000)
    assert beyond_last_bound(counts, 95, None, ref) is None  # no sum: nothing to scale
    assert beyond_last_bound(counts, 95, total, None) is None
    # a rank in a finite bucket is read from the buckets alone
    assert beyond_last_bound(counts_of(ALONE), 50, math.fsum(ALONE), ref) is None


def add_values(model: LatencyModel, c: float, values: list[float]) -> LatencyModel:
    counts, total = counts_of(values), math.fsum(values)
    return model.add(0.0, c, counts, 3600.0, tail_sum_ms(counts, total), total)


def test_the_reference_is_the_lowest_concurrencies_with_enough_requests() -> None:
    model = add_values(LatencyModel(), 0.9, ALONE[::10])
    assert model.reference(95, 0.0, 3600.0, min_requests=20) is None  # 10 requests
    model = add_values(add_values(model, 1.0, ALONE), 3.0, SLOWED)
    ref = model.reference(95, 0.0, 3600.0, min_requests=20)
    assert ref is not None
    # bins 0.9 and 1.0 taken together (110 requests), not the one at 3
    assert ref.mean_ms == pytest.approx(math.fsum(ALONE) / 100)
    # bins without whole sums are passed over
    counts = counts_of(ALONE)
    unsummed = LatencyModel().add(0.0, 0.9, counts, 3600.0, tail_sum_ms(counts, sum(ALONE)))
    assert unsummed.reference(95, 0.0, 3600.0, min_requests=20) is None
    # a learned point past the bound is read scaled too
    (point,) = [p for p in model.points(95, 0.0, 3600.0, 20, ref) if p.concurrency == 3.0]
    assert point.latency_ms == pytest.approx(ref.percentile_ms * 3)
    at = model.point_at(3.0, 95, 0.0, 3600.0, ref)
    assert at is not None and at.latency_ms == pytest.approx(ref.percentile_ms * 3)
    unscaled = model.point_at(3.0, 95, 0.0, 3600.0)
    assert unscaled is not None and unscaled.latency_ms < at.latency_ms


def test_observation_rejects_a_negative_or_infinite_sum() -> None:
    for bad in (-1.0, math.inf):
        with pytest.raises(ValueError, match="latency_sum_ms must be finite"):
            RevisionObservation(30.0, 30.0, 1, 1.0, 1, counts_at(b5=1), latency_sum_ms=bad)


def test_percentile_rejects_wrong_length_and_range() -> None:
    with pytest.raises(ValueError, match="expected 27 counts"):
        percentile_from_counts((1.0,), 95)
    with pytest.raises(ValueError, match="percentile must be in"):
        percentile_from_counts(counts_at(b5=1), 100)


def test_counts_from_cumulative_subtracts_and_handles_reset() -> None:
    prev = [0.0] * N
    cur = [float(min(i, 5)) for i in range(N)]  # cumulative: 0,1,2,3,4,5,5,...
    assert sum(counts_from_cumulative(prev, cur)) == 5
    # A counter that went down is a restart: the current scrape counts from zero.
    assert counts_from_cumulative(cur, [0.0] * N) == (0.0,) * N
    with pytest.raises(ValueError, match="27 cumulative counts"):
        counts_from_cumulative(None, [1.0])


def test_plant_histogram_has_the_p95_it_was_given() -> None:
    # The test plant's own histograms: the percentile lands within the bucket of the target.
    got = percentile_from_counts(latency_counts(120.0, 400), 95)
    assert got is not None and 100 <= got <= 150


def test_latency_model_bins_by_concurrency_and_reads_percentiles() -> None:
    m = LatencyModel(bin_ratio=1.1)
    m = m.add(10.0, 2.0, latency_counts(50, 200), half_life_s=3600)
    m = m.add(20.0, 2.05, latency_counts(50, 200), half_life_s=3600)  # same 10 % bin
    m = m.add(30.0, 4.0, latency_counts(300, 200), half_life_s=3600)
    points = m.points(95, 30.0, 3600)
    # The later sample weighs a little more (decay): the bin mean is just above 2.025.
    assert [p.concurrency for p in points] == [pytest.approx(2.025, abs=0.01), 4.0]
    assert points[0].latency_ms < 60 < 250 < points[1].latency_ms
    assert m.point_at(2.01, 95, 30.0, 3600) is not None
    assert m.point_at(3.0, 95, 30.0, 3600) is None


def test_a_bin_is_read_from_its_buckets_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every tick reads the whole curve; a bin's percentile is read from its buckets once (a
    new interval makes a new bin, read again), and the same as read afresh."""
    import autoscaler.tuner.latency_model as lm

    reads: list[tuple[float, ...]] = []

    def counting(counts: tuple[float, ...], q: float, **kw: float | None) -> float | None:
        reads.append(counts)
        return percentile_from_counts(counts, q, **kw)  # type: ignore[arg-type]

    m = LatencyModel(bin_ratio=1.1)
    m = m.add(10.0, 2.0, latency_counts(50, 200), half_life_s=3600)
    m = m.add(20.0, 4.0, latency_counts(300, 200), half_life_s=3600)
    monkeypatch.setattr(lm, "percentile_from_counts", counting)
    first = m.points(95, 30.0, 3600)
    assert len(reads) == 2
    later = m.points(95, 60.0, 3600)
    assert [p.latency_ms for p in later] == [p.latency_ms for p in first]
    assert later[0].requests < first[0].requests  # decayed, as ever
    assert len(reads) == 2  # the second tick read no bucket
    m2 = m.add(40.0, 4.0, latency_counts(900, 200), half_life_s=3600)
    slow = m2.points(95, 60.0, 3600)
    assert len(reads) == 3  # only the bin the interval went into
    assert slow[0].latency_ms == first[0].latency_ms
    assert slow[1].latency_ms > first[1].latency_ms
    assert m.points(99, 60.0, 3600) and len(reads) == 5  # another percentile: read anew


def test_latency_model_evidence_decays_with_half_life() -> None:
    m = LatencyModel().add(0.0, 1.0, latency_counts(50, 100), half_life_s=100)
    assert m.evidence(0.0, 100) == pytest.approx(100)
    assert m.evidence(100.0, 100) == pytest.approx(50)
    assert m.points(95, 300.0, 100, min_requests=20) == []  # 12.5 left: below the minimum


def test_latency_model_rebases_without_changing_evidence() -> None:
    hl = 10.0
    m = LatencyModel().add(0.0, 1.0, latency_counts(50, 100), hl)
    m = m.add(hl * (decay.MAX_EXPONENT + 5), 1.0, latency_counts(50, 100), hl)
    assert m.ref_s > 0
    assert m.evidence(m.ref_s, hl) == pytest.approx(100, rel=1e-6)


@pytest.mark.parametrize(
    ("points", "safe", "knee"),
    [
        pytest.param([(1, 50), (2, 80), (4, 150)], 4, None, id="all-meet"),
        pytest.param([(1, 50), (2, 80), (4, 250)], 2, 4, id="knee-at-4"),
        pytest.param([(1, 250), (2, 80)], None, 1, id="meets-above-a-miss-not-trusted"),
        pytest.param([], None, None, id="empty"),
    ],
)
def test_safe_concurrency(
    points: list[tuple[float, float]], safe: float | None, knee: float | None
) -> None:
    got = safe_concurrency([LatencyPoint(c, ms, 100) for c, ms in points], objective_ms=200)
    assert (got.safe, got.knee) == (safe, knee)


@pytest.mark.parametrize(
    ("evidence", "expected"),
    [(0, 0.0), (500, 0.5), (2000, 1.0), (10_000, 1.0)],
    ids=["none", "quarter-is-half", "full", "capped"],
)
def test_confidence_grows_with_evidence(evidence: float, expected: float) -> None:
    assert confidence(evidence, 2000) == pytest.approx(expected)


def test_margin_widens_when_confidence_is_low() -> None:
    assert margin_fraction(0.1, 1.0) == pytest.approx(0.1)
    assert margin_fraction(0.1, 0.0) == pytest.approx(0.2)
    assert with_margin(10.0, 0.1) == pytest.approx(9.0)
