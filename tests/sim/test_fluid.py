"""The fluid engine agrees with the exact engine on small busy cases.

The fluid engine is used for revisions with many requests per second; here both engines run
the same arrivals. Agreement is checked on load at or under what the replicas serve at flat
latency; under sustained overload (processor sharing far past capacity) the fluid engine is
only a rough guide, which the simulator's report and docs say.
"""

from __future__ import annotations

import numpy as np
import pytest
from recording_policy import RecordingPolicy

from autoscaler.sim.fleet import RevisionRun, SimSettings, run_revision
from autoscaler.sim.model import ColdStart, ModelSpec, ServiceTime
from autoscaler.sim.policies import StaticPolicy
from autoscaler.sim.traces.workload import ModelTrace

TARGET = "autoscaling.knative.dev/target"


def _run(engine: str, trace: ModelTrace, annotations: dict[str, str], end_s: float) -> RevisionRun:
    settings = SimSettings(engine=engine, cold_start=ColdStart(1.5, 0.0))
    return run_revision(trace, 0, StaticPolicy("p", annotations), settings, 0, end_s)


@pytest.mark.parametrize(
    ("rate_per_s", "service_s", "capacity", "cc", "annotations"),
    [
        (20.0, 0.2, 8, 0, {}),
        (30.0, 0.5, 4, 0, {TARGET: "4"}),
        (20.0, 0.2, 2, 2, {TARGET: "2"}),
        (5.0, 3.0, 4, 0, {TARGET: "4"}),
    ],
    ids=["under-capacity-defaults", "target-at-capacity", "container-concurrency", "long-requests"],
)
def test_fluid_agrees_with_exact(
    rate_per_s: float, service_s: float, capacity: int, cc: int, annotations: dict[str, str]
) -> None:
    rng = np.random.default_rng(5)
    duration = 900.0
    arrivals = np.sort(rng.random(int(rate_per_s * duration)) * duration)
    arrivals = arrivals[(arrivals < 300.0) | (arrivals > 450.0)]  # a pause: back to zero and up
    model = ModelSpec(
        "m",
        ServiceTime((0.0, 0.5, 1.0), (service_s * 0.5, service_s, service_s * 1.5)),
        capacity=capacity,
        container_concurrency=cc,
    )
    service = model.service.sample(rng, arrivals.size)
    trace = ModelTrace(model, arrivals, service)
    exact = _run("exact", trace, annotations, duration)
    fluid = _run("fluid", trace, annotations, duration)
    assert (exact.engine, fluid.engine) == ("exact", "fluid")
    le, lf = exact.requests.latency_s, fluid.requests.latency_s
    assert lf.mean() == pytest.approx(le.mean(), rel=0.15)
    met_e = (le <= model.objective_s(service)).mean()
    met_f = (lf <= model.objective_s(service)).mean()
    assert met_f == pytest.approx(met_e, abs=0.02)
    assert fluid.requests.cold.sum() == exact.requests.cold.sum()
    assert fluid.stats.replica_s == pytest.approx(exact.stats.replica_s, rel=0.15)


@pytest.mark.parametrize("engine", ["exact", "fluid"])
def test_the_tuner_hears_of_a_request_once_it_finished(engine: str) -> None:
    # 100 s requests, 5 a second for a minute from t = 5 s: none has finished before 105 s,
    # though the fluid engine knows each latency once the request is admitted
    arrivals = 5.0 + np.arange(300) / 5.0
    model = ModelSpec("m", ServiceTime.constant(100.0), capacity=100)
    trace = ModelTrace(model, arrivals, np.full(arrivals.size, 100.0))
    policy = RecordingPolicy({TARGET: "10"})
    settings = SimSettings(engine=engine, cold_start=ColdStart(1.5, 0.0))
    run_revision(trace, 0, policy, settings, 0, 400.0)
    by_tick = {round(o.t_s): o.request_count for o in policy.seen}
    assert by_tick[30] == by_tick[60] == by_tick[90] == 0, by_tick
    assert sum(by_tick.values()) == 300
    # each reaches the tuner at the first tick after it finished: 5 s + 100 s and on
    assert by_tick[120] > 0 and by_tick[180] > 0


def test_fluid_long_requests_speed_up_as_replicas_come() -> None:
    # 500 s requests (250 to 750 s), two a second, after a pause: replicas come while the
    # first ones are in service and share out their load, so they finish sooner than the
    # sharing they started under says. Each request's work is integrated over the steps it
    # spends in service, as the exact engine serves it.
    rng = np.random.default_rng(5)
    duration = 3000.0
    arrivals = np.sort(rng.random(int(2.0 * duration)) * duration)
    arrivals = arrivals[(arrivals < 1000.0) | (arrivals > 1500.0)]
    model = ModelSpec("m", ServiceTime((0.0, 0.5, 1.0), (250.0, 500.0, 750.0)), capacity=16)
    service = model.service.sample(rng, arrivals.size)
    trace = ModelTrace(model, arrivals, service)
    exact = _run("exact", trace, {TARGET: "32"}, 4500.0)
    fluid = _run("fluid", trace, {TARGET: "32"}, 4500.0)
    le, lf = exact.requests.latency_s, fluid.requests.latency_s
    assert lf.mean() == pytest.approx(le.mean(), rel=0.01)
    assert np.quantile(lf, 0.95) == pytest.approx(np.quantile(le, 0.95), rel=0.01)


@pytest.mark.parametrize("engine", ["exact", "fluid"])
def test_a_long_request_holds_its_replica_and_is_reported_when_it_ends(engine: str) -> None:
    # Requests of 0.2 s, one of them 300 s: the flow drains at the mean service time, the
    # 300 s request keeps a replica until it ends, and the tuner hears of it at the first
    # tick after 310.5 s (330), though the revision is at rest by then
    model = ModelSpec("m", ServiceTime.constant(0.2), capacity=4)
    arrivals = np.asarray([10.0, 10.5, 11.0, 11.5, 12.0, 3000.2, 3000.4])
    service = np.asarray([0.2, 300.0, 0.2, 0.2, 0.2, 0.2, 0.2])
    policy = RecordingPolicy({TARGET: "10"})
    settings = SimSettings(engine=engine, cold_start=ColdStart(1.5, 0.0))
    run = run_revision(ModelTrace(model, arrivals, service), 0, policy, settings, 0, 3100.0)
    reported = {round(o.t_s): o.latency_sum_ms for o in policy.seen if o.request_count}
    assert reported[330] == pytest.approx(run.requests.latency_s[1] * 1000.0)
    assert 300.0 <= run.requests.latency_s[1] < 302.0
    # the replica stays until the long request is done (then the stable window and grace)
    assert run.stats.replica_s > 300.0


def test_at_rest_a_due_tick_comes_before_the_request_that_wakes_the_revision() -> None:
    # a tick due at 600 s and a request at 600.5 s: both engines tick at 600, then on the grid
    model = ModelSpec("m", ServiceTime.constant(0.2), capacity=4)
    arrivals = np.asarray([10.0, 600.5])
    ticks = {}
    for engine in ("exact", "fluid"):
        policy = RecordingPolicy({TARGET: "10"})
        settings = SimSettings(engine=engine, cold_start=ColdStart(1.5, 0.0))
        run_revision(ModelTrace(model, arrivals, np.full(2, 0.2)), 0, policy, settings, 0, 700.0)
        ticks[engine] = [round(o.t_s, 1) for o in policy.seen]
    assert 600.0 in ticks["fluid"]
    assert ticks["fluid"] == ticks["exact"]


def test_after_a_quiet_spell_both_engines_tick_on_the_grid() -> None:
    # A burst, then 14 minutes with a replica kept warm (retention) and no request: the
    # engines jump over the quiet spell's identical ticks. The fluid engine's ticks come at
    # the end of a 1 s step, so it jumps to the second before the tick it waits for: the
    # policy ticks (every 30 s) as in the exact engine and the KPA stays on its 2 s grid.
    model = ModelSpec("m", ServiceTime.constant(0.2), capacity=4)
    arrivals = np.concatenate((10.0 + np.arange(150) / 5.0, 900.5 + np.arange(150) / 5.0))
    annotations = {
        TARGET: "10",
        "autoscaling.knative.dev/scale-to-zero-pod-retention-period": "20m",
    }
    kpa: dict[str, list[float]] = {}
    policy_ticks: dict[str, list[float]] = {}
    for engine in ("exact", "fluid"):
        policy = RecordingPolicy(annotations)
        settings = SimSettings(engine=engine, cold_start=ColdStart(1.5, 0.0))
        trace = ModelTrace(model, arrivals, np.full(arrivals.size, 0.2))
        run = run_revision(trace, 0, policy, settings, 0, 1200.0, record_kpa_ticks=True)
        assert run.stats.kpa_ticks is not None
        kpa[engine] = [t for t, _, _ in run.stats.kpa_ticks]
        policy_ticks[engine] = [o.t_s for o in policy.seen]
    assert policy_ticks["fluid"] == policy_ticks["exact"]
    # (which identical ticks each skips differs: it hears of the last request at a step's end)
    assert all(t % 2.0 == 0.0 for t in kpa["fluid"]), [t for t in kpa["fluid"] if t % 2.0]
    assert {900.0, 902.0} <= set(kpa["fluid"]) & set(kpa["exact"])  # woken on the grid


@pytest.mark.parametrize("offset_s", [0.05, 0.5, 0.95])
def test_a_replica_woken_mid_second_is_counted_from_the_request(offset_s: float) -> None:
    """The activator starts a replica at the arrival, not at the start of its second."""
    model = ModelSpec("m", ServiceTime((0.0, 1.0), (0.1, 0.1)), capacity=1)
    trace = ModelTrace(model, np.array([100.0 + offset_s]), np.array([0.1]))
    exact = _run("exact", trace, {}, 400.0)
    fluid = _run("fluid", trace, {}, 400.0)
    assert fluid.stats.replica_s == pytest.approx(exact.stats.replica_s, abs=1e-9)
    assert fluid.stats.timeline == exact.stats.timeline
