"""The target stage's judgement of an interval against the objective, as data: the outcome
(meets, misses, misses with requests not sharing a replica, settling, nothing to judge), the
percentile and the concurrency judged, carried from the decision into the recommendation."""

from __future__ import annotations

from dataclasses import dataclass, replace

import pytest
from tuner_plant import obs

from autoscaler.tuner import (
    Judgement,
    ModelScalerSpec,
    RevisionObservation,
    TunerConfig,
    new_state,
    recommend,
)

SPEC = ModelScalerSpec("m", objective_latency_ms=200)
CONFIG = TunerConfig()


@dataclass(frozen=True)
class Case:
    steps: tuple[tuple[float, RevisionObservation | None], ...]  # (now, observation)
    outcome: str | None  # of the last step; None: nothing judged
    latency_ms: float | None = None  # approximately (interpolated in a bucket)
    concurrency: float | None = None
    from_target: float | None = None
    spec: ModelScalerSpec = SPEC


CASES = {
    # 4 replicas at 3.5 each, p95 50 ms against 200 ms
    "meets": Case(((30, obs(30, 3.5, 4, 50, 5.0)),), "meets", 50, 3.5, 5.0),
    # 14 conc/replica at p95 900 ms: a miss the target controls (it backs off)
    "misses": Case(((30, obs(30, 14, 1, 900, 20.0)),), "misses", 900, 14, 20.0),
    # half a request per replica at p95 900 ms: the model's own latency, not the target's doing
    "misses-unshared": Case(((30, obs(30, 0.5, 4, 900, 5.0)),), "misses_unshared", 900, 0.5, 5.0),
    "no-requests": Case(((30, obs(30, 0.0, 0, 50, 10.0, n=0)),), "no_requests", None, None, 10.0),
    "too-few": Case(((30, obs(30, 0.003, 3, 50, 10.0, n=5)),), "too_few", None, None, 10.0),
    # a back-off at 30; the interval [10, 40] began before it: the old target's latencies
    "settling": Case(
        ((30, obs(30, 14, 1, 900, 20.0)), (40, obs(40, 7, 2, 400, 10.0))),
        "settling",
        400,
        7,
        10.0,
    ),
    "fail-static": Case(((30, None),), None),
    "off": Case(((30, obs(30, 3.5, 4, 50, 5.0)),), None, spec=replace(SPEC, update_mode="Off")),
}


@pytest.mark.parametrize("name", list(CASES))
def test_the_recommendation_carries_the_judgement(name: str) -> None:
    case = CASES[name]
    state = new_state("rev-1")
    for now, observation in case.steps:
        rec, state = recommend(observation, case.spec, CONFIG, state, now)
    judged = rec.judgement
    if case.outcome is None:
        assert judged is None, rec.reasons
        return
    assert judged is not None and judged.outcome == case.outcome, (judged, rec.reasons)
    if case.latency_ms is None:
        assert judged.latency_ms is None
    else:
        assert judged.latency_ms == pytest.approx(case.latency_ms, rel=0.2)  # read from buckets
    assert judged.concurrency == case.concurrency
    assert judged.from_target == case.from_target
    assert rec.latency_ms == judged.latency_ms, "the same percentile as the decision's"


def test_a_miss_under_one_request_per_replica_holds_and_says_so() -> None:
    """The reported case: p95 50 ms on a model whose one request takes about 200 ms. The target
    holds (a lower one only adds idle replicas) and the judgement says why: not a miss the
    target can fix."""
    spec = replace(SPEC, objective_latency_ms=50)
    rec, _ = recommend(obs(30, 0.8, 3, 213, 1.43), spec, CONFIG, new_state("rev-1"), 30)
    assert rec.judgement == Judgement(
        "misses_unshared", 1.43, rec.latency_ms, 0.8, "this interval"
    ), rec.reasons
    assert rec.target == 1.43
    assert "not the target's doing" in rec.reasons[0]


def test_a_new_revision_starting_from_its_predecessors_target_is_not_judged() -> None:
    from autoscaler.tuner import inherit_state

    _, old = recommend(obs(30, 3.5, 4, 50, 5.0), SPEC, CONFIG, new_state("rev-1"), 30)
    state = inherit_state(old, "rev-2", CONFIG.target.inherit_evidence_fraction)
    rec, _ = recommend(obs(60, 3.5, 4, 50, None), SPEC, CONFIG, state, 60)
    assert rec.reasons[0].startswith("new revision: starting from rev-1")
    assert rec.judgement is None
