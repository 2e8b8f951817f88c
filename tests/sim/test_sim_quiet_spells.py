"""Quiet spells (an idle revision's ticks skipped while replicas stay) decide as ticking does.

The reference is the same revision ticked every 2 s (``skip_steady_ticks=False`` turns quiet
spells off too). Replicas held through a long quiet spell report zeros every second in a
cluster, so the KPA's windows are full of zeros when the traffic comes back: a spell must not
leave a gap of a window's length in them (the window would restart a partial window and read
the first burst over a few seconds instead of the whole window). A policy tick that changes
nothing does not end a spell; one that changes the annotations does, as ticking would see it.
"""

from __future__ import annotations

import numpy as np
import pytest

from autoscaler.sim import ColdStart, ModelSpec, ServiceTime, SimSettings, run_revision
from autoscaler.sim.fleet import RevisionRun
from autoscaler.sim.policies import StaticPolicy
from autoscaler.sim.traces import ModelTrace
from autoscaler.tuner.observation import RevisionObservation

PREFIX = "autoscaling.knative.dev/"
COLD = ColdStart(median_s=1.5, sigma=0.0)


def burst_after_quiet(quiet_s: float) -> ModelTrace:
    """A request, a quiet spell of ``quiet_s``, then eight long requests within 3 s."""
    model = ModelSpec("m", ServiceTime.constant(20.0), capacity=1)
    first = [10.0]
    burst = [10.0 + 20.0 + quiet_s + 0.4 * k for k in range(8)]
    arrivals = np.asarray(first + burst)
    return ModelTrace(model, arrivals, np.full(arrivals.size, 20.0))


class ChangeAt:
    """Ticks every 30 s; from ``at_s`` on, patches ``change`` into the annotations (once)."""

    name = "change-at"

    def __init__(self, annotations: dict[str, str], at_s: float, change: dict[str, str]) -> None:
        self.annotations = dict(annotations)
        self.at_s, self.change = at_s, change
        self.ticks: list[float] = []

    def for_revision(self, model: ModelSpec) -> ChangeAt:
        return self

    def initial_annotations(self) -> dict[str, str]:
        return dict(self.annotations)

    def next_tick_s(self, now_s: float) -> float:
        return (now_s // 30.0 + 1.0) * 30.0

    def tick(self, now_s: float, observation: RevisionObservation) -> dict[str, str] | None:
        self.ticks.append(now_s)
        done = all(self.annotations.get(k) == v for k, v in self.change.items())
        if now_s >= self.at_s and not done:
            self.annotations.update(self.change)
            return dict(self.annotations)
        return None


def run(trace: ModelTrace, policy: object, skip: bool, engine: str = "exact") -> RevisionRun:
    settings = SimSettings(cold_start=COLD, engine=engine, skip_steady_ticks=skip)
    end = float(trace.arrivals_s[-1]) + 200.0
    return run_revision(trace, 0, policy, settings, 0, end)  # type: ignore[arg-type]


def trace_of(arrivals: list[float], service_s: float) -> ModelTrace:
    model = ModelSpec("m", ServiceTime.constant(service_s), capacity=1)
    return ModelTrace(model, np.asarray(arrivals), np.full(len(arrivals), service_s))


def assert_same(skipped: RevisionRun, ticked: RevisionRun) -> None:
    assert skipped.stats.timeline == ticked.stats.timeline
    assert skipped.stats.scaling_changes == ticked.stats.scaling_changes
    assert skipped.stats.replica_s == pytest.approx(ticked.stats.replica_s, rel=1e-9)
    assert skipped.stats.idle_mb_s == pytest.approx(ticked.stats.idle_mb_s, rel=1e-9)
    np.testing.assert_allclose(
        skipped.requests.latency_s, ticked.requests.latency_s, rtol=1e-9, atol=1e-9
    )


@pytest.mark.parametrize("quiet_s", [70.0, 200.0, 1000.0])
@pytest.mark.parametrize(
    "annotations",
    [
        {PREFIX + "min-scale": "1", PREFIX + "target": "1"},
        {PREFIX + "scale-to-zero-pod-retention-period": "30m", PREFIX + "target": "1"},
    ],
    ids=["min-scale", "retention"],
)
def test_a_burst_after_a_quiet_spell_scales_as_when_ticking(
    annotations: dict[str, str], quiet_s: float
) -> None:
    trace = burst_after_quiet(quiet_s)
    policy = StaticPolicy("held", annotations)
    ticked = run(trace, policy, skip=False)
    skipped = run(trace, policy, skip=True)
    assert_same(skipped, ticked)


@pytest.mark.parametrize("change_at_s", [120.0, 600.0, 900.0])
def test_policy_ticks_within_a_quiet_spell_decide_as_when_ticking(change_at_s: float) -> None:
    trace = burst_after_quiet(1000.0)
    annotations = {PREFIX + "min-scale": "1", PREFIX + "target": "4"}
    ticked_policy = ChangeAt(annotations, change_at_s, {PREFIX + "target": "1"})
    skipped_policy = ChangeAt(annotations, change_at_s, {PREFIX + "target": "1"})
    ticked = run(trace, ticked_policy, skip=False)
    skipped = run(trace, skipped_policy, skip=True)
    assert skipped_policy.ticks == ticked_policy.ticks
    assert_same(skipped, ticked)


def test_quiet_spells_skip_the_idle_ticks_policy_ticks_included() -> None:
    trace = burst_after_quiet(3000.0)
    annotations = {PREFIX + "min-scale": "1", PREFIX + "target": "1"}
    policy = ChangeAt(annotations, 1e9, {})  # ticks every 30 s, never patches
    settings = SimSettings(cold_start=COLD, engine="exact")
    from autoscaler.sim.revision import RevisionControl

    ticks: list[float] = []
    original = RevisionControl.kpa_tick

    def counting(self: RevisionControl, now_s: float, *args: object, **kw: object) -> None:
        ticks.append(now_s)
        original(self, now_s, *args, **kw)  # type: ignore[arg-type]

    RevisionControl.kpa_tick = counting  # type: ignore[method-assign]
    try:
        run_revision(trace, 0, policy, settings, 0, float(trace.arrivals_s[-1]) + 200.0)
    finally:
        RevisionControl.kpa_tick = original  # type: ignore[method-assign]
    quiet = [t for t in ticks if 200.0 <= t <= 3000.0]
    # 1,400 ticks on the 2 s grid and 93 policy ticks in that stretch: the spell skips them
    assert len(policy.ticks) > 90
    assert len(quiet) < 10


@pytest.mark.parametrize("engine", ["exact", "fluid"])
@pytest.mark.parametrize(
    ("annotations", "ticking"),
    [
        ({PREFIX + "target": "1", PREFIX + "min-scale": "1"}, True),
        ({PREFIX + "target": "1", PREFIX + "scale-down-delay": "30s"}, False),
        (
            {PREFIX + "target": "1", PREFIX + "scale-down-delay": "30s",
             PREFIX + "scale-to-zero-pod-retention-period": "10m"},
            False,
        ),
    ],
    ids=["rate-limited, a policy ticking", "scale-down delay", "delay and retention"],
)  # fmt: skip
def test_no_spell_while_a_scale_down_still_steps(
    annotations: dict[str, str], ticking: bool, engine: str
) -> None:
    """After a burst that panics to hundreds of replicas the KPA halves the count each tick
    (the scale-down rate), and a scale-down delay holds each step: a spell begun while it
    steps would freeze the count until the next request."""
    trace = trace_of([10.0] + [40.0 + 0.02 * k for k in range(200)] + [2000.0], 5.0)

    def policy() -> object:
        return ChangeAt(annotations, 1e9, {}) if ticking else StaticPolicy("held", annotations)

    ticked = run(trace, policy(), skip=False, engine=engine)
    skipped = run(trace, policy(), skip=True, engine=engine)
    assert_same(skipped, ticked)
    assert max(n for _, n in ticked.stats.timeline) > 100
    # down to the floor long before the next request
    settled = [n for t, n in ticked.stats.timeline if 200.0 < t < 2000.0]
    assert settled == [] or settled[-1] <= 1


@pytest.mark.parametrize("engine", ["exact", "fluid"])
@pytest.mark.parametrize(
    "change",
    [
        {PREFIX + "window": "300s"},
        {PREFIX + "panic-window-percentage": "50"},
        {PREFIX + "min-scale": "3"},
        {PREFIX + "min-scale": "0"},
    ],
    ids=["window grows", "panic window grows", "min-scale up", "min-scale down"],
)
def test_a_patch_within_a_spell_takes_effect_as_when_ticking(
    change: dict[str, str], engine: str
) -> None:
    """The windows resize at the time the KPA last ticked (a tick before a policy tick at the
    same time, the fluid engine ticking the policy first), and a count the patch changes
    moves at the same tick."""
    base = {PREFIX + "min-scale": "1", PREFIX + "target": "1", PREFIX + "window": "10s"}
    trace = trace_of([10.0] + [605.0 + 0.4 * k for k in range(8)], 20.0)

    ticked = run(trace, ChangeAt(base, 600.0, change), skip=False, engine=engine)
    skipped = run(trace, ChangeAt(base, 600.0, change), skip=True, engine=engine)
    assert_same(skipped, ticked)


def test_a_steady_spell_ended_by_a_tick_writes_its_zeros() -> None:
    """A light load's steady spell that ends at a tick with no second recorded in it (a lone
    request, then a burst half a minute later): its seconds reach the KPA as zeros, so the
    panic window does not restart and read the burst over its first seconds alone."""
    trace = trace_of([10.0] + [40.0 + 0.3 * k for k in range(30)] + [2000.0], 0.5)
    policy = StaticPolicy("default", {PREFIX + "target": "1"})
    ticked = run(trace, policy, skip=False)
    skipped = run(trace, policy, skip=True)
    assert_same(skipped, ticked)


@pytest.mark.parametrize("every_s", [1, 3])
@pytest.mark.parametrize(
    "change",
    [
        {PREFIX + "target": "0.1"},
        {PREFIX + "target": "40"},
        {PREFIX + "target": "0.1", PREFIX + "window": "20s"},
        {PREFIX + "window": "120s", PREFIX + "target": "0.0666",
         PREFIX + "target-utilization-percentage": "100",
         PREFIX + "panic-threshold-percentage": "1000"},
        {PREFIX + "panic-window-percentage": "50", PREFIX + "target": "0.07",
         PREFIX + "target-utilization-percentage": "100"},
    ],
    ids=["target down", "target up", "target down, window shrinks", "window grows",
         "panic window grows"],
)  # fmt: skip
def test_a_patch_within_a_steady_spell_takes_effect_as_when_ticking(
    change: dict[str, str], every_s: int
) -> None:
    """A light steady load (a short request every second, or every 3 s) whose ticks a steady
    spell skips through the policy's ticks (the exact engine's; the fluid engine has none): a
    patch ends the spell at the KPA's last tick, its zeros written as that tick writes them, so
    the windows resize as when ticking and the next tick decides with the new annotations."""
    engine = "exact"
    arrivals = [float(k) + 0.25 for k in range(9, 1200, every_s)]
    trace = trace_of(arrivals, 0.2)
    base = {PREFIX + "target": "20"}

    ticked = run(trace, ChangeAt(base, 600.0, change), skip=False, engine=engine)
    skipped = run(trace, ChangeAt(base, 600.0, change), skip=True, engine=engine)
    assert_same(skipped, ticked)
