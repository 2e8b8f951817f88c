"""The aims of the comparison: ratios to the named baselines against their limits."""

from __future__ import annotations

import dataclasses

import pytest

from autoscaler.sim.results import PolicyFigures, aims

BASE = PolicyFigures(
    requests=100,
    within_objective_share=0.5,
    latency_p50_s=0.1,
    latency_p99_s=1.0,
    latency_p999_s=2.0,
    cold_start_share=0.1,
    cold_start_share_p75_per_model=0.2,
    replica_seconds=1000.0,
    idle_memory_mb_s=5000.0,
    scaling_changes=10,
    models=2,
    fluid_models=0,
)


def fig(**changes: float) -> PolicyFigures:
    return dataclasses.replace(BASE, **changes)  # type: ignore[arg-type]


CASES = [
    ("all met", fig(within_objective_share=0.95, cold_start_share_p75_per_model=0.1,
                    idle_memory_mb_s=5000.0, replica_seconds=1100.0), [True] * 5),
    ("cold starts not halved", fig(within_objective_share=0.95, cold_start_share_p75_per_model=0.11,
                                   replica_seconds=1000.0), [False, True, True, True, True]),
    ("more idle memory", fig(within_objective_share=0.95, cold_start_share_p75_per_model=0.1,
                             idle_memory_mb_s=5001.0), [True, False, True, True, True]),
    ("too many misses", fig(within_objective_share=0.85, cold_start_share_p75_per_model=0.1),
     [True, True, False, True, False]),
    ("oracle cheaper", fig(within_objective_share=0.95, cold_start_share_p75_per_model=0.1,
                           replica_seconds=1101.0), [True, True, True, False, True]),
]  # fmt: skip


@pytest.mark.parametrize(("ours", "met"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_aims(ours: PolicyFigures, met: list[bool]) -> None:
    oracle = fig(within_objective_share=0.95)
    policies = {
        "keepalive-10m": BASE,
        "knative-default": BASE,
        "oracle": oracle,
        "modelscale": ours,
    }
    assert [a.met for a in aims(policies)] == met


def test_a_missing_baseline_is_not_met() -> None:
    result = aims({"modelscale": BASE})
    assert all(a.value is None and not a.met for a in result)
