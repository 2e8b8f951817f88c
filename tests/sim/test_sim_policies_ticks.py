"""The simulator's ticked policies (the tuner, hybrid-histogram): rest, wake, and what a
woken tuner learns from a periodic model."""

from __future__ import annotations

import math

import numpy as np
import pytest

from autoscaler.sim.fleet import SimSettings, run_revision
from autoscaler.sim.model import ColdStart, ModelSpec, ServiceTime
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


class WindowsWritten:
    """A policy as another, noting the stable windows its revisions write."""

    def __init__(self, policy: TunerPolicy) -> None:
        self.policy, self.name, self.seen = policy, policy.name, set[str]()

    def for_revision(self, model: ModelSpec) -> object:
        revision = self.policy.for_revision(model)
        tick = revision.tick

        def watched(now_s: float, obs: RevisionObservation) -> dict[str, str] | None:
            out = tick(now_s, obs)
            if out and "autoscaling.knative.dev/window" in out:
                self.seen.add(out["autoscaling.knative.dev/window"])
            return out

        revision.tick = watched  # type: ignore[method-assign]
        return revision


@pytest.mark.parametrize("engine", ["exact", "fluid"])
def test_a_busy_model_gets_the_short_window_and_sheds_replicas_sooner(engine: str) -> None:
    """Poisson load that steps between 20 and 2 requests a second every 5 minutes for an hour
    (half-second requests, four at a time per replica): with the busy window the tuner writes
    ``window: 15s`` once the rate is known and the KPA follows the steps down sooner: fewer
    replica-seconds, idle ones among them, than the same tuner on Knative's 60 s window, with
    as many requests within the objective."""
    from autoscaler.tuner.settings import KeepAliveSettings, TunerConfig

    rng = np.random.default_rng(3)
    model = ModelSpec("busy", service=ServiceTime.constant(0.5), capacity=4, memory_mb=1000.0)
    parts = []
    for k in range(12):
        rate = 20.0 if k % 2 == 0 else 2.0
        n = rng.poisson(rate * 300.0)
        parts.append(np.sort(rng.uniform(k * 300.0, (k + 1) * 300.0, n)))
    arrivals = np.concatenate(parts)
    trace = ModelTrace(model, arrivals, np.full(arrivals.size, 0.5))
    windows: dict[str, set[str]] = {}
    runs = {}
    for name, busy in (("short", 15.0), ("default", 0.0)):
        config = TunerConfig(keep_alive=KeepAliveSettings(cold_start_s=1.5, busy_window_s=busy))
        watching = WindowsWritten(TunerPolicy(cold_start_s=1.5, config=config))
        # replicas that take 1.5 s to start, as the tuner is told
        settings = SimSettings(engine=engine, cold_start=ColdStart(median_s=1.5))
        runs[name] = run_revision(trace, 0, watching, settings, 0, 3660.0)  # type: ignore[arg-type]
        windows[name] = watching.seen
    assert windows == {"short": {"15s"}, "default": set()}
    short, default = runs["short"], runs["default"]
    assert short.stats.replica_s < 0.95 * default.stats.replica_s
    assert short.stats.idle_mb_s < 0.8 * default.stats.idle_mb_s
    within = {k: float(np.mean(r.requests.latency_s <= 1.0 + 1e-9)) for k, r in runs.items()}
    assert within["short"] >= within["default"] - 0.002


class Recorded:
    """A policy as another, keeping the revisions it made (to read their annotations)."""

    def __init__(self, policy: object) -> None:
        self.policy, self.name = policy, policy.name  # type: ignore[attr-defined]
        self.revisions: list[object] = []

    def for_revision(self, model: ModelSpec) -> object:
        revision = self.policy.for_revision(model)  # type: ignore[attr-defined]
        self.revisions.append(revision)
        return revision


def test_modelscale_fixed_10m_is_the_tuners_targets_with_a_fixed_keep_alive() -> None:
    """Bursts every 15 minutes: the fixed 10-minute keep-alive lets every one after the first
    start cold, as keepalive-10m does, while modelscale learns the period and pre-warms; on a
    steady busy load (no idle period) both tuners write the same target, off Knative's 100."""
    trace = periodic_trace(900.0, 12)
    fixed_tuned, _ = cold_by_burst("modelscale-fixed-10m", trace)
    fixed, _ = cold_by_burst("keepalive-10m", trace)
    learned, _ = cold_by_burst("modelscale", trace)
    assert fixed_tuned[1:].all() and (fixed_tuned == fixed).all()
    assert not learned[-4:].any(), learned

    rng = np.random.default_rng(5)
    arrivals = np.sort(rng.uniform(0.0, 1200.0, rng.poisson(20.0 * 1200.0)))
    busy = ModelTrace(
        ModelSpec("busy", service=ServiceTime.constant(0.5), capacity=4),
        arrivals,
        np.full(arrivals.size, 0.5),
    )
    targets, retention = {}, {}
    for name in ("modelscale", "modelscale-fixed-10m"):
        (policy,) = make_policies([name], 1.5)
        recorded = Recorded(policy)
        run_revision(busy, 0, recorded, SimSettings(engine="exact"), 0, 1260.0)  # type: ignore[arg-type]
        (revision,) = recorded.revisions
        annotations = revision.annotations  # type: ignore[attr-defined]
        targets[name] = annotations["autoscaling.knative.dev/target"]
        # warm for the stable window (the busy model's shorter one) and the retention after
        window = annotations.get("autoscaling.knative.dev/window", "60s")
        kept = annotations["autoscaling.knative.dev/scale-to-zero-pod-retention-period"]
        retention[name] = float(window.rstrip("s")) + float(kept.rstrip("s"))
    assert targets["modelscale"] == targets["modelscale-fixed-10m"]
    assert float(targets["modelscale"]) < 100.0
    assert retention["modelscale-fixed-10m"] == 600.0
