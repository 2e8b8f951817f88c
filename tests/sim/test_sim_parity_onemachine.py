"""Parity: the same arrivals through the simulator and through one-machine mode agree.

One InferenceService of the capacity-limited example model (capacity 2, 300 ms of work per
request) with Knative's windows shortened by its own annotations (6 s stable window) and a
target of 1, so the load's four phases ask for about 1, 3, 6 and 2 replicas. The arrival
sequence (seeded Poisson, about two minutes) is sent open-loop over real HTTP through the
ingress, while a poller records every KPA decision one-machine mode makes. The simulator
replays the same arrivals with the same annotations and model. The replica counts the two KPAs
ask for agree within one replica at >= 90 % of one-machine mode's ticks, and the p50 latency
within 20 %.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from autoscaler.runtime.spec import RevisionKey
from autoscaler.runtime.testing import RunningOneMachine, running_onemachine
from autoscaler.sim import ColdStart, ModelSpec, ServiceTime, replay, tick_agreement

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

NAME = "parity"
CAPACITY = 2
BASE_MS = 300.0
ANNOTATIONS = {
    "autoscaling.knative.dev/window": "6s",
    "autoscaling.knative.dev/target": "1",
    "autoscaling.knative.dev/target-burst-capacity": "0",
}
# (seconds, requests per second): concurrency rate x 0.3 s -> 1, 3, 6, 2 replicas at 0.7 each
PHASES = ((30.0, 2.0), (30.0, 7.0), (30.0, 14.0), (30.0, 4.0))
LEAD_S = 10.0  # the revision at rest before the first request (both sides)
WORKERS = 48


def arrivals(seed: int = 7) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out: list[np.ndarray] = []
    start = LEAD_S
    for length, rate in PHASES:
        n = rng.poisson(rate * length)
        out.append(np.sort(start + rng.uniform(0.0, length, n)))
        start += length
    return np.concatenate(out)


def isvc() -> dict[str, Any]:
    env = {
        "MODEL_CLASS": "autoscaler.examples.capacity:CapacityLimitedModel",
        "MODEL_CAPACITY": str(CAPACITY),
        "MODEL_BASE_LATENCY_MS": f"{BASE_MS:g}",
    }
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": NAME, "namespace": "default", "annotations": ANNOTATIONS},
        "spec": {
            "predictor": {
                "minReplicas": 1,
                "containers": [
                    {
                        "name": "kserve-container",
                        "env": [{"name": k, "value": v} for k, v in env.items()],
                    }
                ],
            }
        },
    }


def is_ready(om: RunningOneMachine) -> bool:
    out = om.kubectl("get", "isvc", NAME, "-o", "json")
    if out.returncode != 0:
        return False
    conditions = json.loads(out.stdout).get("status", {}).get("conditions", [])
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


class DecisionRecorder:
    """Polls one-machine mode's last KPA decision for the revision; one row per decision."""

    def __init__(self, om: RunningOneMachine, key: RevisionKey, t0: float) -> None:
        assert om.machine.controller is not None
        self.loop = om.machine.controller.scaling
        self.key = key
        self.t0 = t0
        self.rows: list[tuple[float, int, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="decisions", daemon=True)

    def _run(self) -> None:
        seen = None
        while not self._stop.is_set():
            d = self.loop.last_decision(self.key)
            if d is not None and d is not seen:
                seen = d
                self.rows.append((d.now - self.t0, d.desired_pods, d.ready_pods))
            self._stop.wait(0.02)

    def __enter__(self) -> DecisionRecorder:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


def send_all(om: RunningOneMachine, times_s: np.ndarray, t0: float) -> list[float]:
    """Open loop: each request at its own time (relative to ``t0``); the client latencies."""
    port = int(om.ingress_url.rsplit(":", 1)[1])
    local = threading.local()
    body = json.dumps({"instances": [[1.0]]})
    headers = {"Host": f"{NAME}.default.example.com", "Content-Type": "application/json"}

    def one(_: float) -> float:
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        started = time.monotonic()
        conn.request("POST", f"/v1/models/{NAME}:predict", body=body, headers=headers)
        resp = conn.getresponse()
        resp.read()
        assert resp.status == 200
        return time.monotonic() - started

    with ThreadPoolExecutor(WORKERS) as pool:
        futures = []
        for t in times_s:
            # the load generator's schedule: release each request at its arrival time
            delay = t0 + float(t) - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            futures.append(pool.submit(one, float(t)))
        return [f.result(timeout=120) for f in futures]


def test_replica_timeline_and_p50_agree_with_onemachine(tmp_path: Path) -> None:
    times = arrivals()
    end_s = LEAD_S + sum(length for length, _ in PHASES)
    with running_onemachine(tmp_path) as om:
        applied = om.kubectl("apply", "-f", "-", input=json.dumps(isvc()))
        assert applied.returncode == 0, applied.stderr
        om.wait(lambda: is_ready(om), 120, "isvc ready")
        key = RevisionKey("default", f"{NAME}-predictor-00001")
        t0 = time.monotonic()
        with DecisionRecorder(om, key, t0) as recorder:
            latencies = send_all(om, times, t0)
            om.wait(lambda: time.monotonic() - t0 > end_s + 4.0, 30, "the last ticks")
        onemachine = list(recorder.rows)

    sim = replay(
        times,
        ModelSpec(NAME, ServiceTime.constant(BASE_MS / 1000.0), capacity=CAPACITY),
        annotations={**ANNOTATIONS, "autoscaling.knative.dev/min-scale": "1"},
        cold_start=ColdStart(),
        end_s=end_s + 4.0,
        seed=0,
    )
    sim_ticks = [(t, desired) for t, desired, _ in sim.ticks]
    om_ticks = [(t, desired) for t, desired, _ in onemachine]
    judged = [(t, n) for t, n in om_ticks if LEAD_S <= t <= end_s]
    assert len(judged) >= 0.8 * (end_s - LEAD_S) / 2.0, "one-machine mode ticked too rarely"
    # every phase really asked for a different count on both sides
    assert max(n for _, n in judged) >= 5
    assert max(n for t, n in sim_ticks if LEAD_S <= t <= end_s) >= 5
    agreement = tick_agreement(om_ticks, sim_ticks, tolerance=1, start_s=LEAD_S, end_s=end_s)
    p50_om = float(np.median(latencies))
    p50_sim = float(np.median(sim.latency_s))
    report = (
        f"agreement {agreement:.3f} over {len(judged)} ticks; p50 one-machine "
        f"{p50_om * 1000:.0f} ms, simulator {p50_sim * 1000:.0f} ms"
    )
    print(report)
    assert agreement >= 0.9, report
    assert abs(p50_sim - p50_om) <= 0.2 * p50_om, report
