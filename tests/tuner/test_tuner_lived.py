"""Requests longer than a tick: judged at the concurrency they were served at."""

from __future__ import annotations

from dataclasses import replace

import pytest
from tuner_plant import obs

from autoscaler.tuner import (
    LATENCY_BUCKETS_MS,
    CheckpointError,
    ModelScalerSpec,
    RevisionObservation,
    RevisionState,
    TunerConfig,
    decode_checkpoint,
    encode_checkpoint,
    inherit_state,
    new_state,
    recommend,
)
from autoscaler.tuner.lived import (
    MAX_SPANS,
    ConcurrencyHistory,
    history_keep_s,
    lifetime_s,
    lived_concurrency,
)

CONFIG = TunerConfig()


def long_obs(
    t: float, c: float, replicas: int, latency_s: float, target: float | None, n: int = 40
) -> RevisionObservation:
    """30 s intervals whose ``n`` completions each took ``latency_s`` (beyond 100 s they are
    in the +Inf bucket; the sum tells how long)."""
    return replace(
        obs(t, c, replicas, latency_s * 1000.0, target, n),
        latency_sum_ms=latency_s * 1000.0 * n if n else None,
    )


def served_at_six() -> tuple[ModelScalerSpec, RevisionState]:
    """Ten intervals of 140 s requests at 6 conc/replica, meeting a 300 s objective."""
    spec = ModelScalerSpec("m", objective_latency_ms=300_000)
    state = new_state("r")
    for t in range(30, 301, 30):
        _, state = recommend(long_obs(t, 6.0, 10, 140.0, 8.57), spec, CONFIG, state, t)
    return spec, state


def history_of(*spans: tuple[float, float, float]) -> ConcurrencyHistory:
    h = ConcurrencyHistory()
    for a, b, c in spans:
        h = h.add(a, b, c, keep_s=3600.0)
    return h


def test_worked_case_requests_finishing_after_a_back_off_lived_mostly_before_it() -> None:
    # 6 conc/replica until t=300, then 3; requests of 150 s finishing in (300, 330] lived
    # through (165, 315]: 6 for 135 s and 3 for 15 s.
    spans = [(float(t), float(t + 30), 6.0) for t in range(0, 300, 30)] + [(300.0, 330.0, 3.0)]
    h = history_of(*spans)
    o = long_obs(330, 3.0, 4, 150.0, 4.3)
    assert lifetime_s(o) == pytest.approx(150.0)
    assert lived_concurrency(o, h) == pytest.approx((6 * 135 + 3 * 15) / 150)


def test_requests_no_longer_than_the_interval_are_judged_at_its_own_concurrency() -> None:
    h = history_of((0.0, 30.0, 6.0), (30.0, 60.0, 3.0))
    assert lived_concurrency(long_obs(60, 3.0, 4, 20.0, 4.3), h) == 3.0
    # none finished and nothing in flight for long: the interval's own as well
    assert lived_concurrency(long_obs(60, 3.0, 4, 0.0, 4.3, n=0), h) == 3.0
    # none finished, one in flight for 60 s: the 60 s before mid-interval (45), of which the
    # history covers 45
    assert lived_concurrency(long_obs(60, 3.0, 4, 0.0, 4.3, n=0), h, 60.0) == pytest.approx(
        (6 * 30 + 3 * 15) / 45
    )


def test_a_concurrency_counted_from_completions_already_spans_their_lifetimes() -> None:
    # The metrics sources' concurrency: each finished request adds its whole duration to the
    # interval it finishes in. Averaging it again over the history would count lifetimes twice.
    spans = [(float(t), float(t + 30), 6.0) for t in range(0, 300, 30)] + [(300.0, 330.0, 3.0)]
    o = replace(long_obs(330, 3.0, 4, 150.0, 4.3), concurrency_from_completions=True)
    assert lived_concurrency(o, history_of(*spans)) == 3.0
    # and the tuner keeps no history for such a source
    spec = ModelScalerSpec("m", objective_latency_ms=300_000)
    _, state = recommend(o, spec, CONFIG, new_state("r"), 330)
    assert state.history == ConcurrencyHistory()


def test_history_drops_old_and_replayed_spans_and_merges_beyond_its_size() -> None:
    h = ConcurrencyHistory()
    for t in range(0, 300, 30):
        h = h.add(float(t), float(t + 30), 1.0, keep_s=100.0)
    assert [s[1] for s in h.spans] == [210.0, 240.0, 270.0, 300.0]  # ended after 300 - 100
    # an interval observed again, or out of order, changes nothing
    assert h.add(270.0, 300.0, 5.0, keep_s=100.0) == h
    assert h.add(200.0, 260.0, 5.0, keep_s=100.0) == h
    # a window longer than the tick overlaps the span before: that span ends where it starts
    h2 = ConcurrencyHistory().add(0.0, 60.0, 2.0, 3600.0).add(30.0, 90.0, 4.0, 3600.0)
    assert h2.spans == ((0.0, 30.0, 2.0), (30.0, 90.0, 4.0))
    # clock rounding (an interval starting a hair before the last ended) keeps the span before
    t0 = 1.7e9
    h3 = (
        ConcurrencyHistory().add(t0, t0 + 30, 2.0, 3600.0).add(t0 + 30 - 2e-7, t0 + 60, 4.0, 3600.0)
    )
    assert [c for _, _, c in h3.spans] == [2.0, 4.0]
    # an empty interval changes nothing
    assert h.add(300.0, 300.0, 9.0, keep_s=100.0) == h
    # many spans: the oldest merge, the time-weighted average over them stays
    many = ConcurrencyHistory()
    for k in range(MAX_SPANS + 10):
        many = many.add(10.0 * k, 10.0 * k + 10, float(k % 3), keep_s=1e9)
    assert len(many.spans) == MAX_SPANS
    assert many.spans[0][0] == 0.0 and many.spans[-1][1] == 10.0 * (MAX_SPANS + 10)
    expected = sum(k % 3 for k in range(MAX_SPANS + 10)) / (MAX_SPANS + 10)
    assert many.average(0.0, 1e9) == pytest.approx(expected)
    assert ConcurrencyHistory().average(0.0, 10.0) is None
    # a gap (no replica ready, or no tick) is not merged over: the oldest span goes instead
    gapped = ConcurrencyHistory().add(0.0, 10.0, 9.0, 1e9)
    for k in range(MAX_SPANS):
        gapped = gapped.add(100.0 + 10 * k, 110.0 + 10 * k, 1.0, 1e9)
    assert len(gapped.spans) == MAX_SPANS and gapped.average(0.0, 1e9) == 1.0


def test_history_reaches_four_objectives_back() -> None:
    assert history_keep_s(600_000, 30) == 2400.0
    assert history_keep_s(200, 30) == 60.0  # two intervals at least


def test_after_a_back_off_requests_begun_before_it_neither_back_off_again_nor_explore() -> None:
    # Requests of 140 s (objective 300 s) at 6 conc/replica, then a miss (400 s): the tuner
    # backs off halfway, to 3. The next intervals still finish requests served at 6: they are
    # judged there (250 s: p95 480 s, in proportion 6 x 0.9 x 300 / 480 = 3.3), and the aim,
    # already lower, holds. Meeting intervals of requests begun before the change do not
    # explore either.
    spec, state = served_at_six()
    rec, state = recommend(long_obs(330, 6.0, 10, 400.0, 8.57), spec, CONFIG, state, 330)
    assert rec.should_apply and rec.target < 8.57 and "backing off" in rec.reasons[0]
    backed = rec.target
    aim = backed * 0.7
    # still missing, at the lower concurrency: the requests lived mostly at 6
    assert aim == pytest.approx(3.0, abs=0.01)
    rec, state = recommend(long_obs(360, aim, 14, 250.0, backed), spec, CONFIG, state, 360)
    assert rec.target == backed and not rec.should_apply
    assert "already under" in rec.reasons[0] and "waiting" in rec.reasons[0]
    # meeting with room, requests begun before the change: no exploring
    rec, state = recommend(long_obs(390, aim, 14, 150.0, backed), spec, CONFIG, state, 390)
    assert rec.target == backed and "began before the last change" in rec.reasons[0]
    # once requests begun after the change finish, a miss at the new level backs off again
    t = 330 + 250 + 60
    rec, state = recommend(long_obs(t, aim, 14, 250.0, backed), spec, CONFIG, state, t)
    assert rec.should_apply and rec.target < backed


def test_latency_is_learned_at_the_concurrency_it_was_served_at() -> None:
    spec, state = served_at_six()
    _, state = recommend(long_obs(330, 2.0, 30, 140.0, 8.57), spec, CONFIG, state, 330)
    # 150 s before mid-interval: all at 6 conc/replica, none at 2
    points = state.latency.points(95, 330, 3600)
    assert [round(p.concurrency) for p in points] == [6]


def test_history_round_trips_through_the_checkpoint_and_older_ones_load() -> None:
    _, state = served_at_six()
    assert len(state.history.spans) == 10
    back = decode_checkpoint(encode_checkpoint({"r": state}))["r"]
    assert back.history == state.history
    fresh = decode_checkpoint(encode_checkpoint({"r": new_state("r")}))["r"]
    assert fresh.history == ConcurrencyHistory()  # nothing written, nothing read
    # a new revision's replicas are its own: it inherits the latency curve, not the history
    assert inherit_state(state, "r-2").history == ConcurrencyHistory()


@pytest.mark.parametrize(
    ("spans", "message"),
    [
        pytest.param([[0, 30]], "has 2 fields", id="two-fields"),
        pytest.param([[30, 30, 1]], "not a later, non-empty span", id="empty"),
        pytest.param([[0, 30, -1]], "concurrency >= 0", id="negative"),
        pytest.param([[30, 60, 1], [0, 30, 1]], "not a later", id="out-of-order"),
        pytest.param([[0, "x", 1]], "is not a finite number", id="not-a-number"),
        pytest.param([[k, k + 1, 1] for k in range(MAX_SPANS + 1)], "at most", id="too-many"),
    ],
)
def test_malformed_history_in_a_checkpoint_is_named(
    spans: list[list[object]], message: str
) -> None:
    import base64
    import json
    import zlib

    text = encode_checkpoint({"r": new_state("r")})
    body = json.loads(zlib.decompress(base64.urlsafe_b64decode(text.split(":", 1)[1])))
    body["revisions"][0]["n"] = spans
    bad = "v1:" + base64.urlsafe_b64encode(zlib.compress(json.dumps(body).encode())).decode()
    with pytest.raises(CheckpointError, match=message):
        decode_checkpoint(bad)


def test_a_slow_tail_past_the_last_bucket_is_a_miss_scaled_from_lower_concurrency() -> None:
    # 67 s requests, a tenth of them 268 s; objective 537 s (twice the p95 alone)
    alone = [67_000.0] * 36 + [268_000.0] * 4
    slowed = [3 * v for v in alone]
    spec = ModelScalerSpec("m", objective_latency_ms=537_000)

    def interval(t: float, c: float, values: list[float]) -> RevisionObservation:
        counts = [0.0] * 27
        for v in values:
            counts[next((i for i, b in enumerate(LATENCY_BUCKETS_MS) if v <= b), 26)] += 1
        return RevisionObservation(
            t,
            30.0,
            10,
            c,
            len(values),
            tuple(counts),
            3 / 0.7,
            latency_sum_ms=sum(values),
            sum_matches_counts=True,
        )

    state = new_state("r")
    _, state = recommend(interval(30, 0.9, alone), spec, CONFIG, state, 30)
    # all of them past 100 s: spread evenly the tail reads 406 s and meets the objective; the
    # mean grew three times since 0.9 conc/replica, so the p95 reads 804 s: a miss
    rec, _ = recommend(interval(60, 3.0, slowed), spec, CONFIG, state, 60)
    assert "scaled from lower concurrency" in rec.reasons[0] and "misses" in rec.reasons[0]
    assert rec.target < 3 / 0.7
