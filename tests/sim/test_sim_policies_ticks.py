"""The simulator's ticked policies (the tuner, hybrid-histogram): rest, wake, and what a
woken tuner learns from a periodic model."""

from __future__ import annotations

import math

import numpy as np
import pytest

from autoscaler.sim.fleet import SimSettings, run_revision
from autoscaler.sim.model import ModelSpec, ServiceTime
from autoscaler.sim.policies import HybridHistogramKeepAlive, TunerPolicy, make_policies
from autoscaler.sim.traces.workload import ModelTrace
from autoscaler.tuner.observation import N_LATENCY_COUNTS, RevisionObservation

MODEL = ModelSpec("periodic", service=ServiceTime.constant(0.2), capacity=4)


def quiet(t: float) -> RevisionObservation:
    """An interval at zero replicas without requests."""
    return RevisionObservation(
        t_s=t,
        interval_s=30.0,
        ready_replicas=0,
        avg_concurrency_per_replica=0.0,
        request_count=0,
        latency_counts=(0.0,) * N_LATENCY_COUNTS,
        arrivals_s=(),
    )


@pytest.mark.parametrize(
    "policy", [TunerPolicy(), HybridHistogramKeepAlive()], ids=["modelscale", "hybrid-histogram"]
)
def test_a_resting_policy_sleeps_until_a_request_wakes_it(policy: object) -> None:
    revision = policy.for_revision(MODEL)  # type: ignore[attr-defined]
    assert revision.next_tick_s(0.0) == 30.0
    revision.tick(30.0, quiet(30.0))
    # at rest, asked right after its tick: nothing to do until a request comes
    assert revision.next_tick_s(30.0) == math.inf
    # a request at 1000.5 s reaches the revision at rest: back on the 30 s grid
    assert revision.next_tick_s(1000.5) == 1020.0


def periodic_trace(period_s: float, bursts: int) -> ModelTrace:
    """A burst of 5 requests, one a second, every ``period_s``."""
    starts = np.arange(bursts) * period_s + 10.0
    arrivals = (starts[:, None] + np.arange(5)[None, :]).ravel()
    return ModelTrace(MODEL, arrivals, np.full(arrivals.size, 0.2))


def cold_by_burst(
    policy_name: str, trace: ModelTrace, engine: str = "auto"
) -> tuple[np.ndarray, float]:
    """Which bursts met a cold start, and the revision's replica-seconds."""
    (policy,) = make_policies([policy_name], 1.5)
    end = float(trace.arrivals_s[-1]) + 60.0
    run = run_revision(trace, 0, policy, SimSettings(engine=engine), 0, end)
    assert run.engine == engine or engine == "auto"
    return run.requests.cold.reshape(-1, 5).any(axis=1), run.stats.replica_s


@pytest.mark.parametrize("engine", ["exact", "fluid"])
def test_the_tuner_pre_warms_a_periodic_model_for_less_than_a_fixed_keep_alive(
    engine: str,
) -> None:
    # every 10 minutes: Knative's default drops the replica after ~90 s, so every burst is cold
    # (both engines: a revision at rest ticks its policy when the policy asks, a pre-warm's
    # tick included, and a request wakes it)
    trace = periodic_trace(600.0, 16)
    default, _ = cold_by_burst("knative-default", trace, engine)
    fixed, fixed_replica_s = cold_by_burst("keepalive-10m", trace, engine)
    tuned, tuned_replica_s = cold_by_burst("modelscale", trace, engine)
    # (the first burst finds the replica the revision was created with)
    assert default[1:].all() and not fixed.any()
    # while the tuner gathers min_idle_samples idle periods its fallback keep-alive (10 minutes)
    # holds the replica like the fixed one; then a pre-warm brings a replica before each burst
    # and lets it go after: warm at every burst, for well under the fixed keep-alive's
    # replica-seconds (a pre-warm held open would not be)
    assert not tuned.any(), tuned
    assert tuned_replica_s < 0.6 * fixed_replica_s
