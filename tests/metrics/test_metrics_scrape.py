"""The direct source over real HTTP: queue-proxy exporters on 127.0.0.1, scraped concurrently."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import pytest

from autoscaler.metrics import (
    DirectScrapeSource,
    ReplicaEndpoint,
    RevisionKey,
    RevisionRef,
    ScrapeSettings,
)
from autoscaler.tuner.observation import LATENCY_BUCKETS_MS

ExporterFactory = Callable[..., Awaitable[Any]]

NS = "models"
IRIS, WINE = "iris-00001", "wine-00001"


def revision_ref(namespace: str, revision: str, exporters: Sequence[Any], **kw: Any) -> RevisionRef:
    return RevisionRef(namespace, revision, replicas=tuple(e.endpoint for e in exporters), **kw)


@pytest.fixture
async def source() -> AsyncIterator[DirectScrapeSource]:
    s = DirectScrapeSource(ScrapeSettings(scrape_timeout_s=1.0))
    yield s
    await s.close()


async def test_two_revisions_and_the_concurrency_of_two_500ms_requests(
    exporter: ExporterFactory, source: DirectScrapeSource
) -> None:
    iris = await exporter(NS, IRIS, "iris-p1")
    wine_a, wine_b = await exporter(NS, WINE, "wine-p1"), await exporter(NS, WINE, "wine-p2")
    refs = [
        revision_ref(NS, IRIS, [iris], applied_target=4.0),
        revision_ref(NS, WINE, [wine_a, wine_b]),
    ]
    first = await source.observe(refs, now_s=100.0)
    assert first == {RevisionKey(NS, IRIS): None, RevisionKey(NS, WINE): None}  # baseline
    iris.serve(500, times=2)
    wine_a.serve(20, times=10)
    wine_b.serve(20, times=30)
    got = await source.observe(refs, now_s=101.0)
    iris_obs, wine_obs = got[RevisionKey(NS, IRIS)], got[RevisionKey(NS, WINE)]
    assert iris_obs is not None and wine_obs is not None
    assert iris_obs.avg_concurrency_per_replica == pytest.approx(1.0)
    assert (iris_obs.request_count, iris_obs.ready_replicas, iris_obs.applied_target) == (2, 1, 4.0)
    assert (wine_obs.request_count, wine_obs.ready_replicas) == (40, 2)
    assert wine_obs.latency_counts[LATENCY_BUCKETS_MS.index(20)] == 40.0
    assert wine_obs.avg_concurrency_per_replica == pytest.approx(40 * 0.02 / 1.0 / 2)


async def test_counter_reset_when_a_replica_restarts(
    exporter: ExporterFactory, source: DirectScrapeSource
) -> None:
    pod = await exporter(NS, IRIS, "p1")
    refs = [revision_ref(NS, IRIS, [pod])]
    pod.serve(10, times=5)
    await source.observe(refs, 0.0)
    pod.restart()
    pod.serve(300, times=2)
    obs = (await source.observe(refs, 2.0))[RevisionKey(NS, IRIS)]
    assert obs is not None
    assert obs.request_count == 2
    assert obs.latency_counts[LATENCY_BUCKETS_MS.index(300)] == 2.0
    assert obs.avg_concurrency_per_replica == pytest.approx(0.6 / 2.0)


async def test_vanished_pod_is_dropped_and_new_pod_counts_from_zero(
    exporter: ExporterFactory, source: DirectScrapeSource
) -> None:
    old, new = await exporter(NS, IRIS, "old"), await exporter(NS, IRIS, "new")
    new.serve(1000, times=3)  # served after it started, before its first scrape
    await source.observe([revision_ref(NS, IRIS, [old])], 0.0)
    obs = (await source.observe([revision_ref(NS, IRIS, [new])], 3.0))[RevisionKey(NS, IRIS)]
    assert obs is not None
    assert (obs.ready_replicas, obs.request_count) == (1, 3)
    assert obs.avg_concurrency_per_replica == pytest.approx(1.0)


async def test_one_pod_down_does_not_sink_the_others(
    exporter: ExporterFactory, source: DirectScrapeSource
) -> None:
    up, down = await exporter(NS, IRIS, "up"), await exporter(NS, IRIS, "down")
    refs = [revision_ref(NS, IRIS, [up, down])]
    await source.observe(refs, 0.0)
    await down.stop()
    up.serve(250, times=4)
    obs = (await source.observe(refs, 1.0))[RevisionKey(NS, IRIS)]
    assert obs is not None
    assert (obs.ready_replicas, obs.request_count) == (1, 4)
    assert "1 did not answer" in source.last_reasons[RevisionKey(NS, IRIS)]


async def test_all_pods_down_is_no_data_with_a_reason(
    exporter: ExporterFactory, source: DirectScrapeSource
) -> None:
    pod = await exporter(NS, IRIS, "p1")
    refs = [revision_ref(NS, IRIS, [pod])]
    await source.observe(refs, 0.0)
    await pod.stop()
    assert (await source.observe(refs, 1.0)) == {RevisionKey(NS, IRIS): None}
    assert "none of the 1 replicas answered" in source.last_reasons[RevisionKey(NS, IRIS)]


async def test_a_replica_answering_404_counts_as_not_answering(
    exporter: ExporterFactory, source: DirectScrapeSource
) -> None:
    pod = await exporter(NS, IRIS, "p1")
    wrong = RevisionRef(
        NS, IRIS, replicas=(ReplicaEndpoint("p1", (pod.url.replace("/metrics", "/nope"),)),)
    )
    await source.observe([wrong], 0.0)
    assert (await source.observe([wrong], 1.0)) == {RevisionKey(NS, IRIS): None}


async def test_unreachable_replicas_are_scraped_concurrently_within_the_timeout(
    exporter: ExporterFactory, source: DirectScrapeSource
) -> None:
    pods = [await exporter(NS, IRIS, f"p{i}") for i in range(6)]
    refs = [revision_ref(NS, IRIS, pods)]
    await source.observe(refs, 0.0)
    for p in pods[:5]:
        await p.stop()
    pods[5].serve(100)
    started = time.monotonic()
    obs = (await source.observe(refs, 1.0))[RevisionKey(NS, IRIS)]
    assert time.monotonic() - started < 1.0  # refused connections fail at once, in parallel
    assert obs is not None and obs.request_count == 1


async def test_samples_between_ticks_give_a_time_weighted_concurrency(
    exporter: ExporterFactory, source: DirectScrapeSource
) -> None:
    # one replica holds 3 requests until a second is ready at 14 s; then each holds 1.5, and
    # from 22 s none: they finished, 45 s of request time by _sum at the tick
    a, b = await exporter(NS, IRIS, "p1"), await exporter(NS, IRIS, "p2")
    a.serve(100)
    a.set_gauges(concurrency=3.0, requests_per_second=0.0)
    await source.observe([revision_ref(NS, IRIS, [a])], 0.0)
    assert source.sample_period_s == 2.0  # the default
    for t in range(2, 30, 2):
        listed = [a] if t < 14 else [a, b]  # the replicas as listed at the round
        for pod in listed:
            pod.set_gauges(
                concurrency=(3.0 if t < 14 else 1.5 if t < 22 else 0.0), requests_per_second=0.0
            )
        await source.sample([revision_ref(NS, IRIS, listed)], float(t))
    a.serve(15_000, times=3)
    b.serve(100)
    refs = [revision_ref(NS, IRIS, [a, b])]
    obs = (await source.observe(refs, 30.0))[RevisionKey(NS, IRIS)]
    assert obs is not None and obs.request_count == 4 and obs.ready_replicas == 2
    # request time over replica time: 6 rounds of 1 x 3, 4 of 2 x 1.5, the rest at zero
    pod_samples = 6 + 8 * 2 + 2  # the tick's scrape of both
    assert obs.avg_concurrency_per_replica == pytest.approx((6 * 3 + 4 * 3) / pod_samples)
    assert not obs.concurrency_from_completions
    assert "from 15 samples" in source.last_reasons[RevisionKey(NS, IRIS)]


async def test_sampling_with_no_tick_yet_or_a_replica_down_is_harmless(
    exporter: ExporterFactory, source: DirectScrapeSource
) -> None:
    a, b = await exporter(NS, IRIS, "p1"), await exporter(NS, IRIS, "p2")
    refs = [revision_ref(NS, IRIS, [a, b])]
    await source.sample(refs, -1.0)  # nothing observed yet: no interval to sample
    for pod in (a, b):
        pod.serve(100)
        pod.set_gauges(concurrency=1.0, requests_per_second=0.0)
    await source.observe(refs, 0.0)
    await b.stop()
    for t in range(2, 12, 2):
        await source.sample(refs, float(t))
    a.serve(100, times=20)
    obs = (await source.observe(refs, 12.0))[RevisionKey(NS, IRIS)]
    assert obs is not None and obs.ready_replicas == 1  # p2 did not answer
    assert obs.avg_concurrency_per_replica == pytest.approx(1.0)  # not 2 s / 12 s from _sum
    assert not obs.concurrency_from_completions
    assert "from 6 samples" in source.last_reasons[RevisionKey(NS, IRIS)]


async def test_a_sampling_round_reads_only_the_gauge_urls(
    exporter: ExporterFactory, source: DirectScrapeSource
) -> None:
    # a queue-proxy of Knative <= 1.18: gauges on one port (9090), request metrics on another
    # (here an exporter of another revision stands for it: nothing in it is this revision's)
    gauges, other = await exporter(NS, IRIS, "p1"), await exporter(NS, WINE, "x")
    pod = ReplicaEndpoint("p1", (gauges.url, other.url), gauge_urls=(gauges.url,))
    refs = [RevisionRef(NS, IRIS, replicas=(pod,))]
    gauges.serve(100)
    gauges.set_gauges(concurrency=2.0, requests_per_second=0.0)
    await source.observe(refs, 0.0)
    await other.stop()  # the request metrics' port is down between the ticks
    for t in range(2, 30, 2):
        await source.sample(refs, float(t))
    await other.start()
    gauges.set_gauges(concurrency=0.0, requests_per_second=0.0)
    obs = (await source.observe(refs, 30.0))[RevisionKey(NS, IRIS)]
    assert obs is not None and obs.ready_replicas == 1
    # 14 rounds at 2 and the tick's 0 (a round reading every URL would have found none)
    assert obs.avg_concurrency_per_replica == pytest.approx(14 * 2.0 / 15)
    assert not obs.concurrency_from_completions
    with pytest.raises(ValueError, match="gauge_urls must be among urls"):
        ReplicaEndpoint("p1", (gauges.url,), gauge_urls=(other.url,))
