"""The tuner in Auto mode converges on one-machine mode, with real replicas of the
capacity-limited model under a steady closed-loop load that needs several of them.

Truth: capacity 2, base latency 200 ms, objective p95 400 ms (twice the base), so a replica
meets the objective up to 4 requests in flight; 13 closed-loop clients need at least
ceil(13 / 4) = 4 replicas; the test allows 1.5 x 4 = 6 (5 is what a quiet machine settles on,
2.6 in flight each, 260 ms on average; on a loaded one the knee measures lower and the target
settles where 13 clients need 6). The
count leaves room for what the formula ignores: replicas get requests round robin, so at any
moment some hold more than the average and the p95 sits above the mean (at 2.8 per replica,
14 clients on 5 replicas, the p95 measured 320 to 440 ms against a 280 ms mean).

The InferenceService starts on Knative's default target (100 at 70 %: one replica takes all 13
and misses by over 3x). The test finds the first tick from which,
for 30 ticks in a row, the tuner's judged p95 meets the objective, the replica count is at most
REPLICA_BOUND x 4 and the target stays within 10 % of where it was; it prints the figures
(run with -s).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from autoscaler.runtime.testing import RunningOneMachine, running_onemachine
from tests.e2e.e2e_kit import (
    ClosedLoad,
    TickRecorder,
    TickRow,
    apply,
    capacity_isvc,
    least_replicas,
    model_scaler,
    p95,
    wait_ready,
)

pytestmark = [pytest.mark.slow, pytest.mark.e2e, pytest.mark.timeout(480)]

CAPACITY = 2
BASE_MS = 200.0
OBJECTIVE_MS = 400.0
CLIENTS = 13
TICK_S = 2
SETTLE_TICKS = 30
REPLICA_BOUND = 1.5
MAX_TICKS = 120  # a run that meets a slow interval re-explores once: room for it


@pytest.fixture
def om(tmp_path: Path) -> Iterator[RunningOneMachine]:
    config = {
        "tick_period_s": str(TICK_S),
        "stale_after_s": "10",
        "min_apply_interval_s": str(2 * TICK_S),
        "min_requests": "20",
        "min_bin_requests": "20",
        # Knative's window here is 6 s; with a replica's start and the backlog of requests
        # begun at the old target draining, a change has taken effect about 8 s later.
        "settle_s": "8",
        # 10 %, not the default 15 %: with the knee this model shows (3.2 to 3.3 per replica),
        # a 15 % margin settles the target at 3.6 to 3.8, where 13 clients need 5 replicas or
        # 6 (13 / (0.7 x 3.71) = 5), so the count would test the margin's rounding, not the
        # convergence. At 10 % it settles near 3.9: 5 replicas.
        "safety_margin_fraction": "0.1",
        # A knee is retried after 2 minutes, not an hour: one slow interval on a busy machine
        # (p95 550 ms at 1.65 per replica, after 2.6 had met the objective) is otherwise
        # remembered as the knee for the rest of the run, at 8 or 9 replicas.
        "knee_memory_s": "120",
    }
    with running_onemachine(tmp_path, tuner_config=config) as running:
        yield running


def settled_from(rows: list[TickRow], least: int) -> int | None:
    """Index of the first row from which SETTLE_TICKS rows all meet the three conditions."""
    limit = REPLICA_BOUND * least
    for i in range(len(rows) - SETTLE_TICKS + 1):
        window = rows[i : i + SETTLE_TICKS]
        start = window[0].target
        if start is None:
            continue
        if all(
            r.latency_ms is not None
            and r.latency_ms <= OBJECTIVE_MS
            and r.replicas is not None
            and r.replicas <= limit
            and r.target is not None
            and abs(r.target - start) < 0.1 * start
            for r in window
        ):
            return i
    return None


def test_auto_mode_converges_near_the_least_replicas_and_holds(om: RunningOneMachine) -> None:
    started = time.monotonic()
    least = least_replicas(CLIENTS, CAPACITY, BASE_MS, OBJECTIVE_MS)
    apply(om, capacity_isvc("knee", capacity=CAPACITY, base_ms=BASE_MS))
    wait_ready(om, "knee")
    load = ClosedLoad(om, "knee", CLIENTS).start()
    recorder = TickRecorder(om, "knee").start()
    try:
        apply(om, model_scaler("knee", OBJECTIVE_MS, updateMode="Auto"))
        deadline = time.monotonic() + MAX_TICKS * TICK_S * 1.5
        found: int | None = None
        while time.monotonic() < deadline:
            rows = [r for r in recorder.rows if r.latency_ms is not None or r.applied]
            found = settled_from(rows, least)
            if found is not None:
                break
            time.sleep(TICK_S)
        rows = [r for r in recorder.rows if r.latency_ms is not None or r.applied]
    finally:
        recorder.stop()
        load.stop()

    for r in rows:
        print(
            f"tick {r.tick:3d} target {r.target or 0:7.3g} applied {r.applied!s:5} "
            f"replicas {r.replicas} conc/replica {r.concurrency or 0:5.2f} "
            f"p95 {r.latency_ms or 0:6.0f} ms  {r.reason[:110]}"
        )
    assert found is not None, f"no {SETTLE_TICKS}-tick settled window in {len(rows)} ticks"
    window = rows[found : found + SETTLE_TICKS]
    model_ms = [
        s.model_ms
        for s in load.between(window[0].t_s - TICK_S, window[-1].t_s)
        if s.model_ms is not None
    ]
    errors = [s for s in load.samples if s.status != 200]
    targets = [r.target for r in window if r.target is not None]
    replicas = [r.replicas for r in window if r.replicas is not None]
    figures = {
        "ticks_to_converge": found,
        "seconds_to_converge": round(window[0].t_s - rows[0].t_s, 1),
        "least_replicas": least,
        "replicas_in_window": f"{min(replicas)}..{max(replicas)}",
        "final_target": window[-1].target,
        "target_spread": round(max(targets) / min(targets) - 1, 3),
        "model_p95_ms_in_window": round(p95(model_ms), 1),
        "requests": len(load.samples),
        "errors": len(errors),
        "wall_s": round(time.monotonic() - started, 1),
    }
    print("CONVERGENCE", figures)
    assert p95(model_ms) <= OBJECTIVE_MS
    assert max(replicas) <= REPLICA_BOUND * least
    assert max(targets) < 1.1 * min(targets)
    assert not errors, errors[:3]
