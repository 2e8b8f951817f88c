"""A fleet run: every revision of a workload under one policy, and the figures of the run.

Revisions share nothing (each has its own replicas, KPA and policy), so each runs alone over
the whole trace, with the engine that suits it: ``fluid`` when its requests per second while
active reach ``SimSettings.fluid_min_rps``, else ``exact``. Cold-start delays come from a
generator per (seed, model): every policy sees the same draws for the same model.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from autoscaler.kpa import AutoscalerConfig
from autoscaler.sim.exact import RequestResults, run_exact
from autoscaler.sim.fluid import run_fluid
from autoscaler.sim.kpa_adapter import KpaFactory
from autoscaler.sim.model import ColdStart
from autoscaler.sim.results import PolicyFigures, figures
from autoscaler.sim.revision import RevisionControl, RevisionStats
from autoscaler.sim.seams import AutoscalerFactory, Policy
from autoscaler.sim.traces.workload import ModelTrace, Workload, model_rng

COLD_START_RNG = 3
ENGINES = ("auto", "exact", "fluid")
# How the tuner's metrics source counts a revision's concurrency (RevisionObservation):
# "time-weighted", as the Prometheus source reads it from the Knative autoscaler's gauge (and the
# direct scrape from its samples between ticks), or "completions", as the direct scrape with
# sampling off reads it (each finished request's whole time, at its finish: the histogram's _sum).
TUNER_CONCURRENCY = ("time-weighted", "completions")


@dataclass(frozen=True)
class SimSettings:
    """How to simulate: cold starts, the engine choice and the KPA's global config."""

    cold_start: ColdStart = field(default_factory=ColdStart)
    engine: str = "auto"
    fluid_min_rps: float = 2.0
    kpa_config: AutoscalerConfig = field(default_factory=AutoscalerConfig)
    timeline_models: int = 3
    # skip KPA ticks that provably decide the same (autoscaler.kpa.horizon); False ticks all
    skip_steady_ticks: bool = True
    tuner_concurrency: str = "time-weighted"

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise ValueError(f"engine={self.engine!r}: one of {', '.join(ENGINES)}")
        if self.tuner_concurrency not in TUNER_CONCURRENCY:
            raise ValueError(
                f"tuner_concurrency={self.tuner_concurrency!r}: one of {', '.join(TUNER_CONCURRENCY)}"
            )
        if self.fluid_min_rps <= 0:
            raise ValueError(f"fluid_min_rps={self.fluid_min_rps}: must be > 0")


def active_rps(trace: ModelTrace) -> float:
    """Requests per second over the minutes that have any request."""
    if trace.requests == 0:
        return 0.0
    minutes = np.unique(np.floor(trace.arrivals_s / 60.0)).size
    return trace.requests / (minutes * 60.0)


def choose_engine(trace: ModelTrace, settings: SimSettings) -> str:
    if settings.engine != "auto":
        return settings.engine
    return "fluid" if active_rps(trace) >= settings.fluid_min_rps else "exact"


@dataclass
class RevisionRun:
    """One revision's outcome under one policy."""

    name: str
    engine: str
    requests: RequestResults
    stats: RevisionStats


def run_revision(
    trace: ModelTrace,
    index: int,
    policy: Policy,
    settings: SimSettings,
    seed: int,
    end_s: float,
    *,
    autoscaler: AutoscalerFactory | None = None,
    record_kpa_ticks: bool = False,
) -> RevisionRun:
    """Simulate one model's revision under ``policy``."""
    control = RevisionControl(
        trace.model,
        policy.for_revision(trace.model),
        autoscaler or KpaFactory(settings.kpa_config),
        settings.cold_start,
        model_rng(seed, COLD_START_RNG, index),
        record_kpa_ticks=record_kpa_ticks,
        concurrency_from_completions=settings.tuner_concurrency == "completions",
    )
    control.steady_enabled = settings.skip_steady_ticks and not record_kpa_ticks
    control.quiet_enabled = settings.skip_steady_ticks
    engine = choose_engine(trace, settings)
    run = run_fluid if engine == "fluid" else run_exact
    out = run(trace.arrivals_s, trace.service_s, control, end_s)
    return RevisionRun(trace.model.name, engine, out, control.stats)


@dataclass
class PolicyRun:
    """A policy over the whole workload: the figures, plus what the plots need."""

    policy: str
    figures: PolicyFigures
    latency_quantiles_s: np.ndarray  # at LATENCY_CDF_PROBABILITIES
    timelines: dict[str, list[tuple[float, int]]]
    engines: dict[str, str]
    compute_s: float = 0.0  # CPU seconds spent running its revisions (summed over processes)


LATENCY_CDF_PROBABILITIES = np.concatenate(
    [np.linspace(0.0, 0.99, 100), 1.0 - np.logspace(-2, -5, 40)[1:]]
)


@dataclass
class RevisionOutcome:
    """What one revision's run adds to its policy's figures (small enough to pass between
    processes: no trace, no KPA)."""

    name: str
    engine: str
    requests: int
    latency_s: np.ndarray
    met: np.ndarray
    cold: np.ndarray
    stats: RevisionStats


def revision_outcome(
    trace: ModelTrace, index: int, policy: Policy, settings: SimSettings, seed: int, end_s: float
) -> RevisionOutcome:
    """Run one revision under ``policy`` and keep what ``combine`` needs."""
    run = run_revision(trace, index, policy, settings, seed, end_s)
    lat = run.requests.latency_s
    met = lat <= trace.model.objective_s(trace.service_s) + 1e-9
    return RevisionOutcome(
        trace.model.name, run.engine, trace.requests, lat, met, run.requests.cold, run.stats
    )


def combine(
    workload: Workload, policy_name: str, outcomes: list[RevisionOutcome], settings: SimSettings
) -> PolicyRun:
    """A policy's figures from its revisions' outcomes, in the workload's model order."""
    # a model without requests in the slice never scales: not one of the busiest
    busy = [t for t in workload.traces if t.requests]
    busiest = sorted(busy, key=lambda t: -t.requests)[: settings.timeline_models]
    busiest_names = {t.model.name for t in busiest}
    timelines: dict[str, list[tuple[float, int]]] = {}
    engines: dict[str, str] = {}
    per_model_cold: list[float] = []
    for out in outcomes:
        if out.requests:
            per_model_cold.append(float(out.cold.mean()))
        engines[out.name] = out.engine
        if out.name in busiest_names:
            timelines[out.name] = out.stats.timeline
    all_lat = np.concatenate([o.latency_s for o in outcomes]) if outcomes else np.zeros(0)
    figs = figures(
        all_lat,
        np.concatenate([o.met for o in outcomes]) if outcomes else np.zeros(0, dtype=bool),
        np.concatenate([o.cold for o in outcomes]) if outcomes else np.zeros(0, dtype=bool),
        np.asarray(per_model_cold),
        [o.stats for o in outcomes],
        models=len(workload.traces),
        fluid_models=sum(1 for e in engines.values() if e == "fluid"),
    )
    quantiles = (
        np.quantile(all_lat, LATENCY_CDF_PROBABILITIES)
        if all_lat.size
        else np.zeros(LATENCY_CDF_PROBABILITIES.size)
    )
    return PolicyRun(policy_name, figs, quantiles, timelines, engines)


def run_policy(
    workload: Workload,
    policy: Policy,
    settings: SimSettings,
    *,
    progress: Callable[[int], None] | None = None,
) -> PolicyRun:
    """Every revision of the workload under ``policy``; ``progress(requests_done)`` as it goes.

    Serial, in this process; ``autoscaler.sim.parallel.run_policies`` spreads policies and
    revisions over worker processes with the same results.
    """
    started = time.process_time()
    outcomes: list[RevisionOutcome] = []
    for index, trace in enumerate(workload.traces):
        outcomes.append(
            revision_outcome(trace, index, policy, settings, workload.seed, workload.duration_s)
        )
        if progress is not None:
            progress(trace.requests)
    run = combine(workload, policy.name, outcomes, settings)
    run.compute_s = time.process_time() - started
    return run
