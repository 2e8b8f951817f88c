"""The fluid engine agrees with the exact engine on small busy cases.

The fluid engine is used for revisions with many requests per second; here both engines run
the same arrivals. Agreement is checked on load at or under what the replicas serve at flat
latency; under sustained overload (processor sharing far past capacity) the fluid engine is
only a rough guide, which the simulator's report and docs say.
"""

from __future__ import annotations

import numpy as np
import pytest

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
