"""The Prometheus source against a real Prometheus scraping queue-proxy exporters every second.

``increase()`` extrapolates to the window's edges, so counts read back are the driven counts
times a factor a little above 1 (the series start at zero, so only the end is extrapolated, by
less than one scrape interval over at least three): the checks allow up to 1.4.
"""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from autoscaler.metrics import (
    KNATIVE_OPENCENSUS,
    KNATIVE_OPENTELEMETRY,
    MetricsUnavailable,
    PrometheusSettings,
    PrometheusSource,
    RevisionKey,
    RevisionRef,
)
from autoscaler.tuner.observation import LATENCY_BUCKETS_MS

ExporterFactory = Callable[..., Awaitable[Any]]
PrometheusFactory = Callable[..., Awaitable[Any]]
EXTRAPOLATION = 1.4


def between(value: float, expected: float) -> bool:
    return expected <= value <= expected * EXTRAPOLATION


async def scraped_three_times(prom: Any, metric: str, n_series: int) -> None:
    await prom.wait_for(
        f"count(count_over_time({metric}[1m]) >= 3)",
        lambda r: bool(r) and float(r[0]["value"][1]) >= n_series,
    )


async def total_seen(prom: Any, metric: str, total: float) -> None:
    await prom.wait_for(f"sum({metric})", lambda r: bool(r) and float(r[0]["value"][1]) == total)


@pytest.mark.slow
async def test_knative_opencensus_names(
    exporter: ExporterFactory, prometheus: PrometheusFactory
) -> None:
    p1 = await exporter("models", "iris-00001", "iris-p1")
    p2 = await exporter("models", "iris-00001", "iris-p2")
    p3 = await exporter("shop", "wine-00001", "wine-p1")
    for e in (p1, p2, p3):
        e.touch()
    prom = await prometheus([e.target for e in (p1, p2, p3)])
    await scraped_three_times(prom, "revision_app_request_latencies_count", 3)
    p1.serve(500, times=6)
    p2.serve(200, times=4)
    p3.serve(40, times=10)
    await total_seen(prom, "revision_app_request_latencies_count", 20)

    source = PrometheusSource(PrometheusSettings(prometheus_url=prom.url, default_window_s=30))
    try:
        iris = RevisionRef("models", "iris-00001", applied_target=3.0)
        wine = RevisionRef("shop", "wine-00001", ready_replicas=1)
        got = await source.observe([iris, wine], now_s=1000.0)
        iris_obs, wine_obs = got[iris.key], got[wine.key]
        assert iris_obs is not None and wine_obs is not None, source.last_reasons
        assert (iris_obs.interval_s, iris_obs.ready_replicas, iris_obs.applied_target) == (
            30.0,
            2,
            3.0,
        )
        assert between(iris_obs.request_count, 10)
        # Little's law: 6 x 0.5 s + 4 x 0.2 s = 3.8 s of requests over 30 s on 2 replicas.
        assert between(iris_obs.avg_concurrency_per_replica, 3.8 / 30 / 2)
        counts = iris_obs.latency_counts
        assert between(counts[LATENCY_BUCKETS_MS.index(500)], 6)  # each pod extrapolated alone
        assert between(counts[LATENCY_BUCKETS_MS.index(200)], 4)
        assert sum(counts) == pytest.approx(
            counts[LATENCY_BUCKETS_MS.index(500)] + counts[LATENCY_BUCKETS_MS.index(200)]
        )
        assert wine_obs.ready_replicas == 1
        assert between(wine_obs.request_count, 10)
        assert wine_obs.latency_counts[LATENCY_BUCKETS_MS.index(40)] == pytest.approx(
            sum(wine_obs.latency_counts)
        )

        # The next tick's window is the time since this one (ticks do not overlap).
        later = (await source.observe([iris, wine], now_s=1002.0))[iris.key]
        assert later is not None and later.interval_s == 2.0
        assert "window 2s" in source.last_reasons[iris.key]
        # A revision Prometheus has no series of, and no ready count from the API: no data.
        assert (await source.observe([RevisionRef("models", "ghost-00001")], 1004.0)) == {
            RevisionKey("models", "ghost-00001"): None
        }
    finally:
        await source.close()


@pytest.mark.slow
async def test_ready_replicas_with_no_series_are_no_data_not_no_traffic(
    exporter: ExporterFactory, prometheus: PrometheusFactory
) -> None:
    # A revision whose series are there and did not move had no traffic; one with ready
    # replicas and no series at all (its queue-proxies not scraped, request metrics off, other
    # metric names) has no data, and the reason names what is missing. With no ready replica
    # there is nothing to have series.
    idle = await exporter("models", "idle-00001", "idle-p1")
    idle.touch()
    prom = await prometheus([idle.target])
    await scraped_three_times(prom, "revision_app_request_latencies_count", 1)
    idle_ref = RevisionRef("models", "idle-00001", ready_replicas=1)
    dark = RevisionRef("models", "dark-00001", ready_replicas=2)
    zero = RevisionRef("models", "zero-00001", ready_replicas=0)
    source = PrometheusSource(PrometheusSettings(prometheus_url=prom.url, default_window_s=30))
    other_names = PrometheusSource(
        PrometheusSettings(
            prometheus_url=prom.url, names=KNATIVE_OPENTELEMETRY, default_window_s=30
        )
    )
    try:
        got = await source.observe([idle_ref, dark, zero], now_s=0.0)
        idle_obs, zero_obs = got[idle_ref.key], got[zero.key]
        assert idle_obs is not None, source.last_reasons
        assert (idle_obs.ready_replicas, idle_obs.request_count) == (1, 0)
        assert zero_obs is not None and zero_obs.ready_replicas == 0
        assert got[dark.key] is None
        why = source.last_reasons[dark.key]
        assert "no revision_app_request_latencies series nor revision_app_request_count" in why
        assert "with 2 ready replicas" in why
        got = await other_names.observe([idle_ref], now_s=0.0)
        assert got[idle_ref.key] is None
        assert (
            "no kn_serving_invocation_duration_seconds series"
            in (other_names.last_reasons[idle_ref.key])
        )
    finally:
        await source.close()
        await other_names.close()


@pytest.mark.slow
async def test_knative_opentelemetry_names_rebucketed(
    exporter: ExporterFactory, prometheus: PrometheusFactory
) -> None:
    pod = await exporter("models", "iris-00002", "iris-p1", flavor="opentelemetry")
    pod.touch()
    prom = await prometheus([pod.target])
    metric = "kn_serving_invocation_duration_seconds_count"
    await scraped_three_times(prom, metric, 1)
    pod.serve(100, times=5)  # 100 ms: OpenTelemetry's bucket (75, 100] ms
    await total_seen(prom, metric, 5)

    settings = PrometheusSettings(
        prometheus_url=prom.url, names=KNATIVE_OPENTELEMETRY, default_window_s=20
    )
    source = PrometheusSource(settings)
    try:
        ref = RevisionRef("models", "iris-00002")
        obs = (await source.observe([ref], now_s=0.0))[ref.key]
        assert obs is not None, source.last_reasons
        assert obs.ready_replicas == 1
        assert between(obs.request_count, 5)
        assert between(obs.avg_concurrency_per_replica, 0.5 / 20)
        total = sum(obs.latency_counts)
        # Spread evenly over (75, 100]: a fifth at or below 80 ms, the rest in (80, 100].
        assert obs.latency_counts[LATENCY_BUCKETS_MS.index(80)] == pytest.approx(
            0.2 * total, rel=1e-6
        )
        assert obs.latency_counts[LATENCY_BUCKETS_MS.index(100)] == pytest.approx(
            0.8 * total, rel=1e-6
        )
    finally:
        await source.close()


@pytest.mark.slow
@pytest.mark.parametrize("flavor", ["opencensus", "opentelemetry"])
async def test_requests_in_flight_with_none_finished(
    exporter: ExporterFactory, prometheus: PrometheusFactory, flavor: str
) -> None:
    # A revision whose requests have all been in flight for a while: none finished, so the
    # latency histogram's sum says nothing, but the autoscaler's panic-window gauge held 6 all
    # through the window: 3 per replica on the 2 the API reports ready. The gauge comes from
    # the autoscaler's own targets: the one deciding for the revision, and one that decided for
    # it before and kept its last value, 9 (the lowest is read).
    pod = await exporter("models", "batch-00001", "batch-p1", flavor=flavor)
    pod.touch()
    deciding = await exporter("models", "batch-00001", "autoscaler-1", flavor=flavor)
    stale = await exporter("models", "batch-00001", "autoscaler-2", flavor=flavor)
    deciding.set_panic_concurrency(6.0)
    stale.set_panic_concurrency(9.0)
    prom = await prometheus([e.target for e in (pod, deciding, stale)])
    names = KNATIVE_OPENTELEMETRY if flavor == "opentelemetry" else KNATIVE_OPENCENSUS
    await scraped_three_times(prom, names.panic_concurrency, 2)
    settings = PrometheusSettings(prometheus_url=prom.url, names=names, default_window_s=2)
    source = PrometheusSource(settings)
    try:
        ref = RevisionRef("models", "batch-00001", ready_replicas=2)
        obs = (await source.observe([ref], now_s=0.0))[ref.key]
        assert obs is not None, source.last_reasons
        assert obs.request_count == 0
        assert obs.avg_concurrency_per_replica == pytest.approx(3.0)
        reason = source.last_reasons[ref.key]
        assert "in flight at every sample of it with none finished" in reason
        # they finish: the deciding autoscaler's gauge falls to 0 and the window sees it there
        deciding.set_panic_concurrency(0.0)
        await prom.wait_for(
            f"min(max_over_time({names.panic_concurrency}[2s]))",
            lambda r: bool(r) and float(r[0]["value"][1]) == 0.0,
        )
        # (the window's average still counts the part of it they were in flight, but none was
        # in flight all through it, and none finished: 0)
        obs = (await source.observe([ref], now_s=10.0))[ref.key]
        assert obs is not None and obs.avg_concurrency_per_replica == 0.0
        assert "in flight at every sample" not in source.last_reasons[ref.key]
    finally:
        await source.close()


@pytest.mark.slow
async def test_concurrency_is_the_autoscalers_gauge_averaged_over_the_window(
    exporter: ExporterFactory, prometheus: PrometheusFactory
) -> None:
    # Requests finish (the histogram's sum moves) while the autoscaler's panic-window gauge
    # holds 4, then 5: from the second tick (replicas ready at both), the concurrency is the gauge's
    # average over the window on the 2 ready replicas, time-weighted, and the tuner is told it
    # is not from completions; at the first, the request time stands in.
    pod = await exporter("models", "iris-00003", "iris-p1")
    autoscaler = await exporter("models", "iris-00003", "autoscaler-1")
    # an autoscaler replica that no longer decides for the revision, its last value kept: it
    # does not move, so the one that does is read
    stale = await exporter("models", "iris-00003", "autoscaler-2")
    pod.touch()
    autoscaler.set_panic_concurrency(4.0)
    stale.set_panic_concurrency(1.0)
    prom = await prometheus([pod.target, autoscaler.target, stale.target])
    names = KNATIVE_OPENCENSUS
    await scraped_three_times(prom, names.panic_concurrency, 2)
    pod.serve(20_000, times=3)
    await total_seen(prom, "revision_app_request_latencies_count", 3)
    source = PrometheusSource(
        PrometheusSettings(prometheus_url=prom.url, names=names, default_window_s=20)
    )
    try:
        ref = RevisionRef("models", "iris-00003", ready_replicas=2)
        obs = (await source.observe([ref], now_s=0.0))[ref.key]
        assert obs is not None and obs.concurrency_from_completions, source.last_reasons
        autoscaler.set_panic_concurrency(5.0)
        pod.serve(20_000, times=3)
        await total_seen(prom, "revision_app_request_latencies_count", 6)
        await prom.wait_for(
            f"max(max_over_time({names.panic_concurrency}[20s]))",
            lambda r: bool(r) and float(r[0]["value"][1]) == 5.0,
        )
        obs = (await source.observe([ref], now_s=20.0))[ref.key]
        assert obs is not None, source.last_reasons
        assert obs.request_count > 0
        # between 4 and 5 over the window, on 2 replicas (the stale series' 1 would be 0.5)
        assert 2.0 <= obs.avg_concurrency_per_replica <= 2.5
        assert not obs.concurrency_from_completions
        assert "time-weighted" in source.last_reasons[ref.key]
    finally:
        await source.close()


@pytest.mark.slow
async def test_rejected_queries_fail_the_tick_with_the_reason(
    exporter: ExporterFactory, prometheus: PrometheusFactory
) -> None:
    pod = await exporter("models", "iris-00001", "p1")
    pod.touch()
    prom = await prometheus([pod.target], "--query.max-samples=1")
    await prom.wait_for("revision_app_request_latencies_count", lambda r: len(r) == 1)
    ref = RevisionRef("models", "iris-00001")

    source = PrometheusSource(PrometheusSettings(prometheus_url=prom.url))
    try:
        with pytest.raises(
            MetricsUnavailable, match=r"rejected the query \(422 execution: .*too many samples"
        ):
            await source.observe([ref], 0.0)
    finally:
        await source.close()

    wrong_path = PrometheusSource(PrometheusSettings(prometheus_url=f"{prom.url}/not-prometheus"))
    try:
        with pytest.raises(MetricsUnavailable, match="answered HTTP 404"):
            await wrong_path.observe([ref], 0.0)
    finally:
        await wrong_path.close()


async def test_prometheus_down_is_metrics_unavailable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: connections are refused
        source = PrometheusSource(PrometheusSettings(prometheus_url=f"http://127.0.0.1:{port}"))
        try:
            with pytest.raises(
                MetricsUnavailable, match=f"Prometheus at http://127.0.0.1:{port} is unreachable"
            ):
                await source.observe([RevisionRef("models", "iris-00001")], 0.0)
        finally:
            await source.close()


async def test_prometheus_that_does_not_answer_times_out() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()  # accepts connections into the backlog, never answers
        url = f"http://127.0.0.1:{s.getsockname()[1]}"
        source = PrometheusSource(PrometheusSettings(prometheus_url=url, prometheus_timeout_s=0.3))
        try:
            with pytest.raises(MetricsUnavailable, match=r"did not answer within 0\.3 s"):
                await source.observe([RevisionRef("models", "iris-00001")], 0.0)
        finally:
            await source.close()


async def test_no_revisions_no_queries() -> None:
    source = PrometheusSource(PrometheusSettings(prometheus_url="http://127.0.0.1:9"))
    assert await source.observe([], 0.0) == {}
    await source.close()
