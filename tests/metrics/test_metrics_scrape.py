"""The direct source over real HTTP: queue-proxy exporters on 127.0.0.1, scraped concurrently."""

from __future__ import annotations

import logging
import math
import struct
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import pytest

from autoscaler.metrics import (
    KNATIVE_OPENCENSUS,
    KNATIVE_OPENTELEMETRY,
    DirectScrapeSource,
    ReplicaEndpoint,
    RevisionKey,
    RevisionRef,
    ScrapeSettings,
)
from autoscaler.metrics.exposition import parse_stat_protobuf
from autoscaler.tuner.observation import LATENCY_BUCKETS_MS
from tests.metrics.conftest import encode_stat

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


# -- Knative >= 1.6: the Stat in protobuf on port 9090 ---------------------------------------
@pytest.mark.parametrize(
    ("mode", "flavor"),
    [
        pytest.param("protobuf", "opentelemetry", id="protobuf-only"),  # Knative 1.19 on
        pytest.param("negotiate", "opencensus", id="negotiated"),
    ],
)
async def test_a_queue_proxy_serving_the_stat_in_protobuf(
    exporter: ExporterFactory, mode: str, flavor: str
) -> None:
    # port 9090 serves the autoscaler Stat in protobuf, 9091 the request histogram as text:
    # both count, the Stat's concurrency sampled between the ticks
    names = KNATIVE_OPENTELEMETRY if flavor == "opentelemetry" else KNATIVE_OPENCENSUS
    source = DirectScrapeSource(ScrapeSettings(scrape_timeout_s=1.0), names=names)
    pod = await exporter(NS, IRIS, "p1", flavor=flavor, stat_mode=mode)
    pod.touch()
    refs = [RevisionRef(NS, IRIS, replicas=(pod.cluster_endpoint,))]
    try:
        pod.stat = {"average_concurrent_requests": 2.0, "process_uptime": 100.0}
        await source.observe(refs, 0.0)
        for t in range(2, 30, 2):
            pod.stat = {"average_concurrent_requests": 2.0, "process_uptime": 100.0 + t}
            await source.sample(refs, float(t))
        pod.serve(100, times=5)
        obs = (await source.observe(refs, 30.0))[RevisionKey(NS, IRIS)]
    finally:
        await source.close()
    assert obs is not None, source.last_reasons
    assert (obs.ready_replicas, obs.request_count) == (1, 5)
    assert obs.avg_concurrency_per_replica == pytest.approx(2.0)
    assert not obs.concurrency_from_completions
    assert "from 15 samples" in source.last_reasons[RevisionKey(NS, IRIS)]
    assert len(pod.stat_accepts) == 16
    assert all(a.startswith("application/protobuf") for a in pod.stat_accepts), pod.stat_accepts


@pytest.mark.parametrize(
    "broken",
    [
        pytest.param(encode_stat("p1", average_concurrent_requests=2.0)[:-3], id="truncated"),
        pytest.param(bytes([2 << 3 | 2, 0x7F, 0xFF]), id="length-past-the-end"),
        pytest.param(bytes([4 << 3 | 0, 0x80]), id="double-as-varint"),
        pytest.param(b"not a metric at all", id="garbage"),
        pytest.param(None, id="not-found"),
    ],
)
async def test_a_gauge_url_failing_leaves_out_only_the_gauges(
    exporter: ExporterFactory,
    source: DirectScrapeSource,
    caplog: pytest.LogCaptureFixture,
    broken: bytes | None,
) -> None:
    # a malformed Stat or an error on port 9090: that replica's gauges are missing, its request
    # histogram on 9091 still counts; said once in the log, not at every sampling round
    pod = await exporter(NS, IRIS, "p1")
    pod.touch()
    replica = pod.cluster_endpoint
    if broken is None:
        gauges = pod.url.replace("/metrics", "/nope")
        replica = ReplicaEndpoint("p1", (gauges, pod.url), gauge_urls=(gauges,))
    else:
        pod.stat_body = broken
    refs = [RevisionRef(NS, IRIS, replicas=(replica,))]
    caplog.set_level(logging.DEBUG, logger="autoscaler.metrics.scrape")
    await source.observe(refs, 0.0)
    for t in range(2, 12, 2):
        await source.sample(refs, float(t))
    pod.serve(200, times=4)
    obs = (await source.observe(refs, 12.0))[RevisionKey(NS, IRIS)]
    assert obs is not None, source.last_reasons
    assert (obs.ready_replicas, obs.request_count) == (1, 4)
    assert obs.avg_concurrency_per_replica == pytest.approx(0.8 / 12.0)  # from completions
    assert obs.concurrency_from_completions
    assert "did not answer" not in source.last_reasons[RevisionKey(NS, IRIS)]
    said = [r for r in caplog.records if r.name == "autoscaler.metrics.scrape"]
    loud = [r for r in said if r.levelno >= logging.INFO]
    assert len(loud) == 1 and "gauges left out" in loud[0].getMessage(), loud
    assert len(said) == 7  # the two ticks and five rounds: once loud, then at DEBUG
    # answering again, the gauges are back (and a later failure is said again)
    pod.stat_body = None
    pod.stat = {"average_concurrent_requests": 1.0}
    if broken is not None:
        await source.sample(refs, 14.0)
        obs = (await source.observe(refs, 16.0))[RevisionKey(NS, IRIS)]
        assert obs is not None and obs.in_flight_known


def test_the_stat_wire_format() -> None:
    stat = encode_stat(
        "p1", average_concurrent_requests=1.5, request_count=3.0, process_uptime=12.25
    )
    assert parse_stat_protobuf(stat) == {
        "queue_average_concurrent_requests": 1.5,
        "queue_average_proxied_concurrent_requests": 0.0,  # proto3: absent is zero
        "queue_requests_per_second": 3.0,
        "queue_proxied_operations_per_second": 0.0,
        "process_uptime": 12.25,
    }
    # fields it does not know, of every wire type, are skipped; a field seen twice: the last
    unknown = (
        bytes([7 << 3 | 0, 0x96, 0x01])  # varint
        + bytes([8 << 3 | 1]) + struct.pack("<d", 9.0)  # 64-bit
        + bytes([9 << 3 | 2, 2]) + b"xy"  # length-delimited
        + bytes([10 << 3 | 5]) + b"\0\0\0\0"  # 32-bit
        + bytes([2 << 3 | 1]) + struct.pack("<d", 4.0)
    )  # fmt: skip
    assert parse_stat_protobuf(stat + unknown)["queue_average_concurrent_requests"] == 4.0
    assert parse_stat_protobuf(b"")["process_uptime"] == 0.0
    for broken in (
        stat[:-1],  # a double cut short
        bytes([0x80]),  # a key cut short
        bytes([1 << 3 | 2, 5]) + b"ab",  # a string past the end
        bytes([2 << 3 | 2, 0]),  # a double as length-delimited
        bytes([1 << 3 | 1]) + bytes(8),  # the pod's name as a double
        bytes([0 << 3 | 1]) + bytes(8),  # field number 0
        bytes([11 << 3 | 3]),  # a group
        bytes([0xFF] * 11),  # a varint too long
    ):
        with pytest.raises(ValueError):
            parse_stat_protobuf(broken)


# -- values no count or gauge can hold ---------------------------------------------------------
@pytest.mark.parametrize(
    "poison",
    ["counter +Inf", "histogram NaN", "histogram huge", "gauge NaN", "gauge -1", "stat NaN"],
)
async def test_a_replica_exporting_nan_or_inf_sinks_neither_its_revision_nor_the_others(
    exporter: ExporterFactory, poison: str
) -> None:
    # Prometheus text allows NaN and ±Inf: in a replica's request metrics they make its scrape
    # unusable (that replica did not answer), in a gauge they leave the gauge out; the other
    # revision is observed as ever
    flavor = "opentelemetry" if poison == "histogram huge" else "opencensus"
    names = KNATIVE_OPENTELEMETRY if flavor == "opentelemetry" else KNATIVE_OPENCENSUS
    source = DirectScrapeSource(ScrapeSettings(scrape_timeout_s=1.0), names=names)
    good = await exporter(NS, IRIS, "good", flavor=flavor)
    bad = await exporter(NS, WINE, "bad", flavor=flavor)
    gauges = poison.startswith("gauge")  # a pod with no histogram: its gauges tell all
    if gauges:
        bad.set_gauges(concurrency=1.0, requests_per_second=2.0)
    else:
        bad.touch()
    replica = bad.cluster_endpoint if poison.startswith("stat") else bad.endpoint
    refs = [revision_ref(NS, IRIS, [good]), RevisionRef(NS, WINE, replicas=(replica,))]
    bad.stat = {"average_concurrent_requests": 1.0}
    try:
        await source.observe(refs, 0.0)
        good.serve(100, times=3)
        match poison:
            case "counter +Inf":
                bad.count_more(math.inf)
            case "histogram NaN":
                bad.serve(math.nan)
            case "histogram huge":  # finite in seconds, but not in milliseconds
                bad.serve(1e306 * 1000)
            case "gauge NaN":
                bad.set_gauges(concurrency=math.nan, requests_per_second=2.0)
            case "gauge -1":
                bad.set_gauges(concurrency=-1.0, requests_per_second=2.0)
            case "stat NaN":
                bad.stat = {"average_concurrent_requests": math.nan}
        got = await source.observe(refs, 10.0)
    finally:
        await source.close()
    iris = got[RevisionKey(NS, IRIS)]
    assert iris is not None and iris.request_count == 3
    wine = got[RevisionKey(NS, WINE)]
    if poison.startswith(("counter", "histogram")):
        assert wine is None
        assert "none of the 1 replicas answered" in source.last_reasons[RevisionKey(NS, WINE)]
    else:  # the gauge is left out (the Stat's: the text's, at 0, stands)
        assert wine is not None, source.last_reasons
        assert wine.ready_replicas == 1 and wine.avg_concurrency_per_replica == 0.0
        if gauges:
            assert wine.request_count == 20  # from the requests-per-second gauge


async def test_a_tick_with_unusable_counts_is_counted_at_the_next(
    exporter: ExporterFactory, source: DirectScrapeSource
) -> None:
    # the failed tick advances nothing: the replica's requests of that interval are counted
    # when it next exports usable figures
    pod = await exporter(NS, IRIS, "p1")
    refs = [revision_ref(NS, IRIS, [pod])]
    line = 'revision_app_request_count{{namespace_name="models",revision_name="iris-00001"}} {}\n'
    pod.text_body = line.format(5)
    await source.observe(refs, 0.0)
    pod.text_body = line.format("+Inf")
    assert (await source.observe(refs, 30.0)) == {RevisionKey(NS, IRIS): None}
    pod.text_body = line.format(25)
    obs = (await source.observe(refs, 60.0))[RevisionKey(NS, IRIS)]
    assert obs is not None and (obs.request_count, obs.interval_s) == (20, 60.0)


async def test_counts_no_observation_can_hold_fail_only_their_revision(
    exporter: ExporterFactory, source: DirectScrapeSource
) -> None:
    # two replicas each with a finite count whose sum is not: that revision has no data this
    # tick (and the next counts its interval), the other revision is observed
    good = await exporter(NS, IRIS, "good")
    a, b = await exporter(NS, WINE, "a"), await exporter(NS, WINE, "b")
    for pod in (a, b):
        pod.touch()
    refs = [revision_ref(NS, IRIS, [good]), revision_ref(NS, WINE, [a, b])]
    await source.observe(refs, 0.0)
    good.serve(100, times=2)
    a.count_more(1.7e308)
    b.count_more(1.7e308)
    got = await source.observe(refs, 10.0)
    assert got[RevisionKey(NS, WINE)] is None
    assert "unusable" in source.last_reasons[RevisionKey(NS, WINE)]
    iris = got[RevisionKey(NS, IRIS)]
    assert iris is not None and iris.request_count == 2
    a.restart()
    b.restart()
    a.serve(100, times=4)
    obs = (await source.observe(refs, 20.0))[RevisionKey(NS, WINE)]
    assert obs is not None and (obs.request_count, obs.interval_s) == (4, 20.0)
