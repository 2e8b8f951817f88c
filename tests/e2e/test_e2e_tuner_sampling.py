"""The direct scrape's concurrency samples between ticks, on one-machine mode: real replicas of
the capacity-limited example model with requests longer than the tick.

Two closed-loop clients send 4 s requests to one replica (Knative's default target, the tuner in
Recommend mode so nothing changes it): two are in flight all the time. Ticks every 6 s finish two,
three or four of them, so the concurrency from completions (each finished request's 4 s in the
interval it finishes in) swings between 4/3 and 8/3; the samples of the queue-proxy's gauge
between ticks read the 2 in flight.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from autoscaler.runtime.testing import RunningOneMachine, running_onemachine
from autoscaler.tuner.observation import RevisionObservation
from tests.e2e.e2e_kit import ClosedLoad, apply, capacity_isvc, model_scaler, wait_ready

pytestmark = [pytest.mark.slow, pytest.mark.e2e, pytest.mark.timeout(300)]

MODEL, REVISION = "slow", "slow-predictor-00001"
TICK_S, SAMPLE_S = 6.0, 0.5  # eleven rounds a tick, three needed


@pytest.fixture
def om(tmp_path: Path) -> Iterator[RunningOneMachine]:
    with running_onemachine(
        tmp_path,
        tuner_config={"tick_period_s": f"{TICK_S:g}", "stale_after_s": "30"},
        tuner_metrics={"concurrency_sample_period_s": f"{SAMPLE_S:g}"},
    ) as running:
        yield running


def test_requests_longer_than_the_tick_are_counted_where_they_live(om: RunningOneMachine) -> None:
    seen: list[RevisionObservation] = []

    def listener(report: Any) -> None:  # on the tuner's loop, after every tick
        model = report.models.get(("default", MODEL))
        rec = model.recommendations.get(REVISION) if model else None
        if rec is not None and rec.observation is not None:
            seen.append(rec.observation)

    apply(om, capacity_isvc(MODEL, capacity=4, base_ms=4000))
    wait_ready(om, MODEL)
    om.machine.tuner.add_tick_listener(listener)
    apply(om, model_scaler(MODEL, 20_000, updateMode="Recommend"))
    load = ClosedLoad(om, MODEL, 2).start()
    try:
        om.wait(lambda: len(seen) >= 10, 150, "ten observations under load")
    finally:
        load.stop()
    steady = [o for o in seen[3:10] if o.ready_replicas == 1]
    assert len(steady) >= 5, [(o.ready_replicas, o.request_count) for o in seen]
    for o in steady:
        assert not o.concurrency_from_completions, o
        assert o.in_flight_known
        assert 1.7 <= o.avg_concurrency_per_replica <= 2.2, o
    # what the same intervals read from completions: each finished request's whole 4 s
    from_sum = [(o.latency_sum_ms or 0.0) / 1000.0 / o.interval_s for o in steady]
    assert max(from_sum) - min(from_sum) > 0.6, from_sum
    assert all(s.status == 200 for s in load.samples), {s.status for s in load.samples}
