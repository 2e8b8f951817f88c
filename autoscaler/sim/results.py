"""The figures of a run and the layout of ``results.json``: stable keys, documented here.

``results.json``::

    {
      "schema": 1,
      "seed": <int>,                         # the seed every random draw came from
      "trace": {"format", "source", "arrival_note", "citation", "duration_s", "models",
                "requests", "assumed": {"<figure>": {"value", "source"}}, "notes": [...],
                "slice": {"functions", "minutes"}},
      "settings": {"cold_start_median_s", "cold_start_sigma", "container_concurrency",
                   "engine", "tuner_concurrency",
                   "fluid_min_rps", "kpa_tick_s", "objective_slowdown", "objective_floor_s"},
      "policies": {
        "<policy name>": {
          "requests":                      requests served,
          "within_objective_share":        share of requests whose latency (cold start and
                                           queueing included) met their objective,
          "latency_p50_s", "latency_p99_s", "latency_p999_s":  latency percentiles, seconds,
          "cold_start_share":              share of requests that arrived with no ready replica,
          "cold_start_share_p75_per_model": 75th percentile over models (with requests) of each
                                           model's cold-start share ("Serverless in the Wild"),
          "replica_seconds":               integral of replicas (starting and ready) over time,
          "idle_memory_mb_s":              wasted memory-time: memory of replicas with nothing in
                                           flight (starting replicas included), MB x s,
          "scaling_changes":               times a revision's desired replica count changed,
          "models", "fluid_models":        revisions simulated, and how many by the fluid engine
        }, ...
      },
      "ratios": {"<baseline>": {"<figure>": modelscale / baseline, ...}, ...}
    }

Policy names: ``knative-default``, ``kserve-default``, ``keepalive-10m``,
``hybrid-histogram``, ``oracle``, ``modelscale``, ``modelscale-fixed-10m`` (see
``autoscaler.sim.policies``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from autoscaler.sim.revision import RevisionStats

SCHEMA = 1
FIGURE_KEYS = (
    "requests",
    "within_objective_share",
    "latency_p50_s",
    "latency_p99_s",
    "latency_p999_s",
    "cold_start_share",
    "cold_start_share_p75_per_model",
    "replica_seconds",
    "idle_memory_mb_s",
    "scaling_changes",
    "models",
    "fluid_models",
)
RATIO_KEYS = (
    "within_objective_share",
    "latency_p99_s",
    "cold_start_share",
    "cold_start_share_p75_per_model",
    "replica_seconds",
    "idle_memory_mb_s",
    "scaling_changes",
)


@dataclass(frozen=True)
class PolicyFigures:
    requests: int
    within_objective_share: float
    latency_p50_s: float
    latency_p99_s: float
    latency_p999_s: float
    cold_start_share: float
    cold_start_share_p75_per_model: float
    replica_seconds: float
    idle_memory_mb_s: float
    scaling_changes: int
    models: int
    fluid_models: int

    def as_dict(self) -> dict[str, float | int]:
        return {k: _round(v) for k, v in asdict(self).items()}


def _round(v: float | int) -> float | int:
    """Nine significant digits: stable text for equal runs, plenty for any figure."""
    if isinstance(v, int):
        return v
    return float(f"{v:.9g}")


def figures(
    latency_s: np.ndarray,
    met: np.ndarray,
    cold: np.ndarray,
    per_model_cold_share: np.ndarray,
    stats: Sequence[RevisionStats],
    *,
    models: int,
    fluid_models: int,
) -> PolicyFigures:
    n = int(latency_s.size)
    pct = np.percentile(latency_s, [50, 99, 99.9]) if n else np.zeros(3)
    return PolicyFigures(
        requests=n,
        within_objective_share=float(met.mean()) if n else 1.0,
        latency_p50_s=float(pct[0]),
        latency_p99_s=float(pct[1]),
        latency_p999_s=float(pct[2]),
        cold_start_share=float(cold.mean()) if n else 0.0,
        cold_start_share_p75_per_model=(
            float(np.percentile(per_model_cold_share, 75)) if per_model_cold_share.size else 0.0
        ),
        replica_seconds=float(sum(s.replica_s for s in stats)),
        idle_memory_mb_s=float(sum(s.idle_mb_s for s in stats)),
        scaling_changes=int(sum(s.scaling_changes for s in stats)),
        models=models,
        fluid_models=fluid_models,
    )


def ratios(
    policies: dict[str, PolicyFigures], ours: str = "modelscale"
) -> dict[str, dict[str, float | None]]:
    """``ours / baseline`` for each baseline and each figure of ``RATIO_KEYS``."""
    if ours not in policies:
        return {}
    mine = policies[ours].as_dict()
    out: dict[str, dict[str, float | None]] = {}
    for name, figs in policies.items():
        if name == ours:
            continue
        base = figs.as_dict()
        out[name] = {
            k: (_round(float(mine[k]) / float(base[k])) if base[k] else None) for k in RATIO_KEYS
        }
    return out


@dataclass(frozen=True)
class Aim:
    """One aim of modelscale against a baseline: ``value`` must be ``<= limit``."""

    name: str
    value: float | None  # None: a baseline missing, or a ratio to zero
    limit: float

    @property
    def met(self) -> bool:
        return self.value is not None and self.value <= self.limit


def aims(policies: dict[str, PolicyFigures], ours: str = "modelscale") -> list[Aim]:
    """The functions-trace aims of the simulator's issue, as ratios that must stay under limits:

    - against ``keepalive-10m``: at most half its p75 per-model cold-start share, and no more
      wasted memory-time;
    - against ``knative-default``: at most a fifth of its requests outside the objective;
    - against ``oracle``: at most 1.1 x its replica-seconds, at an equal or better share within
      the objective (its share over ours at most 1).
    """
    mine = policies.get(ours)

    def ratio(a: float, b: float) -> float | None:
        return a / b if b else (0.0 if a == 0 else None)

    def against(base: str, name: str, limit: float, f: Callable[[PolicyFigures, PolicyFigures], float | None]) -> Aim:  # fmt: skip
        other = policies.get(base)
        value = f(mine, other) if mine is not None and other is not None else None
        return Aim(f"{name} vs {base}", value, limit)

    return [
        against("keepalive-10m", "p75 cold-start share ratio", 0.5,
                lambda m, b: ratio(m.cold_start_share_p75_per_model, b.cold_start_share_p75_per_model)),
        against("keepalive-10m", "idle memory-time ratio", 1.0,
                lambda m, b: ratio(m.idle_memory_mb_s, b.idle_memory_mb_s)),
        against("knative-default", "requests outside the objective ratio", 0.2,
                lambda m, b: ratio(1.0 - m.within_objective_share, 1.0 - b.within_objective_share)),
        against("oracle", "replica-seconds ratio", 1.1,
                lambda m, b: ratio(m.replica_seconds, b.replica_seconds)),
        against("oracle", "within-objective share, oracle / ours", 1.0,
                lambda m, b: ratio(b.within_objective_share, m.within_objective_share)),
    ]  # fmt: skip
