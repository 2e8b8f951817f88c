"""updateMode and apply against the embedded API server: what each writes, and where."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from autoscaler.kube.controller import MODELSCALERS
from tests.kube.kit import (
    ISVC,
    MIN_SCALE,
    MSC,
    PA,
    RETENTION,
    REV,
    TARGET,
    TICK_S,
    Cluster,
    ready_model,
    sees,
    wait_for,
)


def annotations(obj: dict[str, Any]) -> dict[str, str]:
    return obj["metadata"].get("annotations") or {}


def condition(status: dict[str, Any], type_: str) -> dict[str, Any]:
    return next(c for c in status["conditions"] if c["type"] == type_)


async def test_auto_writes_three_annotations_on_the_live_revision_only(
    cluster: Cluster, make_controller: Any, clock: Any
) -> None:
    ctl = make_controller()
    rev = await ready_model(cluster, ctl)
    isvc_before = cluster.get(ISVC, "m1")
    pa_before = cluster.get(PA, rev)

    clock.advance(TICK_S)
    report = await ctl.tick()

    after = annotations(cluster.get(REV, rev))
    # Target 100 in force -> 70 concurrent per replica -> 2450 ms: backs off to half.
    assert after[TARGET] == "50"
    assert after[RETENTION] == "540s"  # thin history: the fallback 10-minute keep-alive
    assert after[MIN_SCALE] == "0"
    assert [w.kind for w in report.models[("default", "m1")].written] == ["Revision"]
    assert len(cluster.list(REV)) == 1, "no new revision"
    isvc_after = cluster.get(ISVC, "m1")
    assert isvc_after["metadata"]["resourceVersion"] == isvc_before["metadata"]["resourceVersion"]
    assert annotations(cluster.get(PA, rev)) == annotations(pa_before)

    status = cluster.get(MSC, "m1")["status"]
    assert status["mode"] == "Auto"
    assert status["target"] == 50
    assert status["keepAlive"] == "600s"
    assert status["replicas"] == 2
    assert status["applied"]["revision"] == rev
    assert status["applied"]["annotations"][TARGET] == "50"
    assert condition(status, "Applied")["status"] == "True"
    assert condition(status, "RecommendationReady")["status"] == "True"
    assert condition(status, "MetricsAvailable")["status"] == "True"
    assert status["checkpoint"].startswith("v1:")
    assert status["recommendation"]["reasons"]

    clock.advance(TICK_S)
    await ctl.tick()
    assert annotations(cluster.get(REV, rev))[TARGET] == "25"
    clock.advance(TICK_S)
    third = await ctl.tick()
    assert third.models[("default", "m1")].written == (), "settled: nothing to write"
    assert annotations(cluster.get(REV, rev))[TARGET] == "25"


async def test_recommend_writes_status_only(
    cluster: Cluster, make_controller: Any, clock: Any
) -> None:
    ctl = make_controller()
    rev = await ready_model(cluster, ctl, updateMode="Recommend")
    before = cluster.get(REV, rev)

    clock.advance(TICK_S)
    await ctl.tick()

    assert (
        cluster.get(REV, rev)["metadata"]["resourceVersion"]
        == before["metadata"]["resourceVersion"]
    )
    status = cluster.get(MSC, "m1")["status"]
    assert status["mode"] == "Recommend"
    # Recommend is not step-limited: it points where the miss says, past Auto's first /2 step.
    assert status["recommendation"]["target"] < 50
    assert status["target"] == 100, "the target in force is still Knative's default"
    assert "applied" not in status
    assert condition(status, "Applied")["reason"] == "RecommendOnly"


async def test_off_writes_nothing_and_recommends_nothing(
    cluster: Cluster, make_controller: Any, clock: Any, source: Any
) -> None:
    ctl = make_controller()
    rev = await ready_model(cluster, ctl, updateMode="Off")
    before = cluster.get(REV, rev)

    clock.advance(TICK_S)
    await ctl.tick()

    assert (
        cluster.get(REV, rev)["metadata"]["resourceVersion"]
        == before["metadata"]["resourceVersion"]
    )
    status = cluster.get(MSC, "m1").get("status") or {}
    assert "recommendation" not in status and "applied" not in status
    assert status["mode"] == "Off"
    assert source.calls == [], "Off reads no metrics"
    assert cluster.events() == []


async def test_pause_annotation_is_honoured(
    cluster: Cluster, make_controller: Any, clock: Any
) -> None:
    ctl = make_controller()
    rev = cluster.deploy("m1", annotations={"modelscale.dev/paused": "true"})
    cluster.scaler("m1")
    await sees(ctl, MSC, "m1")
    await sees(ctl, REV, rev)
    await sees(ctl, ISVC, "m1", lambda o: bool((o.get("status") or {}).get("components")))
    before = cluster.get(REV, rev)

    clock.advance(TICK_S)
    await ctl.tick()

    assert (
        cluster.get(REV, rev)["metadata"]["resourceVersion"]
        == before["metadata"]["resourceVersion"]
    )
    status = cluster.get(MSC, "m1")["status"]
    assert condition(status, "Applied")["reason"] == "Paused"
    assert "modelscale.dev/paused" in condition(status, "Applied")["message"]
    assert any("paused" in r for r in status["recommendation"]["reasons"])

    # Unpaused: the next tick applies.
    cluster.patch(ISVC, "m1", {"metadata": {"annotations": {"modelscale.dev/paused": None}}})
    await sees(ctl, ISVC, "m1", lambda o: "modelscale.dev/paused" not in annotations(o))
    clock.advance(TICK_S)
    await ctl.tick()
    assert TARGET in annotations(cluster.get(REV, rev))


async def test_apply_podautoscaler_patches_the_pa(
    cluster: Cluster, make_controller: Any, clock: Any
) -> None:
    ctl = make_controller()
    rev = await ready_model(cluster, ctl, apply="podautoscaler")
    rev_before = cluster.get(REV, rev)

    clock.advance(TICK_S)
    await ctl.tick()
    pa = annotations(cluster.get(PA, rev))
    assert (pa[TARGET], pa[RETENTION], pa[MIN_SCALE]) == ("50", "540s", "0")
    assert (
        cluster.get(REV, rev)["metadata"]["resourceVersion"]
        == rev_before["metadata"]["resourceVersion"]
    )

    # The next decision builds on what is in force on the PodAutoscaler (50), not the
    # Revision's unchanged annotations.
    clock.advance(TICK_S)
    await ctl.tick()
    assert annotations(cluster.get(PA, rev))[TARGET] == "25"
    assert cluster.get(MSC, "m1")["status"]["target"] == 25


async def test_apply_inferenceservice_patches_the_spec(
    cluster: Cluster, make_controller: Any, clock: Any
) -> None:
    ctl = make_controller()
    rev = await ready_model(cluster, ctl, apply="inferenceservice")
    rev_before = cluster.get(REV, rev)

    clock.advance(TICK_S)
    await ctl.tick()
    isvc = cluster.get(ISVC, "m1")
    assert isvc["spec"]["predictor"]["scaleTarget"] == 50
    assert isvc["spec"]["predictor"]["minReplicas"] == 0
    assert annotations(isvc)[RETENTION] == "540s"
    assert (
        cluster.get(REV, rev)["metadata"]["resourceVersion"]
        == rev_before["metadata"]["resourceVersion"]
    )

    # The runtime rolls out revision 2 carrying the values; the tuner does not write again
    # just because the revision is new (that would roll out for ever).
    rev2 = cluster.roll_out("m1", 2)
    cluster.patch(REV, rev2, {"metadata": {"annotations": {TARGET: "50", RETENTION: "0s"}}})
    await sees(ctl, REV, rev2, lambda o: TARGET in annotations(o))
    await sees(
        ctl,
        ISVC,
        "m1",
        lambda o: o["status"]["components"]["predictor"]["latestReadyRevision"] == rev2,
    )
    generation = cluster.get(ISVC, "m1")["metadata"]["generation"]
    clock.advance(TICK_S)
    await ctl.tick()
    isvc = cluster.get(ISVC, "m1")
    # 50 -> 25 is a real change and is written (one rollout); a new revision alone is not.
    assert isvc["spec"]["predictor"]["scaleTarget"] == 25
    assert isvc["metadata"]["generation"] == generation + 1


async def test_apply_inferenceservice_keeps_a_users_min_replicas_and_not_its_own(
    cluster: Cluster, make_controller: Any, clock: Any
) -> None:
    """minReplicas written by another manager (a manifest, an edit) is a floor the tuner does
    not write below; a value the tuner wrote itself is no floor."""
    from autoscaler.kube.apply import FIELD_MANAGER

    ctl = make_controller()
    await ready_model(cluster, ctl, apply="inferenceservice")
    clock.advance(TICK_S)
    await ctl.tick()
    assert cluster.get(ISVC, "m1")["spec"]["predictor"]["minReplicas"] == 0

    # A user keeps the model warm: the tuner leaves it (it wrote 0 over it before).
    cluster.custom.patch_namespaced_custom_object(
        *ISVC[:2],
        "default",
        ISVC[2],
        "m1",
        {"spec": {"predictor": {"minReplicas": 1}}},
        field_manager="kubectl-edit",
    )
    await sees(ctl, ISVC, "m1", lambda o: o["spec"]["predictor"].get("minReplicas") == 1)
    generation = cluster.get(ISVC, "m1")["metadata"]["generation"]
    for _ in range(2):
        clock.advance(TICK_S)
        await ctl.tick()
    isvc = cluster.get(ISVC, "m1")
    assert isvc["spec"]["predictor"]["minReplicas"] == 1
    assert isvc["spec"]["predictor"]["scaleTarget"] == 25  # the target is still tuned
    assert cluster.get(MSC, "m1")["status"]["recommendation"]["minScale"] == 1
    assert isvc["metadata"]["generation"] == generation + 1  # the target's write alone

    # The same field last written by the tuner is its own value: set back to what it plans.
    cluster.custom.patch_namespaced_custom_object(
        *ISVC[:2],
        "default",
        ISVC[2],
        "m1",
        {"spec": {"predictor": {"minReplicas": 2}}},
        field_manager=FIELD_MANAGER,
    )
    await sees(ctl, ISVC, "m1", lambda o: o["spec"]["predictor"].get("minReplicas") == 2)
    clock.advance(TICK_S)
    await ctl.tick()
    assert cluster.get(ISVC, "m1")["spec"]["predictor"]["minReplicas"] == 0


async def test_a_second_modelscaler_for_a_model_is_invalid_and_the_first_keeps_tuning(
    cluster: Cluster, make_controller: Any, clock: Any
) -> None:
    ctl = make_controller()
    rev = await ready_model(cluster, ctl)
    body = {
        "apiVersion": "modelscale.dev/v1alpha1",
        "kind": "ModelScaler",
        "metadata": {"name": "m1-again"},
        "spec": {"targetRef": {"name": "m1"}, "objective": {"latencyMs": 900}},
    }
    cluster.create(MSC, body)  # created after m1's: m1 is the oldest naming the model
    await sees(ctl, MSC, "m1-again")

    clock.advance(TICK_S)
    report = await ctl.tick()
    second = cluster.get(MSC, "m1-again")["status"]
    invalid = condition(second, "Invalid")
    assert (invalid["status"], invalid["reason"]) == ("True", "InvalidSpec")
    assert invalid["message"].startswith(
        "spec.targetRef.name: InferenceService default/m1 is governed by ModelScaler m1,"
    )
    assert report.models[("default", "m1-again")].written == ()
    # the first reads its metrics and writes as if alone (as test_auto_writes_...: 100 -> 50)
    assert annotations(cluster.get(REV, rev))[TARGET] == "50"
    assert condition(cluster.get(MSC, "m1")["status"], "Invalid")["status"] == "False"

    # deleting the first hands the model over
    cluster.custom.delete_namespaced_custom_object(*MSC[:2], "default", MSC[2], "m1")
    gone = lambda: ctl.cached(MODELSCALERS, "default", "m1") is None  # noqa: E731
    await asyncio.to_thread(wait_for, gone, 10.0, "m1 gone from the cache")
    clock.advance(TICK_S)
    await ctl.tick()
    assert condition(cluster.get(MSC, "m1-again")["status"], "Invalid")["status"] == "False"


@pytest.mark.parametrize("mode", ["Auto", "Recommend"])
async def test_a_missing_inferenceservice_is_reported(
    cluster: Cluster, make_controller: Any, clock: Any, mode: str
) -> None:
    ctl = make_controller()
    cluster.scaler("ghost", updateMode=mode)
    await sees(ctl, MSC, "ghost")
    await ctl.tick()
    status = cluster.get(MSC, "ghost")["status"]
    assert condition(status, "RecommendationReady")["reason"] == "TargetNotFound"
    assert "default/ghost" in condition(status, "RecommendationReady")["message"]
