"""What the simulated tuner is told of concurrency: as the Prometheus source (time-weighted,
the default) or as the direct scrape (each finished request's whole time at its finish)."""

from __future__ import annotations

import numpy as np
import pytest
from recording_policy import RecordingPolicy

from autoscaler.sim.fleet import SimSettings, run_revision
from autoscaler.sim.model import ColdStart, ModelSpec, ServiceTime
from autoscaler.sim.traces.workload import ModelTrace

TARGET = "autoscaling.knative.dev/target"
RETENTION = "autoscaling.knative.dev/scale-to-zero-pod-retention-period"


@pytest.mark.parametrize("engine", ["exact", "fluid"])
def test_a_request_longer_than_the_tick_counts_all_at_its_finish_from_completions(
    engine: str,
) -> None:
    # One 90 s request after another from 10 s, on one replica kept warm: one in flight all
    # the time. Time-weighted, every 30 s interval reads 1; from completions, an interval in
    # which one finished reads its 90 s over 30 s (3), one with none finished the stand-in 1.
    model = ModelSpec("m", ServiceTime.constant(90.0), capacity=4)
    arrivals = 10.0 + 90.0 * np.arange(8)
    seen = {}
    for mode in ("time-weighted", "completions"):
        policy = RecordingPolicy({TARGET: "10", RETENTION: "10m"})
        settings = SimSettings(
            engine=engine, cold_start=ColdStart(1.5, 0.0), tuner_concurrency=mode
        )
        trace = ModelTrace(model, arrivals, np.full(arrivals.size, 90.0))
        run_revision(trace, 0, policy, settings, 0, 700.0)
        seen[mode] = {
            round(o.t_s): (
                o.request_count,
                o.avg_concurrency_per_replica,
                o.concurrency_from_completions,
            )
            for o in policy.seen
            if 150 <= o.t_s <= 600
        }
    for t, (n, c, from_completions) in seen["time-weighted"].items():
        assert not from_completions
        if engine == "exact":  # (the fluid engine's in-system count is a flow's)
            assert c == pytest.approx(1.0, abs=0.06), (t, n, c)
    finished = {t: v for t, v in seen["completions"].items() if v[0]}
    assert len(finished) >= 4
    for t, (n, c, from_completions) in seen["completions"].items():
        if n:
            assert from_completions and c == pytest.approx(3.0 * n, rel=0.06), (t, n, c)
        else:
            assert not from_completions
            assert c == seen["time-weighted"][t][1], (t, n, c)  # the stand-in


def test_an_unknown_way_of_counting_is_refused() -> None:
    with pytest.raises(
        ValueError, match="tuner_concurrency='sampled': one of time-weighted, completions"
    ):
        SimSettings(tuner_concurrency="sampled")
