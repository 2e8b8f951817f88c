"""Idle periods, the baseline hybrid histogram, our keep-alive policy and its Knative plan."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from tuner_plant import latency_counts

from autoscaler.tuner import (
    HybridHistogram,
    HybridHistogramPolicy,
    IdleHistogram,
    KeepAliveSettings,
    KeepAliveWindows,
    LearnedKeepAlive,
    ModelScalerSpec,
    RevisionObservation,
    TunerConfig,
    new_state,
    plan,
    recommend,
)
from autoscaler.tuner.idle import (
    RECENT_IDLE_KEPT,
    Activity,
    bin_of,
    idle_edges_s,
    observe_activity,
    observe_idle_periods,
)
from autoscaler.tuner.keepalive import UNKNOWN_OVERFLOW_RATIO, idle_bins, idle_cv

EMPTY = (0.0,) * 27


def obs_at(
    t: float, requests: int, interval: float = 10.0, arrivals: tuple[float, ...] | None = None
) -> RevisionObservation:
    return RevisionObservation(
        t_s=t,
        interval_s=interval,
        ready_replicas=1 if requests else 0,
        avg_concurrency_per_replica=1.0 if requests else 0.0,
        request_count=requests,
        latency_counts=latency_counts(50, requests) if requests else EMPTY,
        applied_target=10.0,
        arrivals_s=arrivals,
    )


def test_idle_period_from_gap_between_active_intervals() -> None:
    act = Activity()
    idle, act = observe_activity(obs_at(10, 9), act, min_idle_s=60)
    assert idle == [] and act.last_request_s == pytest.approx(9.0)  # 10 - 10/(9+1)
    idle, act = observe_activity(obs_at(20, 9), act, 60)
    assert idle == []  # contiguous: no idle period
    idle, act = observe_activity(obs_at(200, 0), act, 60)
    assert idle == []
    idle, act = observe_activity(obs_at(310, 9), act, 60)
    # last request ~19, next ~301: 282 s.
    assert idle == [pytest.approx(282.0)]


def test_short_gaps_are_not_idle_periods_and_arrivals_are_exact() -> None:
    act = Activity(last_request_s=100.0, last_active_end_s=100.0)
    idle, _ = observe_activity(obs_at(140, 2, arrivals=(131.0, 139.0)), act, 60)
    assert idle == []  # 31 s: the stable window covers it
    idle, act2 = observe_activity(obs_at(300, 2, arrivals=(291.0, 299.0)), act, 60)
    assert idle == [191.0] and act2.last_request_s == 299.0


def test_each_idle_period_counts_the_requests_a_cold_start_at_its_end_would_delay() -> None:
    act = Activity(last_request_s=100.0, last_active_end_s=100.0)
    # exact arrivals: two idle periods end in the interval, at 300 s (three requests within
    # the 30 s after it) and at 500 s (one)
    arrivals = (300.0, 310.0, 329.0, 331.0, 500.0)
    periods, act = observe_idle_periods(obs_at(510, 5, 400, arrivals), act, 60, 30)
    assert periods == [(200.0, 3.0), (169.0, 1.0)]
    assert act.last_request_s == 500.0
    # a burst that goes on past the interval: the part seen is scaled up to the window (at
    # most four times): 20 requests over 505-533.5 s, the interval ending at 520
    act = Activity(last_request_s=100.0, last_active_end_s=100.0)
    burst = tuple(505.0 + 1.5 * k for k in range(10))  # the first ten, up to 518.5
    periods, _ = observe_idle_periods(obs_at(520, 10, 30, burst), act, 60, 30)
    assert periods == [(405.0, pytest.approx(1.0 + 9 * 30 / 15))]  # 19 of the 20
    periods, _ = observe_idle_periods(obs_at(506, 2, 30, (505.0, 505.5)), act, 60, 30)
    assert periods == [(405.0, pytest.approx(1.0 + 1 * 4))]  # 1 s seen: at most four times
    # counts only: an interval's requests are taken as evenly spread, at least the one
    periods, _ = observe_idle_periods(obs_at(900, 40), act, 60, 5)
    assert [w for _, w in periods] == [pytest.approx(20.0)]  # 40 x 5 s / 10 s
    periods, _ = observe_idle_periods(obs_at(900, 1, 60), act, 60, 5)
    assert [w for _, w in periods] == [1.0]
    periods, _ = observe_idle_periods(obs_at(900, 10), act, 60, 60)  # a window of six intervals
    assert [w for _, w in periods] == [pytest.approx(40.0)]  # scaled at most four times
    # no window (no cold start): the request that ends the idle period
    periods, _ = observe_idle_periods(obs_at(510, 5, 400, arrivals), Activity(100.0, 100.0), 60, 0)
    assert [w for _, w in periods] == [1.0, 1.0]


def test_the_woken_count_decays_with_the_weights_and_is_bounded() -> None:
    h = IdleHistogram().add(0.0, 900.0, 3600, woken=30.0).count_requests(1.0, 10, 3600)
    # never more than the requests an idle period stands for, never under one
    assert h.requests_per_idle() < 30.0
    assert h.woken_per_idle() == pytest.approx(h.requests_per_idle())
    # ten half-lives later one request woken: the old 30 weigh a 1,024th of it
    later = h.add(36000.0, 900.0, 3600, woken=1.0).count_requests(36001.0, 10, 3600)
    assert later.woken_per_idle() == pytest.approx((30.0 + 1024.0) / 1025.0, rel=1e-3)
    # far later the reference moves (rebased): the same ratio, the old count all but gone
    far = h.add(3600.0 * 200, 900.0, 3600, woken=1.0)
    assert far.ref_s == 3600.0 * 200 and far.woken == pytest.approx(1.0, rel=1e-6)


def test_a_cold_start_weighs_the_requests_it_delays_not_only_the_first() -> None:
    # 100 requests per 20-minute idle period. When one comes at each end, a cold start delays
    # one in a hundred: cheaper than the memory. When they come as a burst of 40 in the cold
    # start's 30 s, it delays 40 in a hundred (1,800 x 5 x 0.4 = 3,600): keep warm.
    keeper = LearnedKeepAlive(KeepAliveSettings(), False, 30.0)
    for woken, warm in ((1.0, False), (40.0, True)):
        h = IdleHistogram()
        for i in range(10):
            h = h.add(float(i), 1200.0, 86400, woken).count_requests(float(i), 100, 86400)
        assert h.woken_per_idle() == pytest.approx(woken)
        assert keeper.cold_start_price(h) == pytest.approx(1800.0 * 5 * woken / 100)
        assert keeper.decide(h, 10.0).is_warm(1200.0) == warm


def test_idle_histogram_bins_and_recency() -> None:
    edges = idle_edges_s()
    assert edges[0] == 0 and edges[-1] == 14400 and 270 in edges
    assert bin_of(285) == edges.index(270) and bin_of(99999) == len(edges) - 1
    h = IdleHistogram()
    h = h.add(0.0, 100.0, half_life_s=3600)
    h = h.add(3600.0, 1000.0, half_life_s=3600)  # one half-life later: weighs twice as much
    p = h.probabilities()
    assert p[bin_of(1000)] == pytest.approx(2 / 3) and h.count == 2


def baseline_with(idle_s: list[float]) -> KeepAliveWindows:
    policy = HybridHistogramPolicy()
    h = HybridHistogram()
    for x in idle_s:
        h = policy.record(h, x)
    return policy.decide(h)


@pytest.mark.parametrize(
    ("idle_s", "kind", "warm_from", "warm_until"),
    [
        pytest.param([285.0] * 20, "pre-warm", 240 * 0.9, 300 * 1.1, id="periodic-5min-prewarm"),
        pytest.param([30.0] * 20, "keep-alive", 0.0, 60 * 1.1, id="frequent-keepalive"),
        pytest.param([285.0] * 3, "long", 0.0, 14400.0, id="too-few-samples"),
        pytest.param(
            [float(60 * i + 5) for i in range(240)], "long", 0.0, 14400.0, id="spread-out-cv"
        ),
        pytest.param(
            [20000.0] * 6 + [300.0], "forecast", 17000.0, 23000.0, id="beyond-range-forecast"
        ),
    ],
)
def test_hybrid_histogram_baseline(
    idle_s: list[float], kind: str, warm_from: float, warm_until: float
) -> None:
    w = baseline_with(idle_s)
    assert w.kind == kind
    assert (w.warm_from_s, w.warm_until_s) == (pytest.approx(warm_from), pytest.approx(warm_until))


def test_hybrid_record_many_is_record_in_turn() -> None:
    policy = HybridHistogramPolicy()
    gaps = [30.0, 20000.0, 285.0, 0.5, 14400.0, 14399.9] + [20000.0 + i for i in range(9)]
    one = HybridHistogram()
    for x in gaps:
        one = policy.record(one, x)
    assert policy.record_many(HybridHistogram(), gaps) == one
    assert policy.record_many(one, []) is one
    # out of range only: the counts stay empty, as with record
    assert policy.record_many(HybridHistogram(), [20000.0]).counts == ()


def learned(idle_s: list[float], prewarm: bool = True, **settings: float) -> KeepAliveWindows:
    h = IdleHistogram()
    for i, x in enumerate(idle_s):
        h = h.add(float(i), x, 86400)
    keeper = LearnedKeepAlive(KeepAliveSettings(**settings), prewarm, 30.0)  # type: ignore[arg-type]
    return keeper.decide(h, float(len(idle_s)))


@pytest.mark.parametrize(
    ("idle_s", "prewarm", "kind", "covers"),
    [
        pytest.param([285.0] * 10, False, "keep-alive", 285.0, id="periodic-keepalive-covers-gap"),
        # pre-warm saves an eighth of a 285 s idle period; the gap prior (the bin's own width
        # is some spread) asks for more than thirty of them first
        pytest.param([285.0] * 30, True, "keep-alive", 285.0, id="periodic-short-keepalive"),
        pytest.param([285.0] * 60, True, "pre-warm", 285.0, id="periodic-prewarm-covers-gap"),
        pytest.param([1800.0] * 10, True, "pre-warm", 1800.0, id="half-hourly-prewarm"),
        pytest.param([1800.0] * 10, False, "keep-alive", None, id="half-hourly-cold-is-cheaper"),
        pytest.param([285.0, 900.0, 2000.0], True, "fallback", None, id="thin-history-fallback"),
        # two or more all within 10 % of each other (a timer's) are learned from at once
        pytest.param([285.0] * 3, True, "keep-alive", 285.0, id="thin-but-regular"),
        pytest.param([3600.0, 3630.0], True, "pre-warm", 3615.0, id="hourly-timer-twice"),
    ],
)
def test_learned_keep_alive(
    idle_s: list[float], prewarm: bool, kind: str, covers: float | None
) -> None:
    w = learned(idle_s, prewarm)
    assert w.kind == kind
    if covers is not None:
        assert w.is_warm(covers)
    if kind == "fallback":
        assert (w.warm_from_s, w.warm_until_s) == (0.0, 600.0)  # the common fixed 10 minutes


@pytest.mark.parametrize(
    ("idle_s", "settings"),
    [
        pytest.param([3600.0], {}, id="one-is-not-enough"),
        pytest.param([3600.0, 4000.0], {}, id="spread-over-10-percent"),
        pytest.param([3600.0, 3600.0, 7200.0], {}, id="one-of-three-apart"),
        pytest.param([80.0, 80.0, 80.0], {}, id="within-knatives-floor"),
        pytest.param([3600.0] * 3, {"regular_idle_samples": 0}, id="turned-off"),
        pytest.param([3600.0] * 3, {"regular_idle_samples": 4}, id="fewer-than-asked"),
    ],
)
def test_thin_history_falls_back_unless_regular(
    idle_s: list[float], settings: dict[str, float]
) -> None:
    w = learned(idle_s, True, **settings)
    assert w.kind == "fallback", w
    assert "needed" in w.reason


def test_regular_thin_history_says_why_it_is_learned_from() -> None:
    w = learned([3600.0, 3630.0], True)
    assert w.kind == "pre-warm" and w.reason.startswith(
        "2 idle periods seen, within 10% of each other (regular, as a timer's): pre-warm"
    ), w.reason
    # the idle periods are kept as seen: five of them learn as before, regular or not
    assert learned([3600.0] * 5, True).reason.startswith("pre-warm"), learned([3600.0] * 5)


def test_a_timer_learned_early_stays_learned_past_the_recent_idle_periods_kept() -> None:
    # more idle periods than are kept, all of a timer's, with min_idle_samples still ahead:
    # judged on the recent ones kept, not dropped back to the fallback
    many = RECENT_IDLE_KEPT + 4
    kinds = [learned([3600.0] * n, True, min_idle_samples=20).kind for n in range(2, many + 1)]
    assert kinds == ["pre-warm"] * (many - 1), kinds
    # and an irregular recent period still sends it back
    assert learned([3600.0] * many + [9000.0], True, min_idle_samples=20).kind == "fallback"


def test_requests_per_idle_period_are_counted_from_the_first_idle_period() -> None:
    h = IdleHistogram().count_requests(0.0, 100, 86400)  # before any idle period: not counted
    assert h.requests == 0.0 and h.requests_per_idle() == 1.0
    for i in range(10):
        h = h.add(1000.0 * i, 900.0, 86400).count_requests(1000.0 * i + 1, 3, 86400)
    assert h.requests_per_idle() == pytest.approx(3.0, rel=0.01)
    # far later, after a rebase of the decay reference, the ratio holds
    later = h.add(86400.0 * 45, 900.0, 86400).count_requests(86400.0 * 45 + 1, 3, 86400)
    assert later.ref_s == 86400.0 * 45
    assert later.requests_per_idle() == pytest.approx(3.0, rel=0.01)


def with_requests(idle_s: list[float], per_idle: float) -> IdleHistogram:
    h = IdleHistogram()
    for i, x in enumerate(idle_s):
        h = h.add(float(i), x, 86400).count_requests(float(i), per_idle, 86400)
    return h


@pytest.mark.parametrize(
    ("per_idle", "kind", "warm"),
    [
        pytest.param(1.0, "keep-alive", True, id="one-request-per-idle-period-keeps-warm"),
        pytest.param(50.0, "keep-alive", False, id="fifty-requests-pays-the-cold-start"),
    ],
)
def test_a_cold_start_costs_more_where_it_is_a_bigger_share(
    per_idle: float, kind: str, warm: bool
) -> None:
    # 40-minute idle periods: keeping warm costs ~2,640 replica-s, more than one cold start
    # for a model with 50 requests per idle period (1,800 x 5 / 50 = 180), less than one for a
    # model with a single request (1,800 x 5 / 1 = 9,000)
    keeper = LearnedKeepAlive(KeepAliveSettings(), False, 30.0)
    hist = with_requests([2400.0] * 10, per_idle)
    w = keeper.decide(hist, 10.0)
    assert w.kind == kind
    assert w.is_warm(2400.0) == warm
    assert keeper.cold_start_price(hist) == pytest.approx(1800.0 * 5.0 / per_idle)


@pytest.mark.parametrize(("per_idle", "warm"), [(4.0, True), (10.0, False), (1000.0, False)])
def test_a_cold_start_weighs_the_share_of_requests_it_delays(per_idle: float, warm: bool) -> None:
    # 20-minute idle periods: keeping warm costs ~1,200 replica-s. A cold start that delays one
    # request in four costs 1,800 x 5 / 4 = 2,250: keep warm. One in ten costs 900 and one in a
    # thousand 9: cheaper than the memory, so the replica goes at Knative's floor.
    keeper = LearnedKeepAlive(KeepAliveSettings(), False, 30.0)
    w = keeper.decide(with_requests([1200.0] * 10, per_idle), 10.0)
    assert w.kind == "keep-alive"
    assert w.is_warm(1200.0) == warm, w
    assert w.warm_until_s == (pytest.approx(1320.0, rel=0.2) if warm else keeper.floor_s), w


SPREAD_IDLE_S = [300.0, 550.0, 700.0, 1100.0, 1450.0, 1750.0, 2900.0, 3500.0, 4900.0, 5200.0]
# keep-alive at most Knative's own 1 h retention after the window: the longest idle periods
# above are left to pre-warm or a cold start, as the gap prior's choices below weigh
RETENTION_CAP = {"max_keep_alive_s": 3660.0}


def test_an_unloaded_gap_no_idle_period_has_ended_in_is_not_free() -> None:
    # Ten idle periods from 5 to 87 minutes, none shorter. The histogram alone unloads the
    # replica from 90 s to 270 s: every idle period that ends there is a cold start it adds.
    alone = learned(SPREAD_IDLE_S, prewarm_gap_prior=0.0, **RETENTION_CAP)
    assert alone.kind == "pre-warm" and not alone.is_warm(200.0), alone
    # With the prior, ten periods are too few to trust the gap: keep warm through it
    priced = learned(SPREAD_IDLE_S, **RETENTION_CAP)
    assert priced.kind == "keep-alive" and priced.is_warm(200.0), priced
    assert "too few to trust its unloaded gap" in priced.reason
    # twenty of them, none in the gap, are enough
    more = learned(SPREAD_IDLE_S * 2, **RETENTION_CAP)
    assert more.kind == "pre-warm" and not more.is_warm(200.0), more


def test_the_gap_prior_regains_weight_as_idle_periods_age() -> None:
    h = IdleHistogram()
    for i, x in enumerate(SPREAD_IDLE_S * 10):
        h = h.add(float(i), x, 86400.0)
    keeper = LearnedKeepAlive(KeepAliveSettings(**RETENTION_CAP), True, 30.0)
    assert keeper.decide(h, 100.0).kind == "pre-warm"
    # three half-lives on, the hundred idle periods count as twelve: not enough any more
    assert keeper.decide(h, 100.0 + 3 * 86400.0).kind == "keep-alive"


def test_the_gap_prior_does_not_reorder_pre_warm_windows() -> None:
    # Two short idle periods (7 and 8 minutes) and six of 58 to 76 minutes: unloading until
    # the long ones would make the two short ones cold. The prior weighs on pre-warm as a
    # whole against keep-alive; the pre-warm it chooses still starts before the short ones.
    idle = [438.0, 501.0, 3476.0, 3909.0, 3991.0, 4430.0, 4557.0, 4577.0]
    for prior in (0.0, 5.0):
        w = learned(idle, prewarm_gap_prior=prior)
        assert w.is_warm(438.0) and w.is_warm(501.0), (prior, w)


def test_a_pre_warm_closes_after_the_longest_idle_period_seen() -> None:
    # These shares add up to a rounding above 1: unclamped, "idle periods past T" read
    # slightly negative and every T past the last one seen looked cheaper the later it was
    # (the pre-warm held until 6.6 h)
    idle = [1650.0, 2033.0, 2364.0, 2483.0, 2488.0, 3564.0, 4376.0, 4444.0, 5184.0]
    h = IdleHistogram()
    for i, x in enumerate(idle):
        h = h.add(3000.0 * i, x, 86400.0)
    assert sum(h.probabilities()) > 1.0
    keeper = LearnedKeepAlive(KeepAliveSettings(prewarm_gap_prior=0.0), True, 30.0)
    w = keeper.decide(h, 27000.0)
    assert w.kind == "pre-warm" and w.warm_until_s == pytest.approx(5400 * 1.1), w


def test_regular_idle_periods_are_trusted_with_the_gap_prior() -> None:
    # a timer every 30 minutes: the coefficient of variation is near 0, so is the prior
    w = learned([1800.0] * 10)
    assert w.kind == "pre-warm" and not w.is_warm(600.0) and w.is_warm(1800.0), w


def test_idle_cv_counts_each_bins_width() -> None:
    edges = np.asarray(idle_edges_s())
    upper = np.append(edges[1:], edges[-1] * 1.5)

    def cv(idle_s: list[float]) -> float:
        h = IdleHistogram()
        for i, x in enumerate(idle_s):
            h = h.add(float(i), x, 86400.0)
        return idle_cv(np.asarray(h.probabilities()), edges, upper)

    assert cv([1800.0] * 10) == pytest.approx(300 / 12**0.5 / 1950)  # one 5-minute bin
    # idle periods of 4 to 6 h all land in the overflow bin: its width is their spread
    assert cv([15000.0] * 10) == pytest.approx(7200 / 12**0.5 / 18000)
    assert cv([100.0] * 9 + [14000.0]) > 1.0  # the prior is capped at prewarm_gap_prior
    assert idle_cv(np.zeros(len(edges)), edges, upper) == 1.0  # nothing to read: cautious


def test_effective_count_decays_with_the_idle_half_life() -> None:
    h = IdleHistogram().add(0.0, 300.0, 3600.0).add(3600.0, 300.0, 3600.0)
    assert h.effective_count(3600.0, 3600.0) == pytest.approx(1.5)
    assert h.effective_count(7200.0, 3600.0) == pytest.approx(0.75)
    # never more than were recorded: read with a longer half-life than they were recorded
    # with (the setting changed), or before the reference
    short = IdleHistogram().add(0.0, 300.0, 60.0).add(1200.0, 300.0, 60.0)
    assert short.effective_count(1200.0, 3600.0) == 2.0
    assert h.effective_count(-3600.0, 3600.0) == 2.0
    # across a rebase of the decay reference
    far = h.add(3600.0 * 45, 300.0, 3600.0)
    assert far.ref_s == 3600.0 * 45
    assert far.effective_count(3600.0 * 45, 3600.0) == pytest.approx(1.0)


def test_learned_prefers_cold_start_when_it_is_cheap() -> None:
    w = learned([600.0] * 10, prewarm=False, cold_start_cost_replica_s=10.0)
    assert w.kind == "keep-alive" and w.warm_until_s == 90.0


def test_plan_keep_alive_to_retention_and_prewarm_to_min_scale() -> None:
    ks = KeepAliveSettings()
    p = plan(KeepAliveWindows(0.0, 330.0, "keep-alive", ""), 1000.0, 1100.0, ks, 30.0)
    assert (p.retention_s, p.min_scale, p.keep_alive_s) == (270.0, 0, 330.0)
    p = plan(KeepAliveWindows(0.0, 80.0, "keep-alive", ""), 1000.0, 1010.0, ks, 30.0)
    assert p.retention_s == 0.0 and p.keep_alive_s == 90.0  # never under Knative's default
    w = KeepAliveWindows(600.0, 900.0, "pre-warm", "")
    before = plan(w, 1000.0, 1200.0, ks, 30.0)
    assert before.min_scale == 0 and before.prewarm_at_s == 1000 + 600 - 30 - 30
    during = plan(w, 1000.0, 1560.0, ks, 30.0)
    assert during.min_scale == 1 and during.prewarm_at_s is None
    after = plan(w, 1000.0, 1900.0, ks, 30.0)
    assert after.min_scale == 0
    long = plan(KeepAliveWindows(0.0, 5000.0, "keep-alive", ""), 1000.0, 1100.0, ks, 30.0)
    assert long.retention_s == 3600 and long.min_scale == 1  # beyond 1 h: min-scale holds


def cold_starts(
    prewarm: bool | None, hours: float = 3.0, period_s: float = 300.0, burst_s: float = 20.0
) -> tuple[int, int]:
    """Bursts every ``period_s``; returns (cold starts in total, in the last hour).

    ``prewarm`` None is Knative's default (keepAlive off). Replica model: it stays while
    traffic flows, then a stable window (60 s) plus max(grace 30 s, retention) after the last
    request; min-scale 1 starts one (ready after the 30 s cold start) and holds it.
    """
    tick = 10.0
    spec = ModelScalerSpec(
        "m",
        200,
        keep_alive_policy="off" if prewarm is None else "learned",
        prewarm_enabled=bool(prewarm),
    )
    config = TunerConfig()
    state = new_state("r1")
    retention, min_scale = 0.0, 0
    warm_until, ready_at = -1.0, 0.0
    last_request = None
    total = last_hour = 0
    t = 0.0
    while t < hours * 3600:
        t += tick
        start = t - tick
        active = start % period_s < burst_s
        if active:
            if start % period_s == 0:  # a burst begins at the start of this interval
                warm = start <= warm_until and ready_at <= start
                if not warm:
                    total += 1
                    last_hour += t > (hours - 1) * 3600
                    ready_at = start  # the cold start itself serves it, late
            last_request = t - tick / 3
            warm_until = last_request + 60 + max(30.0, retention)
        obs = obs_at(t, 20 if active else 0)
        rec, state = recommend(obs, spec, config, state, t)
        retention, min_scale = rec.retention_s, rec.min_scale
        if min_scale >= 1:
            if t > warm_until:
                ready_at = t + 30.0
            warm_until = max(warm_until, t + tick + 30.0)
        elif last_request is not None:
            warm_until = max(warm_until, last_request + 60 + max(30.0, retention))
    return total, last_hour


@pytest.mark.parametrize("prewarm", [False, True], ids=["keep-alive", "pre-warm"])
def test_periodic_traffic_fewer_cold_starts_than_knative_default(prewarm: bool) -> None:
    default_total, default_last = cold_starts(None)
    ours_total, ours_last = cold_starts(prewarm)
    assert default_last == 12  # every 5-minute burst is cold with 60 s + 30 s
    assert ours_last == 0
    assert ours_total <= 7  # cold while learning: the first bursts, before 5 idle periods
    assert ours_total < default_total


def test_a_bin_straddling_knative_floor_counts_as_cold_for_pre_warm() -> None:
    # Floor 12 s (6 s window + 6 s grace); idle periods of 17.5 s fall in the bin [10, 20),
    # past the floor. Pre-warming from 18 s would come after every request: keep-alive wins.
    settings = KeepAliveSettings(
        stable_window_s=6, scale_to_zero_grace_period_s=6, min_idle_s=4,
        min_idle_samples=3, cold_start_s=3, fallback_keep_alive_s=12,
    )  # fmt: skip
    hist = IdleHistogram()
    for i in range(3):
        hist = hist.add(100.0 + 18 * i, 17.5, 86400.0)
    windows = LearnedKeepAlive(settings, prewarm_enabled=True, tick_period_s=2).decide(hist, 136.0)
    assert windows.kind == "keep-alive", windows
    assert windows.warm_until_s >= 17.5


def test_a_keep_alive_setting_changed_takes_effect_before_the_next_idle_period() -> None:
    # ten 20-minute idle periods, one request each: kept warm through them. The cold-start
    # price is then lowered in the ConfigMap; the next tick, with no new idle period, unloads
    # at Knative's floor instead of waiting for one.
    spec = ModelScalerSpec("m", objective_latency_ms=200, prewarm_enabled=False)
    state = replace(
        new_state("r"),
        idle=with_requests([1200.0] * 10, 1.0),
        activity=Activity(last_request_s=95.0, last_active_end_s=100.0),
    )
    rec, state = recommend(obs_at(110, 1), spec, TunerConfig(), state, 110.0)
    assert rec.windows is not None and rec.windows.warm_until_s > 1200.0, rec.reasons
    cheap = TunerConfig(keep_alive=KeepAliveSettings(cold_start_cost_replica_s=1.0))
    rec, state = recommend(obs_at(120, 1), spec, cheap, state, 120.0)
    assert state.idle.count == 10
    assert rec.windows is not None and rec.windows.warm_until_s == 90.0, rec.reasons


@pytest.mark.parametrize(
    ("idle_s", "kind"),
    [
        # every three days: no window of hours reaches them, so none is kept warm for them
        pytest.param([259200.0] * 10, "keep-alive", id="three-days-go-cold-at-the-floor"),
        # five hours, from 4.4 to 5.6: a pre-warm that reaches the longest of them
        pytest.param([16000.0 + 400.0 * (i % 4) for i in range(10)], "pre-warm", id="five-hours"),
        # idle periods of three days, then eight of two hours: the last bin still has weight, but
        # none of the recent idle periods says how long its periods are: no window claims them
        pytest.param([259200.0] * 10 + [7200.0] * 8, "pre-warm", id="days-no-longer-recent"),
    ],
)
def test_idle_periods_past_the_last_bin_are_covered_only_by_a_window_that_reaches_them(
    idle_s: list[float], kind: str
) -> None:
    w = learned(idle_s)
    assert w.kind == kind, w
    if 7200.0 in idle_s:  # the two-hour ones are covered, the three-day ones are not
        assert w.warm_until_s < 14400.0 and "covers 44%" in w.reason, w
    elif kind == "pre-warm":
        assert w.warm_from_s < min(idle_s) and w.warm_until_s >= max(idle_s), w
    else:
        assert w.warm_until_s == 90.0 and "covers 0%" in w.reason, w


def test_an_outlier_of_days_does_not_price_out_the_window_the_other_long_idle_periods_need() -> (
    None
):
    # every five hours, once three days (a weekend), then five hours again: the four-hours-and-
    # more bin holds both, split by the recent lengths (7 of the last 8 five hours), so a
    # pre-warm of hours still covers the five-hour ones and leaves the three days cold. Taken
    # as one bin to three days, no window was worth it: cold every five hours.
    for after in (0, 3):
        w = learned([18000.0] * 10 + [259200.0] + [18000.0] * after)
        assert w.kind == "pre-warm", w
        # the bin of five hours reaches 10 % below them, the window opens 10 % before it
        assert w.warm_from_s == pytest.approx(18000.0 * 0.9 * 0.9), w
        assert 18000.0 <= w.warm_until_s < 18000.0 * 1.2, w
        assert "covers 88%" in w.reason, w


def test_idle_bins_split_the_overflow_share_over_the_recent_lengths() -> None:
    h = IdleHistogram()
    for i, x in enumerate([100.0] * 4 + [18000.0] * 3 + [259200.0]):
        h = h.add(float(i), x, 1e12)  # no decay: shares are counts
    p, lower, upper, known = idle_bins(h)
    assert known and p.sum() == pytest.approx(1.0)
    assert list(upper[-2:]) == [18000.0, 259200.0]
    assert list(lower[-2:]) == [idle_edges_s()[-1], 18000.0]
    # with a spread, each length's bin reaches only that far below it
    _, narrow, _, _ = idle_bins(h, 0.1)
    assert list(narrow[-2:]) == pytest.approx([16200.0, 233280.0])
    assert list(p[-2:]) == pytest.approx([3 / 8, 1 / 8])
    assert len(p) == len(idle_edges_s()) + 1
    # none of the recent ones in it: one bin, of no known length
    p, lower, upper, known = idle_bins(IdleHistogram().add(0.0, 100.0, 1e12))
    assert not known and len(p) == len(idle_edges_s())
    assert upper[-1] == idle_edges_s()[-1] * UNKNOWN_OVERFLOW_RATIO


def test_the_tuner_prices_a_returning_burst_by_the_requests_it_delays() -> None:
    # 20-minute idle periods, each ended by 30 requests in the tick after it. Spread over the
    # 30 s tick a cold start (cold_start_s 2) delays 2 of them (1,800 x 5 x 2 / 30 = 600
    # replica-s, less than the ~1,260 of memory): the replica goes at Knative's floor. Arriving
    # in the first 2 s it delays all 30 (9,000): kept warm.
    spec = ModelScalerSpec("m", objective_latency_ms=200, prewarm_enabled=False)
    config = TunerConfig(keep_alive=KeepAliveSettings(cold_start_s=2.0))
    for burst_s, warm in ((30.0, False), (1.9, True)):
        state = new_state("r")
        t = 0.0
        for _ in range(8):
            t += 1200.0 + 30.0
            arrivals = tuple(t - 30.0 + burst_s * k / 30 for k in range(30))
            obs = replace(obs_at(t, 30, 30.0, arrivals), applied_target=10.0)
            rec, state = recommend(obs, spec, config, state, t)
        assert state.idle.count == 7
        assert rec.windows is not None and rec.windows.is_warm(1200.0) == warm, rec.reasons


def test_no_window_ends_in_an_overflow_bin_whose_length_is_not_known() -> None:
    # three idle periods of days, then eight of two hours: at any price, no window is kept open
    # to the overflow bin's stand-in end
    w = learned(
        [259200.0] * 3 + [7200.0] * 8,
        cold_start_cost_replica_s=86400.0,
        cold_start_share_requests=100.0,
    )
    assert w.warm_until_s < 14400.0 * 1.1, w


@pytest.mark.parametrize(
    ("memory_mb", "reference_mb", "ratio"),
    [(3072.0, 1536.0, 2.0), (512.0, 1536.0, 1 / 3), (None, 1536.0, 1.0), (0.0, 1536.0, 1.0),
     (float("nan"), 1536.0, 1.0), (3072.0, 0.0, 1.0)],
    ids=["twice", "a-third", "unknown", "zero", "nan", "not-weighed"],
)  # fmt: skip
def test_a_replicas_memory_over_the_reference_is_its_weight(
    memory_mb: float | None, reference_mb: float, ratio: float
) -> None:
    settings = KeepAliveSettings(reference_memory_mb=reference_mb)
    assert LearnedKeepAlive.ratio_for(settings, memory_mb) == pytest.approx(ratio)


@pytest.mark.parametrize(
    ("memory_mb", "keep_s", "noted"),
    [(1536.0, 600.0, False), (512.0, 1800.0, True), (100.0, 9216.0, True),
     (10.0, 86400.0, True), (4096.0, 225.0, True), (65536.0, 90.0, True)],
    ids=["reference", "a-third", "past-the-retention-limit", "capped-at-a-day", "larger",
         "floor"],
)  # fmt: skip
def test_the_thin_history_keep_alive_scales_with_the_replicas_memory(
    memory_mb: float, keep_s: float, noted: bool
) -> None:
    # 600 s for a 1536 MB replica: a smaller one longer (up to max_keep_alive_s, a day: past
    # the 60 s window + 1 h retention the plan holds min-scale 1), a larger one shorter (down
    # to Knative's floor, 90 s)
    settings = KeepAliveSettings()
    keeper = LearnedKeepAlive(settings, True, 30.0, LearnedKeepAlive.ratio_for(settings, memory_mb))
    w = keeper.decide(IdleHistogram(), 0.0)
    assert (w.kind, w.warm_until_s) == ("fallback", pytest.approx(keep_s))
    assert ("MB replica: its seconds weigh" in w.reason) == noted


def test_a_larger_replica_is_kept_warm_for_less_long_at_the_same_idle_times() -> None:
    # 40-minute idle periods, one request each: a cold start is worth 9,000 s of a 1536 MB
    # replica, more than the ~2,640 s of keeping one warm; of an 8 GB replica (16/3 of the
    # reference) it is worth 1,688 of its seconds, less: that one goes at Knative's floor.
    # The price the larger replica sees is the reference's over its weight.
    settings = KeepAliveSettings()
    hist = with_requests([2400.0] * 10, 1.0)
    small = LearnedKeepAlive(settings, False, 30.0)
    large = LearnedKeepAlive(settings, False, 30.0, LearnedKeepAlive.ratio_for(settings, 8192.0))
    assert small.decide(hist, 10.0).is_warm(2400.0)
    assert not large.decide(hist, 10.0).is_warm(2400.0)
    assert large.cold_start_price(hist) == pytest.approx(small.cold_start_price(hist) * 1536 / 8192)


def test_the_tuner_reads_the_replicas_memory_from_its_spec() -> None:
    # the same thin history through recommend: the spec's replica memory sets the fallback
    spec = ModelScalerSpec(target_ref_name="m", objective_latency_ms=200.0)
    for memory_mb, keep_s in ((None, 600.0), (768.0, 1200.0)):
        rec, _ = recommend(
            obs_at(30.0, 5), replace(spec, replica_memory_mb=memory_mb), TunerConfig(),
            new_state("m"), 30.0,
        )  # fmt: skip
        assert rec.windows is not None and rec.windows.warm_until_s == pytest.approx(keep_s)


def test_a_keep_alive_past_knatives_retention_is_learned_and_held_with_min_scale() -> None:
    """Idle periods of about two hours, one request each, on a 512 MB replica: a cold start is
    worth 27,000 of its seconds, more than keeping it warm through them, so the keep-alive
    learned runs past Knative's 1 h retention (after the 60 s window). The plan writes the
    longest retention and holds min-scale 1 for the rest, then lets it go. Capped at
    Knative's own retention (``max_keep_alive_s`` 3660), the same history is let go at an hour."""
    idle = [6900.0, 7000.0, 7100.0, 7200.0, 7300.0, 7400.0]
    hist = with_requests(idle, 1.0)

    def keeper(**kw: float) -> LearnedKeepAlive:
        settings = KeepAliveSettings(**kw)  # type: ignore[arg-type]
        return LearnedKeepAlive(settings, False, 30.0, LearnedKeepAlive.ratio_for(settings, 512))

    w = keeper().decide(hist, 10.0)
    assert w.kind == "keep-alive" and w.is_warm(7400.0) and w.warm_until_s > 3660.0, w
    settings = KeepAliveSettings()
    held = plan(w, 0.0, 4000.0, settings, 30.0)
    assert (held.retention_s, held.min_scale) == (3600.0, 1), held
    assert "min-scale 1 held" in held.note
    # the hold ends a stable window and the retention before the window closes
    after = plan(w, 0.0, w.warm_until_s - 3660.0 + 1.0, settings, 30.0)
    assert (after.retention_s, after.min_scale) == (3600.0, 0), after

    capped = keeper(max_keep_alive_s=3660.0).decide(hist, 10.0)
    assert capped.warm_until_s <= 3660.0 and not capped.is_warm(6900.0), capped
