"""The direct scrape's pure part: queue-proxy text to samples, and scrapes to interval figures.

Timelines of ticks with ``now_s`` passed in; the exporter's text is read without HTTP.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import pytest

from autoscaler.metrics import (
    KNATIVE_OPENCENSUS,
    KNATIVE_OPENTELEMETRY,
    ReplicaEndpoint,
    RevisionRef,
)
from autoscaler.metrics.exposition import ReplicaSample, parse_replica_text
from autoscaler.metrics.ledger import ScrapeLedger
from autoscaler.metrics.names import MetricNames
from autoscaler.tuner.observation import LATENCY_BUCKETS_MS

NS, REV = "models", "iris-00001"
Make = Callable[..., Any]


def ref(*pods: str, **kw: Any) -> RevisionRef:
    return RevisionRef(
        NS, REV, replicas=tuple(ReplicaEndpoint(p, (f"http://{p}/metrics",)) for p in pods), **kw
    )


def sample(exporter: Any, names: MetricNames = KNATIVE_OPENCENSUS) -> ReplicaSample:
    return parse_replica_text([exporter.text()], names, NS, REV)


def bucket(ms: float) -> int:
    return LATENCY_BUCKETS_MS.index(ms)


def test_two_500ms_requests_in_one_second_are_concurrency_one(make_exporter: Make) -> None:
    pod = make_exporter(NS, REV, "p1")
    ledger = ScrapeLedger()
    first = ledger.record(ref("p1"), {"p1": sample(pod)}, now_s=10.0)
    assert first.observation is None and "baseline" in first.reason
    pod.serve(500, times=2)
    obs = ledger.record(
        ref("p1", applied_target=5.0, container_concurrency=4), {"p1": sample(pod)}, now_s=11.0
    ).observation
    assert obs is not None
    assert obs.container_concurrency == 4  # the revision's, for the tuner
    assert obs.avg_concurrency_per_replica == pytest.approx(1.0)
    assert (obs.t_s, obs.interval_s, obs.ready_replicas, obs.request_count) == (11.0, 1.0, 1, 2)
    assert obs.latency_counts[bucket(500)] == 2.0 and sum(obs.latency_counts) == 2.0
    assert obs.latency_sum_ms == pytest.approx(1000.0)
    assert obs.applied_target == 5.0
    assert obs.concurrency_from_completions  # Little's law on the histogram's _sum
    assert obs.sum_matches_counts and obs.exact_sum_ms == obs.latency_sum_ms  # Knative's buckets


def test_a_sum_over_re_bucketed_counts_bounds_no_percentile(make_exporter: Make) -> None:
    # OpenTelemetry's bounds (75 ms, 250 ms, ...) are spread onto Knative's: the counts are
    # estimates, so the sum may not bound a percentile in them
    pod = make_exporter(NS, REV, "p1", flavor="opentelemetry")
    ledger = ScrapeLedger()
    ledger.record(ref("p1"), {"p1": sample(pod, KNATIVE_OPENTELEMETRY)}, 10.0)
    pod.serve(100, times=2)
    obs = ledger.record(ref("p1"), {"p1": sample(pod, KNATIVE_OPENTELEMETRY)}, 11.0).observation
    assert obs is not None and obs.latency_sum_ms == pytest.approx(200.0)
    assert not obs.sum_matches_counts and obs.exact_sum_ms is None


def test_requests_beyond_the_last_bucket_keep_their_length_in_the_sum(make_exporter: Make) -> None:
    pod = make_exporter(NS, REV, "p1")
    ledger = ScrapeLedger()
    ledger.record(ref("p1"), {"p1": sample(pod)}, 0.0)
    pod.serve(300_000, times=2)  # 5 minutes each: past Knative's last bound (100 s)
    obs = ledger.record(ref("p1"), {"p1": sample(pod)}, 600.0).observation
    assert obs is not None
    assert obs.latency_counts[-1] == 2.0
    assert obs.tail_sum_ms == pytest.approx(600_000.0)


def test_interval_counts_only_what_happened_since_the_previous_scrape(make_exporter: Make) -> None:
    pod = make_exporter(NS, REV, "p1")
    pod.serve(5000, times=10)  # before the baseline: not counted
    ledger = ScrapeLedger()
    ledger.record(ref("p1"), {"p1": sample(pod)}, 0.0)
    pod.serve(100, times=3)
    pod.serve(100, code=503)
    obs = ledger.record(ref("p1"), {"p1": sample(pod)}, 2.0).observation
    assert obs is not None
    assert obs.request_count == 4  # every response code
    assert obs.latency_counts[bucket(100)] == 4.0 and sum(obs.latency_counts) == 4.0
    assert obs.avg_concurrency_per_replica == pytest.approx(0.4 / 2.0)


@pytest.mark.parametrize(
    "restart_load",
    [
        pytest.param(1, id="fewer-requests-after-restart"),
        pytest.param(50, id="more-requests-after-restart"),
    ],
)
def test_counter_reset_counts_from_zero(make_exporter: Make, restart_load: int) -> None:
    pod = make_exporter(NS, REV, "p1")
    ledger = ScrapeLedger()
    pod.serve(10, times=20)
    ledger.record(ref("p1"), {"p1": sample(pod)}, 0.0)
    pod.restart()
    pod.serve(200, times=restart_load)
    obs = ledger.record(ref("p1"), {"p1": sample(pod)}, 10.0).observation
    assert obs is not None
    assert obs.request_count == restart_load
    assert obs.latency_counts[bucket(200)] == restart_load
    assert obs.avg_concurrency_per_replica == pytest.approx(restart_load * 0.2 / 10.0)


def test_new_pod_counts_from_zero_and_vanished_pod_is_dropped(make_exporter: Make) -> None:
    p1, p2 = make_exporter(NS, REV, "p1"), make_exporter(NS, REV, "p2")
    ledger = ScrapeLedger()
    ledger.record(ref("p1"), {"p1": sample(p1)}, 0.0)
    p1.serve(1000, times=2)
    p2.serve(1000, times=4)  # started within the interval
    obs = ledger.record(ref("p1", "p2"), {"p1": sample(p1), "p2": sample(p2)}, 4.0).observation
    assert obs is not None
    assert (obs.ready_replicas, obs.request_count) == (2, 6)
    # p1: 2 s of requests over 4 s = 0.5; p2: 4 s over 4 s = 1.0; mean 0.75.
    assert obs.avg_concurrency_per_replica == pytest.approx(0.75)
    p1.serve(1000)  # p2 is gone: only p1 counts
    obs = ledger.record(ref("p1"), {"p1": sample(p1)}, 8.0).observation
    assert obs is not None
    assert (obs.ready_replicas, obs.request_count) == (1, 1)
    assert obs.avg_concurrency_per_replica == pytest.approx(0.25)


def test_pod_that_misses_a_tick_is_counted_late_not_lost(make_exporter: Make) -> None:
    p1, p2 = make_exporter(NS, REV, "p1"), make_exporter(NS, REV, "p2")
    ledger = ScrapeLedger()
    both = ref("p1", "p2")
    ledger.record(both, {"p1": sample(p1), "p2": sample(p2)}, 0.0)
    p1.serve(500, times=2)
    p2.serve(500, times=4)
    result = ledger.record(both, {"p1": sample(p1), "p2": None}, 1.0)
    assert result.observation is not None and "1 did not answer" in result.reason
    assert (result.observation.ready_replicas, result.observation.request_count) == (1, 2)
    assert result.observation.avg_concurrency_per_replica == pytest.approx(1.0)
    obs = ledger.record(both, {"p1": sample(p1), "p2": sample(p2)}, 2.0).observation
    assert obs is not None
    assert obs.request_count == 4  # p2's four requests, over its 2 s span: concurrency 1.0
    assert obs.avg_concurrency_per_replica == pytest.approx((0.0 + 1.0) / 2)


def test_no_replica_answering_is_no_data_and_keeps_the_baseline(make_exporter: Make) -> None:
    pod = make_exporter(NS, REV, "p1")
    ledger = ScrapeLedger()
    ledger.record(ref("p1"), {"p1": sample(pod)}, 0.0)
    pod.serve(1000, times=3)
    down = ledger.record(ref("p1"), {"p1": None}, 1.0)
    assert down.observation is None and "none of the 1 replicas answered" in down.reason
    obs = ledger.record(ref("p1"), {"p1": sample(pod)}, 3.0).observation
    assert obs is not None
    assert (obs.interval_s, obs.request_count) == (3.0, 3)
    assert obs.avg_concurrency_per_replica == pytest.approx(1.0)


def test_pod_without_histogram_falls_back_to_the_gauges(make_exporter: Make) -> None:
    pod = make_exporter(NS, REV, "p1")  # no request yet: no labelled histogram series
    ledger = ScrapeLedger()
    ledger.record(ref("p1"), {"p1": sample(pod)}, 0.0)
    pod.set_gauges(concurrency=2.5, requests_per_second=4.0)
    obs = ledger.record(ref("p1"), {"p1": sample(pod)}, 2.0).observation
    assert obs is not None
    assert obs.avg_concurrency_per_replica == pytest.approx(2.5)
    assert obs.request_count == 8
    assert not obs.concurrency_from_completions  # the gauge is time-weighted


def test_requests_in_flight_at_both_ends_with_none_finished_are_its_concurrency(
    make_exporter: Make,
) -> None:
    # Long requests: none finishes within a tick, so the histogram's _sum does not move; the
    # requests in flight at the previous scrape still are, so they were all through it.
    busy, quiet = make_exporter(NS, REV, "p1"), make_exporter(NS, REV, "p2")
    busy.serve(100)  # served before: its histogram series exist
    quiet.serve(100)
    ledger = ScrapeLedger()
    busy.set_gauges(concurrency=3.0, requests_per_second=0.0)
    both = ref("p1", "p2")
    ledger.record(both, {"p1": sample(busy), "p2": sample(quiet)}, 0.0)
    busy.set_gauges(concurrency=2.0, requests_per_second=0.0)  # the lower end is taken
    result = ledger.record(both, {"p1": sample(busy), "p2": sample(quiet)}, 30.0)
    obs = result.observation
    assert obs is not None
    assert (obs.request_count, obs.ready_replicas) == (0, 2)
    assert obs.avg_concurrency_per_replica == pytest.approx(1.0)  # 2 in flight over 2 pods
    assert "2 in flight at both ends with none finished" in result.reason
    assert not obs.concurrency_from_completions  # the gauge's figure, not the request time

    # one finished: the interval's figure is its _sum again, whatever the gauges say
    busy.serve(20_000)
    obs = ledger.record(both, {"p1": sample(busy), "p2": sample(quiet)}, 60.0).observation
    assert obs is not None
    assert obs.request_count == 1
    assert obs.avg_concurrency_per_replica == pytest.approx(20.0 / 30.0 / 2)


def test_requests_in_flight_only_at_the_end_are_not_held(make_exporter: Make) -> None:
    pod = make_exporter(NS, REV, "p1")
    pod.serve(100)
    ledger = ScrapeLedger()
    ledger.record(ref("p1"), {"p1": sample(pod)}, 0.0)
    # 4 in flight now, none at the previous scrape: they came within the interval, for how
    # long is unknown
    pod.set_gauges(concurrency=4.0, requests_per_second=0.0)
    result = ledger.record(ref("p1"), {"p1": sample(pod)}, 30.0)
    assert result.observation is not None
    assert result.observation.request_count == 0
    assert result.observation.avg_concurrency_per_replica == 0.0
    assert "in flight" not in result.reason
    # the next interval they are in flight at both ends
    result = ledger.record(ref("p1"), {"p1": sample(pod)}, 60.0)
    assert result.observation is not None
    assert result.observation.avg_concurrency_per_replica == pytest.approx(4.0)


def sampled_round(
    ledger: ScrapeLedger, pods: dict[str, Any], gauges: dict[str, float | None], t_s: float
) -> None:
    """One sampling round between ticks at ``t_s`` with these gauges, of the pods listed then
    (those in ``gauges``; None: listed, did not answer)."""
    for pod, value in gauges.items():
        if value is not None:
            pods[pod].set_gauges(concurrency=value, requests_per_second=0.0)
    answers = {p: sample(pods[p]) if v is not None else None for p, v in gauges.items()}
    ledger.sample(ref(*pods).key, answers, t_s)


def test_sampled_gauges_make_a_long_request_count_where_it_lived(make_exporter: Make) -> None:
    # A 50 s request begun 20 s into a 30 s tick: from completions it would count 50 s / 30 s
    # in the next interval and nothing in this one. Sampled every 2 s (the gauge: each last
    # second's average), it counts where it lived.
    pod = make_exporter(NS, REV, "p1")
    pod.serve(100)
    pods = {"p1": pod}
    ledger = ScrapeLedger()
    pod.set_gauges(concurrency=0.0, requests_per_second=0.0)
    ledger.record(ref("p1"), {"p1": sample(pod)}, 0.0)
    for t in range(2, 30, 2):  # 14 rounds: in flight from t = 20
        sampled_round(ledger, pods, {"p1": 1.0 if t > 20 else 0.0}, t)
    pod.set_gauges(concurrency=1.0, requests_per_second=0.0)
    result = ledger.record(ref("p1"), {"p1": sample(pod)}, 30.0)
    obs = result.observation
    assert obs is not None and obs.request_count == 0
    assert obs.avg_concurrency_per_replica == pytest.approx(5 / 15)  # 4 rounds + the tick's
    assert not obs.concurrency_from_completions and obs.in_flight_known
    assert "from 15 samples" in result.reason

    # the next interval it finishes at 40 s: _sum grows by 50 s, the samples say 10 s of it
    for t in range(32, 60, 2):
        sampled_round(ledger, pods, {"p1": 1.0 if t <= 40 else 0.0}, t)
    pod.serve(50_000)
    pod.set_gauges(concurrency=0.0, requests_per_second=0.0)
    obs = ledger.record(ref("p1"), {"p1": sample(pod)}, 60.0).observation
    assert obs is not None and obs.request_count == 1
    assert obs.avg_concurrency_per_replica == pytest.approx(5 / 15)  # not 50 / 30
    assert not obs.concurrency_from_completions
    assert obs.latency_sum_ms == pytest.approx(50_000.0)  # the latency itself is unchanged


def test_after_a_scale_up_the_concurrency_is_request_time_over_replica_time(
    make_exporter: Make,
) -> None:
    # p1 alone holds 4 until p2 is ready at 16 s; from then on both hold 2: per replica 4
    # for 16 s, then 2. The rounds count the pods listed at each.
    old, new = make_exporter(NS, REV, "p1"), make_exporter(NS, REV, "p2")
    old.serve(100)
    ledger = ScrapeLedger()
    old.set_gauges(concurrency=4.0, requests_per_second=0.0)
    ledger.record(ref("p1"), {"p1": sample(old)}, 0.0)
    pods = {"p1": old, "p2": new}
    for t in range(2, 30, 2):
        sampled_round(ledger, pods, {"p1": 2.0, "p2": 2.0} if t >= 16 else {"p1": 4.0}, t)
    old.serve(100)
    new.serve(100)
    obs = ledger.record(ref("p1", "p2"), {"p1": sample(old), "p2": sample(new)}, 30.0).observation
    assert obs is not None and obs.ready_replicas == 2
    # 7 rounds of p1 at 4, then 7 rounds and the tick's scrape of both at 2
    assert obs.avg_concurrency_per_replica == pytest.approx((7 * 4 + 8 * 4) / (7 + 8 * 2))
    assert not obs.concurrency_from_completions


def test_a_pod_that_does_not_answer_a_round_is_not_counted_in_it(make_exporter: Make) -> None:
    a, b = make_exporter(NS, REV, "p1"), make_exporter(NS, REV, "p2")
    for pod in (a, b):
        pod.serve(100)
        pod.set_gauges(concurrency=3.0, requests_per_second=0.0)
    both = ref("p1", "p2")
    ledger = ScrapeLedger()
    ledger.record(both, {"p1": sample(a), "p2": sample(b)}, 0.0)
    pods = {"p1": a, "p2": b}
    for t in range(2, 30, 2):  # p2 busy: it answers every other round
        sampled_round(ledger, pods, {"p1": 3.0, "p2": 3.0 if t % 4 else None}, t)
    obs = ledger.record(both, {"p1": sample(a), "p2": sample(b)}, 30.0).observation
    assert obs is not None and obs.avg_concurrency_per_replica == pytest.approx(3.0)


@pytest.mark.parametrize(
    "case",
    [
        "too few rounds",
        "rounds that do not cover the interval",
        "a pod without the gauge",
        "finished over gauges at zero",
    ],
)
def test_sampled_gauges_fall_back_to_completions(make_exporter: Make, case: str) -> None:
    a, b = make_exporter(NS, REV, "p1"), make_exporter(NS, REV, "p2")
    a.serve(100)
    b.serve(100)
    pods = {"p1": a, "p2": b}
    ledger = ScrapeLedger()
    both = ref("p1", "p2")
    ledger.record(both, {"p1": sample(a), "p2": sample(b)}, 0.0)
    times = {
        "too few rounds": [10, 20],
        # the rounds of a controller that led, stopped leading, and leads again
        "rounds that do not cover the interval": [2, 4, 6, 8],
    }.get(case, list(range(2, 30, 2)))
    for t in times:
        value = 0.0 if case == "finished over gauges at zero" else 1.0
        sampled_round(ledger, pods, {"p1": value, "p2": value}, t)
    a.serve(3_000, times=5)  # 15 s of request time on p1
    at_tick = sample(b)
    if case == "a pod without the gauge":  # a queue-proxy that exports none
        at_tick = dataclasses.replace(at_tick, gauges={})
    obs = ledger.record(both, {"p1": sample(a), "p2": at_tick}, 30.0).observation
    assert obs is not None and obs.request_count == 5
    assert obs.concurrency_from_completions
    assert obs.avg_concurrency_per_replica == pytest.approx(15.0 / 30.0 / 2)


def test_rounds_outside_the_interval_are_not_kept(make_exporter: Make) -> None:
    pod = make_exporter(NS, REV, "p1")
    pod.serve(100)
    pods = {"p1": pod}
    ledger = ScrapeLedger()
    sampled_round(ledger, pods, {"p1": 9.0}, -5.0)  # no baseline yet: no interval to sample
    pod.set_gauges(concurrency=0.0, requests_per_second=0.0)
    ledger.record(ref("p1"), {"p1": sample(pod)}, 0.0)
    sampled_round(ledger, pods, {"p1": 9.0}, 0.0)  # not after the tick: belongs to none
    for t in range(2, 30, 2):
        sampled_round(ledger, pods, {"p1": 3.0}, t)
    pod.set_gauges(concurrency=3.0, requests_per_second=0.0)
    obs = ledger.record(ref("p1"), {"p1": sample(pod)}, 30.0).observation
    assert obs is not None and obs.avg_concurrency_per_replica == pytest.approx(3.0)
    # the tick took the rounds: the next interval starts with none (too few: the gauges at
    # both ends, as without sampling)
    sampled_round(ledger, pods, {"p1": 9.0}, 40.0)
    obs = ledger.record(ref("p1"), {"p1": sample(pod)}, 60.0).observation
    assert obs is not None and obs.avg_concurrency_per_replica == pytest.approx(3.0)


def test_none_finished_and_no_gauge_to_tell_is_in_flight_unknown(make_exporter: Make) -> None:
    pod = make_exporter(NS, REV, "p1")
    pod.serve(100)
    ledger = ScrapeLedger()
    no_gauge = ReplicaSample(latency_le_ms={100.0: 1.0}, latency_sum_ms=100.0, latency_count=1)
    ledger.record(ref("p1"), {"p1": no_gauge}, 0.0)
    result = ledger.record(ref("p1"), {"p1": no_gauge}, 30.0)
    assert result.observation is not None and not result.observation.in_flight_known
    assert "none finished and no queue_average_concurrent_requests" in result.reason
    # a replica listed at the previous tick that did not answer then tells nothing of what
    # was in flight throughout; one not listed then started in the interval and does
    late = make_exporter(NS, REV, "p9")  # no request yet: its gauges only
    two = ref("p1", "p9")
    ledger.record(two, {"p1": no_gauge, "p9": None}, 31.0)
    result = ledger.record(two, {"p1": no_gauge, "p9": sample(late)}, 32.0)
    assert result.observation is not None and not result.observation.in_flight_known
    fresh = ScrapeLedger()
    fresh.record(ref("p1"), {"p1": no_gauge}, 0.0)
    result = fresh.record(ref("p1", "p9"), {"p1": no_gauge, "p9": sample(late)}, 30.0)
    assert result.observation is not None and result.observation.in_flight_known
    # restarted since: whatever it held was dropped, nothing was in flight throughout
    pod.restart()
    result = ledger.record(ref("p1"), {"p1": sample(pod)}, 45.0)
    assert result.observation is not None and result.observation.in_flight_known
    # the gauge at both ends, at 0: known, none in flight
    ledger.record(ref("p1"), {"p1": sample(pod)}, 60.0)
    result = ledger.record(ref("p1"), {"p1": sample(pod)}, 90.0)
    assert result.observation is not None and result.observation.in_flight_known
    assert result.observation.avg_concurrency_per_replica == 0.0


def test_revision_at_zero_is_an_idle_observation() -> None:
    ledger = ScrapeLedger()
    assert ledger.record(ref(), {}, 0.0).observation is None
    obs = ledger.record(ref(), {}, 30.0).observation
    assert obs is not None
    assert (obs.ready_replicas, obs.request_count, obs.avg_concurrency_per_replica) == (0, 0, 0.0)


def test_same_time_twice_is_no_data(make_exporter: Make) -> None:
    pod = make_exporter(NS, REV, "p1")
    ledger = ScrapeLedger()
    ledger.record(ref("p1"), {"p1": sample(pod)}, 5.0)
    assert ledger.record(ref("p1"), {"p1": sample(pod)}, 5.0).observation is None


def test_parse_ignores_other_revisions_and_reads_gauges(make_exporter: Make) -> None:
    mine, other = make_exporter(NS, REV, "p1"), make_exporter(NS, "iris-00002", "p9")
    mine.serve(40)
    other.serve(40, times=5)
    other.set_gauges(9.0, 9.0)
    mine.set_gauges(1.5, 3.0)
    s = parse_replica_text([mine.text(), other.text()], KNATIVE_OPENCENSUS, NS, REV)
    assert (s.requests, s.latency_count, s.latency_sum_ms) == (1.0, 1.0, 40.0)
    assert s.latency_le_ms[40.0] == 1.0 and s.latency_le_ms[20.0] == 0.0
    assert s.gauges["queue_average_concurrent_requests"] == 1.5
    assert s.created_s is not None


def test_parse_opentelemetry_seconds_into_ms(make_exporter: Make) -> None:
    pod = make_exporter(NS, REV, "p1", flavor="opentelemetry")
    pod.serve(100, times=2)
    s = sample(pod, KNATIVE_OPENTELEMETRY)
    assert s.request_count is None and s.requests == 2.0
    assert s.latency_sum_ms == pytest.approx(200.0)
    assert s.latency_le_ms[100.0] == 2.0 and s.latency_le_ms[75.0] == 0.0


def test_parse_rejects_what_is_not_prometheus_text() -> None:
    with pytest.raises(ValueError):
        parse_replica_text(
            ['revision_app_request_latencies_sum{le="5" 1'], KNATIVE_OPENCENSUS, NS, REV
        )


def counted(requests: float, **gauges: float) -> ReplicaSample:
    return ReplicaSample(request_count=requests, gauges=dict(gauges))


@pytest.mark.parametrize(
    ("before", "after", "expected_requests"),
    [
        pytest.param(
            counted(5, process_uptime=100), counted(8, process_uptime=130), 3, id="same-process"
        ),
        pytest.param(
            counted(5, process_uptime=100), counted(8, process_uptime=3), 8, id="uptime-went-down"
        ),
        pytest.param(counted(5), counted(2), 2, id="counter-went-down"),
        pytest.param(
            ReplicaSample(request_count=5, created_s=1000.0),
            ReplicaSample(request_count=9, created_s=1200.0),
            9,
            id="created-moved-forward",
        ),
    ],
)
def test_restart_detection(
    before: ReplicaSample, after: ReplicaSample, expected_requests: int
) -> None:
    ledger = ScrapeLedger()
    ledger.record(ref("p1"), {"p1": before}, 0.0)
    obs = ledger.record(ref("p1"), {"p1": after}, 1.0).observation
    assert obs is not None and obs.request_count == expected_requests


def test_a_tick_that_raises_changes_nothing() -> None:
    # figures no observation can hold (the ledger is given them unchecked): the tick raises and
    # the baselines stay, so the next tick counts the whole interval from them
    ledger = ScrapeLedger()
    r = ref("p1")
    ledger.record(r, {"p1": ReplicaSample(request_count=5.0)}, 0.0)
    with pytest.raises(OverflowError):
        ledger.record(r, {"p1": ReplicaSample(request_count=math.inf)}, 30.0)
    result = ledger.record(r, {"p1": ReplicaSample(request_count=25.0)}, 60.0)
    assert result.observation is not None, result.reason
    assert (result.observation.request_count, result.observation.interval_s) == (20, 60.0)


@pytest.mark.parametrize(
    ("then_s", "reason"),
    [
        (20.0, "no time has passed since the previous read of this revision"),
        (
            15.0,
            "no time has passed since the previous read of this revision (the clock went back 5 s)",
        ),
    ],
    ids=["read-twice-in-a-tick", "clock-set-back"],
)
def test_a_read_with_no_time_since_the_previous_says_so_without_epoch_seconds(
    make_exporter: Make, then_s: float, reason: str
) -> None:
    pod = make_exporter(NS, REV, "p1")
    ledger = ScrapeLedger()
    ledger.record(ref("p1"), {"p1": sample(pod)}, now_s=20.0)
    again = ledger.record(ref("p1"), {"p1": sample(pod)}, now_s=then_s)
    assert (again.observation, again.reason) == (None, reason)
