"""Re-bucketing cumulative latency counts onto Knative's 26 bounds plus +Inf."""

from __future__ import annotations

import math

import pytest

from autoscaler.metrics.buckets import cumulative_delta, rebucket_cumulative
from autoscaler.tuner.observation import LATENCY_BUCKETS_MS, N_LATENCY_COUNTS

INF = math.inf


def at(**by_bound_ms: float) -> tuple[float, ...]:
    """27 counts, zero except the buckets named by upper bound (``b80=3``, ``inf=1``)."""
    counts = [0.0] * N_LATENCY_COUNTS
    for name, value in by_bound_ms.items():
        index = N_LATENCY_COUNTS - 1 if name == "inf" else LATENCY_BUCKETS_MS.index(float(name[1:]))
        counts[index] = value
    return tuple(counts)


def knative_cumulative(per_bucket: tuple[float, ...]) -> dict[float, float]:
    out, running = {}, 0.0
    for bound, count in zip((*LATENCY_BUCKETS_MS, INF), per_bucket, strict=True):
        running += count
        out[float(bound)] = running
    return out


CASES = [
    pytest.param(
        knative_cumulative(at(b5=1, b500=2, b100000=3, inf=4)),
        at(b5=1, b500=2, b100000=3, inf=4),
        id="same-bounds-map-one-to-one",
    ),
    pytest.param(
        # 10 requests in the source bucket (75, 100] ms: spread evenly, 20 % fall at or below 80.
        {75.0: 0.0, 100.0: 10.0, INF: 10.0},
        at(b80=2, b100=8),
        id="source-bucket-split-evenly",
    ),
    pytest.param(
        # (0, 50] ms holding 5: 5 ms of 50 -> 0.5 in (0, 5], 0.5 in (5, 10], 1 in (10, 20], ...
        {50.0: 5.0, INF: 5.0},
        at(b5=0.5, b10=0.5, b20=1.0, b40=2.0, b60=1.0),
        id="first-source-bucket-from-zero",
    ),
    pytest.param(
        # Above the largest finite source bound (10 s) is known only to be slower than 10 s.
        {5_000.0: 0.0, 10_000.0: 0.0, INF: 3.0},
        at(b20000=3),
        id="tail-goes-to-first-bucket-above-largest-bound",
    ),
    pytest.param(
        # OpenTelemetry's bounds in ms; one 100 ms request: bucket (75, 100] -> 0.2 and 0.8.
        {b * 1000: (1.0 if b >= 0.1 else 0.0) for b in (0.005, 0.05, 0.075, 0.1, 0.25, 10.0)}
        | {INF: 1.0},
        at(b80=0.2, b100=0.8),
        id="opentelemetry-seconds-bounds",
    ),
    pytest.param({}, at(), id="nothing"),
    pytest.param({INF: 3.0}, at(inf=3), id="only-inf-bucket"),
    pytest.param(
        # increase() extrapolates each series alone: a lower bound may exceed a higher one.
        {5.0: 5.0, 10.0: 4.9, INF: 6.0},
        at(b5=5.0, b20=1.0),  # the one above 10 ms: to (10, 20]
        id="non-monotone-cumulative-raised",
    ),
]


@pytest.mark.parametrize(("cumulative", "expected"), CASES)
def test_rebucket(cumulative: dict[float, float], expected: tuple[float, ...]) -> None:
    got = rebucket_cumulative(cumulative)
    assert len(got) == N_LATENCY_COUNTS
    assert got == pytest.approx(expected)
    assert sum(got) == pytest.approx(max(cumulative.values(), default=0.0))


@pytest.mark.parametrize(
    ("previous", "current", "expected"),
    [
        pytest.param(None, {5.0: 1.0, INF: 2.0}, {5.0: 1.0, INF: 2.0}, id="first-counts-from-zero"),
        pytest.param({5.0: 1.0, INF: 2.0}, {5.0: 3.0, INF: 5.0}, {5.0: 2.0, INF: 3.0}, id="delta"),
        pytest.param({INF: 2.0}, {5.0: 1.0, INF: 2.0}, {5.0: 1.0, INF: 0.0}, id="new-bound"),
    ],
)
def test_cumulative_delta(
    previous: dict[float, float] | None, current: dict[float, float], expected: dict[float, float]
) -> None:
    assert cumulative_delta(previous, current) == expected
