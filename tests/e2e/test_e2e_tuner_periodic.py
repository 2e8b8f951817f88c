"""Periodic traffic on one-machine mode: a burst every 18 s, two models on the same schedule, one
governed by a ModelScaler (learned keep-alive and pre-warm), one on Knative's defaults. The
tuned one must be warm for more bursts: fewer cold starts over the same schedule.

Time is compressed with Knative's own settings and the tuner's: a 6 s stable window
(``autoscaling.knative.dev/window``) and a 6 s scale-to-zero grace period, so on the defaults a
revision is at zero about 12 s after its last request, and an 18 s period means a cold start at
every burst. The tuner's Knative-window settings, its minimum idle time and its fallback
keep-alive (Knative's default, window + grace) are scaled the same way.

A burst is cold when the revision has no ready replica the moment it starts (read from the
Revision's status through the API).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from autoscaler.runtime.testing import RunningOneMachine, running_onemachine
from tests.e2e.e2e_kit import (
    apply,
    capacity_isvc,
    get_obj,
    model_scaler,
    predict_once,
    wait_ready,
)

pytestmark = [pytest.mark.slow, pytest.mark.e2e, pytest.mark.timeout(420)]

PERIOD_S = 18.0
BURSTS = 8
BURST_REQUESTS = 3
MODELS = ("tuned", "plain")


@pytest.fixture
def om(tmp_path: Path) -> Iterator[RunningOneMachine]:
    # The tuner's view of Knative (window, grace), its least idle time and its fallback
    # keep-alive (Knative's default: window + grace) compressed like Knative's own settings.
    config = {
        "tick_period_s": "2", "stale_after_s": "10", "min_apply_interval_s": "2",
        "stable_window_s": "6", "scale_to_zero_grace_period_s": "6", "min_idle_s": "4",
        "min_idle_samples": "3", "cold_start_s": "3", "fallback_keep_alive_s": "12",
    }  # fmt: skip
    with running_onemachine(
        tmp_path, autoscaler_config={"scale-to-zero-grace-period": "6s"}, tuner_config=config
    ) as running:
        yield running


def ready_replicas(api: client.CustomObjectsApi, model: str) -> int:
    rev = api.get_namespaced_custom_object(
        "serving.knative.dev", "v1", "default", "revisions", f"{model}-predictor-00001"
    )
    return int((rev.get("status") or {}).get("actualReplicas") or 0)


def burst(om: RunningOneMachine, model: str, out: list[float]) -> None:
    def one() -> None:
        started = time.monotonic()
        status = predict_once(om, model)
        assert status == 200, status
        out.append(time.monotonic() - started)

    threads = [threading.Thread(target=one) for _ in range(BURST_REQUESTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)


def test_learned_keep_alive_has_fewer_cold_starts_than_knative_defaults(
    om: RunningOneMachine,
) -> None:
    started = time.monotonic()
    for model in MODELS:
        apply(om, capacity_isvc(model, capacity=4, base_ms=50, min_replicas=0))
    for model in MODELS:
        wait_ready(om, model)
    apply(om, model_scaler("tuned", 1000, updateMode="Auto"))
    api = client.CustomObjectsApi(om.api_client())
    # Both start at zero, as after a quiet night.
    om.wait(lambda: all(ready_replicas(api, m) == 0 for m in MODELS), 90, "both models at zero")

    cold: dict[str, list[bool]] = {m: [] for m in MODELS}
    first_s: dict[str, list[float]] = {m: [] for m in MODELS}
    retention: list[str | None] = []
    t0 = time.monotonic()
    for i in range(BURSTS):
        due = t0 + i * PERIOD_S
        # The schedule is the workload itself: wait for the next burst's time.
        om.wait(lambda due=due: time.monotonic() >= due, PERIOD_S + 5, f"burst {i}")
        for m in MODELS:
            cold[m].append(ready_replicas(api, m) == 0)
        latencies: dict[str, list[float]] = {m: [] for m in MODELS}
        threads = [threading.Thread(target=burst, args=(om, m, latencies[m])) for m in MODELS]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        for m in MODELS:
            first_s[m].append(round(max(latencies[m]), 2))
        ann = (get_obj(om, "revision", "tuned-predictor-00001").get("metadata") or {}).get(
            "annotations"
        ) or {}
        retention.append(ann.get("autoscaling.knative.dev/scale-to-zero-pod-retention-period"))

    scaler: dict[str, Any] = get_obj(om, "modelscaler", "tuned").get("status") or {}
    figures = {
        "period_s": PERIOD_S,
        "bursts": BURSTS,
        "cold_tuned": sum(cold["tuned"][1:]),
        "cold_default": sum(cold["plain"][1:]),
        "cold_by_burst_tuned": "".join("C" if c else "w" for c in cold["tuned"]),
        "cold_by_burst_default": "".join("C" if c else "w" for c in cold["plain"]),
        "slowest_s_tuned": first_s["tuned"],
        "slowest_s_default": first_s["plain"],
        "retention_by_burst": retention,
        "keep_alive": (scaler.get("recommendation") or {}).get("reasons", [])[1:2],
        "wall_s": round(time.monotonic() - started, 1),
    }
    print("PERIODIC", figures)
    # The first burst wakes both from zero; count the rest.
    assert sum(cold["plain"][1:]) >= BURSTS - 2, "the schedule must be cold on the defaults"
    assert sum(cold["tuned"][1:]) < sum(cold["plain"][1:])
