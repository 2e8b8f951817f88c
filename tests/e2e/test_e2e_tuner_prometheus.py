"""A real Prometheus scrapes one-machine mode and the tuner reads it through PromQL.

Prometheus (Debian's binary) finds the replicas through the admin server's ``/sd/replicas``
(HTTP service discovery, re-read every second) and scrapes each queue-proxy every second; the
one-machine tuner runs with the Prometheus source pointed at it. Capacity 4, base 100 ms and 2
closed-loop clients: the model answers in 100 ms, which the tuner must see through PromQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from autoscaler.metrics.testing import (
    PrometheusServer,
    free_port,
    http_sd_config,
    prometheus_installed,
    start_prometheus,
)
from autoscaler.runtime.testing import RunningOneMachine, running_onemachine
from tests.e2e.e2e_kit import (
    ClosedLoad,
    annotations,
    apply,
    capacity_isvc,
    condition,
    get_obj,
    model_scaler,
    wait_ready,
)

TARGET = "autoscaling.knative.dev/target"

pytestmark = [pytest.mark.slow, pytest.mark.e2e, pytest.mark.timeout(300)]


@pytest.fixture
def prom_port() -> int:
    if not prometheus_installed():
        pytest.skip("prometheus is not installed")
    return free_port()


@pytest.fixture
def om(tmp_path: Path, prom_port: int) -> Iterator[RunningOneMachine]:
    metrics = {
        "source": "prometheus",
        "prometheus_url": f"http://127.0.0.1:{prom_port}",
        # at least two scrape intervals, so increase() sees two samples
        "min_window_s": "4",
        "default_window_s": "6",
    }
    config = {"tick_period_s": "2", "stale_after_s": "10", "min_requests": "10"}
    with running_onemachine(tmp_path, tuner_metrics=metrics, tuner_config=config) as running:
        yield running


@pytest.fixture
def prom(om: RunningOneMachine, tmp_path: Path, prom_port: int) -> Iterator[PrometheusServer]:
    config = http_sd_config(f"{om.machine.admin_url}/sd/replicas", interval_s=1, refresh_s=1)
    server = start_prometheus(tmp_path / "prometheus", config, port=prom_port)
    try:
        yield server
    finally:
        server.stop()


def test_tuner_reads_one_machine_mode_through_prometheus_and_holds_when_it_is_down(
    om: RunningOneMachine, prom: PrometheusServer
) -> None:
    apply(om, capacity_isvc("promo", capacity=4, base_ms=100))
    wait_ready(om, "promo")
    revision = "promo-predictor-00001"
    load = ClosedLoad(om, "promo", 2).start()
    try:
        apply(om, model_scaler("promo", 500, updateMode="Auto"))
        # Prometheus discovered the replica and scraped its request latencies.
        om.wait(
            lambda: bool(
                prom.query(
                    f'sum(revision_app_request_latencies_count{{revision_name="{revision}"}}) > 0'
                )
            ),
            60,
            "Prometheus has the replica's latencies",
        )
        om.wait(lambda: judged(om) is not None, 90, "a latency judged from PromQL")
        scaler = get_obj(om, "modelscaler", "promo")
        assert condition(scaler, "MetricsAvailable").get("status") == "True", scaler["status"]
        # 100 ms of service time falls in Knative's (100, 150] ms bucket; the p95 inside it.
        # (An early window may hold a replica's first, slower requests: the steady ones must
        # land there within a few windows.)
        seen: list[float | None] = []

        def in_bucket() -> bool:
            seen.append(judged(om))
            return seen[-1] is not None and 100 <= seen[-1] <= 150

        try:
            om.wait(in_bucket, 60, "a judged p95 in (100, 150] ms")
        except AssertionError as e:
            raise AssertionError(
                f"{e}; judged: {sorted({v for v in seen if v is not None})}"
            ) from None
        targets = prom.query('up{job="queue-proxy"} == 1')
        assert {t["metric"]["revision"] for t in targets} == {revision}
        om.wait(lambda: TARGET in annotations(get_obj(om, "revision", revision)), 30, "applied")

        # The metric source goes down: the tuner holds what it applied and says why.
        held = annotations(get_obj(om, "revision", revision))
        prom.stop()
        om.wait(
            lambda: (
                condition(get_obj(om, "modelscaler", "promo"), "MetricsAvailable").get("status")
                == "False"
            ),
            60,
            "MetricsAvailable False",
        )
        ticks = om.machine.tuner.ticks
        om.wait(lambda: om.machine.tuner.ticks >= ticks + 3, 60, "three ticks without metrics")
    finally:
        load.stop()
    scaler = get_obj(om, "modelscaler", "promo")
    metrics = condition(scaler, "MetricsAvailable")
    assert metrics.get("reason") == "MetricsUnavailable", metrics
    # The message names the Prometheus server: the tuner was reading through it.
    assert f"Prometheus at {prom.url}" in (metrics.get("message") or ""), metrics
    assert scaler["status"]["recommendation"]["failStatic"] is True
    assert annotations(get_obj(om, "revision", revision)) == held, "values held"


def judged(om: RunningOneMachine) -> float | None:
    rec = (get_obj(om, "modelscaler", "promo").get("status") or {}).get("recommendation") or {}
    value = rec.get("observedLatencyMs")
    return float(value) if value is not None else None
