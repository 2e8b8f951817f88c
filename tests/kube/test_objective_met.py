"""The ObjectiveMet condition: whether the serving revisions meet the latency objective, from
the target stage's own judgement of each one's latest interval.

Unit cases render the tuner's real recommendations (no stand-ins for our code); the cluster
cases tick a controller against the embedded API server on a manual clock, and read the
condition the way a user does: the object, ``kubectl get`` and ``kubectl wait``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import pytest
import yaml

from autoscaler.apiserver.schema import check, compile_schema
from autoscaler.kube import model as m
from autoscaler.kube.explain import render
from autoscaler.kube.reconciler import _objective_condition
from autoscaler.kube.scaler_status import Condition, build_status
from autoscaler.kube.world import ServingRevision
from autoscaler.tuner import (
    LATENCY_BUCKETS_MS,
    ModelScalerSpec,
    Recommendation,
    RevisionObservation,
    TunerConfig,
    inherit_state,
    new_state,
    recommend,
)
from tests.kube.conftest import FakeMetricSource
from tests.kube.kit import MODELSCALER_CRD, MSC, TICK_S, Cluster, ready_model, sees

SPEC = ModelScalerSpec("m1", objective_latency_ms=200)
CONFIG = TunerConfig()


def observed(t: float, c: float, replicas: int, p95_ms: float, target: float | None, n: int = 400) -> RevisionObservation:  # fmt: skip
    """A 30 s interval: ``n`` requests, all in the bucket holding ``p95_ms``."""
    counts = [0.0] * (len(LATENCY_BUCKETS_MS) + 1)
    if n:
        counts[next(i for i, b in enumerate(LATENCY_BUCKETS_MS) if b >= p95_ms)] = float(n)
    return RevisionObservation(
        t_s=t,
        interval_s=30.0,
        ready_replicas=replicas,
        avg_concurrency_per_replica=c,
        request_count=n,
        latency_counts=tuple(counts),
        applied_target=target,
    )


def decided(
    steps: list[tuple[float, RevisionObservation | None]],
    spec: ModelScalerSpec = SPEC,
    revision: str = "m1-predictor-00001",
) -> Recommendation:
    """The tuner's recommendation after ``steps`` of (now, observation)."""
    state = new_state(revision)
    rec = None
    for now, obs in steps:
        rec, state = recommend(obs, spec, CONFIG, state, now)
    assert rec is not None
    return rec


@dataclass(frozen=True)
class Case:
    steps: list[tuple[float, RevisionObservation | None]]
    status: bool | None
    reason: str
    says: tuple[str, ...]  # in the message
    spec: ModelScalerSpec = SPEC
    paused: bool = False


# p95 50 ms on a model whose one request takes about 200 ms: the reported case
STRICT = replace(SPEC, objective_latency_ms=50)

CASES = {
    "met": Case(
        [(30, observed(30, 3.5, 4, 40, 5.0))],
        True,
        "Met",
        ("revision m1-predictor-00001: p95", "at 3.5 conc/replica", "meets the 200 ms objective"),
    ),
    "missed-backs-off": Case(
        [(30, observed(30, 14, 1, 900, 20.0))],
        False,
        "Missed",
        (
            "misses the 200 ms objective at a concurrency the target controls",
            "the tuner is backing off, target 20 -> 10",
        ),
    ),
    "missed-recommend-only": Case(
        [(30, observed(30, 14, 1, 900, 20.0))],
        False,
        "Missed",
        ("the tuner recommends backing off, target 20 -> ", "(not applied)"),
        spec=replace(SPEC, update_mode="Recommend"),
    ),
    "missed-while-paused": Case(
        [(30, observed(30, 14, 1, 900, 20.0))],
        False,
        "Missed",
        ("would back off", "paused"),
        spec=replace(SPEC, update_mode="Recommend"),
        paused=True,
    ),
    "unattainable": Case(
        [(30, observed(30, 0.8, 3, 200, 1.43))],
        False,
        "Unattainable",
        (
            "at 0.8 conc/replica",
            "with requests not sharing a replica",
            "the 50 ms objective is below the model's own p95 of ",
            "relax spec.objective.latencyMs or make the model faster",
        ),
        spec=STRICT,
    ),
    "no-requests": Case(
        [(30, observed(30, 0.0, 0, 50, 10.0, n=0))], None, "NoData", ("no requests",)
    ),
    "too-few-requests": Case(
        [(30, observed(30, 0.003, 3, 50, 10.0, n=5))], None, "NoData", ("5 requests", "too few")
    ),
    "no-metrics": Case([(30, None)], None, "NoData", ("no metrics for this revision",)),
    "settling": Case(
        [(30, observed(30, 14, 1, 900, 20.0)), (40, observed(40, 7, 2, 400, 10.0))],
        None,
        "Settling",
        ("a change taking effect (a new target", "is not the target's", "target 10"),
    ),
    "off": Case(
        [(30, observed(30, 3.5, 4, 40, 5.0))],
        None,
        "Off",
        ("updateMode Off",),
        spec=replace(SPEC, update_mode="Off"),
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_each_reason(name: str) -> None:
    case = CASES[name]
    rec = decided(case.steps, case.spec)
    cond = m.objective_condition(rec, case.spec, case.paused)
    assert (cond.type, cond.status, cond.reason) == ("ObjectiveMet", case.status, case.reason), (
        cond,
        rec.reasons,
    )
    for text in case.says:
        assert text in cond.message, (text, cond.message)


def test_a_new_revision_on_its_predecessors_target_is_settling() -> None:
    _, old = recommend(observed(30, 3.5, 4, 40, 5.0), SPEC, CONFIG, new_state("a"), 30)
    state = inherit_state(old, "b", CONFIG.target.inherit_evidence_fraction)
    rec, _ = recommend(observed(60, 3.5, 4, 40, None), SPEC, CONFIG, state, 60)
    cond = m.objective_condition(rec, SPEC, False)
    assert (cond.status, cond.reason) == (None, "Settling"), cond


@pytest.mark.parametrize(
    "conditions",
    [
        m.not_ready_conditions("TargetNotFound", "InferenceService default/m1 not found"),
        m.invalid_conditions(["spec.target.min (10) must be <= spec.target.max (5)"]),
        m.failed_conditions("ValueError: boom"),
    ],
    ids=["target-not-found", "invalid-spec", "tuner-error"],
)
def test_nothing_to_judge_is_unknown_with_the_other_conditions_reason(
    conditions: list[Condition],
) -> None:
    by_type = {c.type: c for c in conditions}
    objective = by_type["ObjectiveMet"]
    assert objective.status is None
    assert objective.reason == by_type["MetricsAvailable"].reason


# A canary: 00001 at 80 %, 00002 at 20 %.
OLD = ServingRevision("default", "m1-predictor-00001", 1, 80)
NEW = ServingRevision("default", "m1-predictor-00002", 2, 20)
MEETS = [(30.0, observed(30, 3.5, 4, 40, 5.0))]
MISSES = [(30.0, observed(30, 14, 1, 900, 20.0))]
UNSHARED = [(30.0, observed(30, 0.5, 4, 900, 5.0))]
IDLE = [(30.0, observed(30, 0.0, 0, 50, 10.0, n=0))]

CANARY = {
    # (old's steps, new's steps): expected status, reason, and what the message names
    "both-meet": (MEETS, MEETS, True, "Met", "m1-predictor-00002 (20% of traffic): p95"),
    "the-canary-misses": (
        MEETS,
        MISSES,
        False,
        "Missed",
        "00002 (20% of traffic): p95 895 ms at 14 conc/replica",
    ),
    "the-old-one-misses": (
        MISSES,
        MEETS,
        False,
        "Missed",
        "00001 (80% of traffic): p95 895 ms at 14 conc/replica",
    ),
    "the-canary-cannot": (MEETS, UNSHARED, False, "Unattainable", "not sharing a replica"),
    "one-misses-one-cannot": (UNSHARED, MISSES, False, "Missed", "backing off"),
    "the-canary-idle": (MEETS, IDLE, None, "NoData", "m1-predictor-00002 (20% of traffic): no"),
}


@pytest.mark.parametrize("name", list(CANARY))
def test_a_canary_names_each_revision_with_its_share(name: str) -> None:
    old_steps, new_steps, status, reason, says = CANARY[name]
    recs = [
        (decided(old_steps, revision=OLD.name), OLD),
        (decided(new_steps, revision=NEW.name), NEW),
    ]
    cond = _objective_condition(recs, SPEC, paused=False)
    assert (cond.type, cond.status, cond.reason) == ("ObjectiveMet", status, reason), cond
    assert says in cond.message, cond.message
    assert cond.message.startswith("revision m1-predictor-00001 (80% of traffic): ")
    assert "; revision m1-predictor-00002 (20% of traffic): " in cond.message


def test_the_transition_time_changes_only_with_the_status() -> None:
    met = m.objective_condition(decided(MEETS), SPEC, False)
    met_again = replace(met, message=met.message + " (another interval)")
    missed = m.objective_condition(decided(MISSES), SPEC, False)
    first = build_status(previous=None, generation=1, mode="Auto", conditions=[met], now_wall_s=0)
    second = build_status(
        previous=first, generation=1, mode="Auto", conditions=[met_again], now_wall_s=60
    )
    third = build_status(
        previous=second, generation=1, mode="Auto", conditions=[missed], now_wall_s=120
    )
    times = [s["conditions"][0]["lastTransitionTime"] for s in (first, second, third)]
    assert times == ["1970-01-01T00:00:00Z", "1970-01-01T00:00:00Z", "1970-01-01T00:02:00Z"]


def _status_schema_check(condition_type: str) -> list[str]:
    crd = yaml.safe_load(MODELSCALER_CRD.read_text())
    schema = compile_schema(crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"])
    cond = {"type": condition_type, "status": "False", "reason": "Unattainable", "message": "x"}
    obj = {"spec": {"targetRef": {"name": "m1"}, "objective": {"latencyMs": 50}}}
    out = check(schema, {**obj, "status": {"conditions": [cond]}})
    return [e.field for e in out.errors]


def test_the_crd_schema_accepts_the_condition() -> None:
    assert _status_schema_check("ObjectiveMet") == []
    assert _status_schema_check("ObjectiveMissed") != [], "the enum still checks the type"


def test_explain_has_a_line_for_the_objective() -> None:
    rec = decided([(30, observed(30, 0.8, 3, 200, 1.43))], STRICT)
    cond = m.objective_condition(rec, STRICT, False)
    status = build_status(previous=None, generation=1, mode="Auto", conditions=[cond], now_wall_s=0)
    scaler = {
        "metadata": {"name": "m1"},
        "spec": {"objective": {"percentile": 95, "latencyMs": 50}},
        "status": status,
    }
    lines = render("m1", "default", scaler, {})
    assert lines[1].startswith("  objective   p95 50 ms NOT MET (Unattainable): revision "), lines


# Against the embedded API server, as a user sees it.


def condition(cluster: Cluster, type_: str = "ObjectiveMet") -> dict[str, Any]:
    status = cluster.get(MSC, "m1")["status"]
    return next(c for c in status["conditions"] if c["type"] == type_)


async def test_an_objective_below_the_models_own_latency_is_visible_to_kubectl(
    cluster: Cluster, make_controller: Any, clock: Any, source: FakeMetricSource
) -> None:
    """p95 50 ms on a model whose every request takes 200 ms, under one request per replica:
    the recommendation is ready and applied, and ObjectiveMet says the objective is not met
    and why, where ``kubectl get`` and ``kubectl wait`` see it."""
    source.base_latency_ms = 200.0
    source.offered_concurrency = 0.8
    ctl = make_controller()
    await ready_model(cluster, ctl, objective={"latencyMs": 50})

    clock.advance(TICK_S)
    await ctl.tick()

    assert condition(cluster, "RecommendationReady")["status"] == "True"
    assert condition(cluster, "Applied")["status"] == "True"
    objective = condition(cluster)
    assert (objective["status"], objective["reason"]) == ("False", "Unattainable"), objective
    assert "the 50 ms objective is below the model's own p95 of " in objective["message"]
    assert "relax spec.objective.latencyMs" in objective["message"]
    row = cluster.server.kubectl("get", "msc", "m1").stdout.splitlines()
    assert row[0].split()[-2:] == ["OBJECTIVE", "AGE"] and "Unattainable" in row[1].split()
    waited = cluster.server.kubectl(
        "wait", "msc/m1", "--for=condition=ObjectiveMet=False", "--timeout=5s"
    )
    assert waited.returncode == 0, waited.stderr

    # Another tick alike: the same status, the same transition time.
    since = objective["lastTransitionTime"]
    clock.advance(TICK_S)
    await ctl.tick()
    assert condition(cluster)["lastTransitionTime"] == since

    # The objective relaxed to 500 ms: met, at a later transition time.
    cluster.patch(MSC, "m1", {"spec": {"objective": {"latencyMs": 500}}})
    await sees(ctl, MSC, "m1", lambda o: o["spec"]["objective"]["latencyMs"] == 500)
    clock.advance(TICK_S)
    await ctl.tick()
    objective = condition(cluster)
    assert (objective["status"], objective["reason"]) == ("True", "Met"), objective
    assert "meets the 500 ms objective" in objective["message"]
    assert objective["lastTransitionTime"] > since


async def test_a_miss_the_target_controls_says_the_tuner_backs_off(
    cluster: Cluster, make_controller: Any, clock: Any
) -> None:
    ctl = make_controller()
    await ready_model(cluster, ctl)  # target 100 in force: 70 per replica, 2450 ms p95

    clock.advance(TICK_S)
    await ctl.tick()

    objective = condition(cluster)
    assert (objective["status"], objective["reason"]) == ("False", "Missed"), objective
    assert "the tuner is backing off, target 100 -> 50" in objective["message"]


async def test_update_mode_off_judges_nothing(
    cluster: Cluster, make_controller: Any, clock: Any
) -> None:
    ctl = make_controller()
    await ready_model(cluster, ctl, updateMode="Off")

    clock.advance(TICK_S)
    await ctl.tick()

    objective = condition(cluster)
    assert (objective["status"], objective["reason"]) == ("Unknown", "Off"), objective
