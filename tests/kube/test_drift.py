"""The tuner's values checked against the live object each tick, on the embedded API server.

What the tuner applied is compared with what the object carries, not only remembered: an
annotation removed or edited outside the tuner is written again in Auto mode, an object
deleted and created again under the same name (an InferenceService re-created: its revisions
get the same names) is a new revision, and status describes the object as read.
"""

from __future__ import annotations

import asyncio
from typing import Any

from autoscaler.kube.controller import REVISIONS
from autoscaler.tuner import decode_checkpoint
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
    sees,
    wait_for,
)

TUNED = (TARGET, RETENTION, MIN_SCALE)


def annotations(obj: dict[str, Any]) -> dict[str, str]:
    return obj["metadata"].get("annotations") or {}


def condition(status: dict[str, Any], type_: str) -> dict[str, Any]:
    return next(c for c in status["conditions"] if c["type"] == type_)


async def tuned_model(
    cluster: Cluster, ctl: Any, clock: Any, ticks: int = 2, **spec: Any
) -> tuple[str, dict[str, str]]:
    """A model the tuner has written ``ticks`` times: its revision and the values on it."""
    rev = cluster.deploy("m1")
    cluster.scaler("m1", **spec)
    await sees(ctl, MSC, "m1")
    await sees(ctl, REV, rev)
    await sees(ctl, ISVC, "m1", lambda o: bool((o.get("status") or {}).get("components")))
    for _ in range(ticks):
        clock.advance(TICK_S)
        await ctl.tick()
    return rev, annotations(cluster.get(REV, rev))


async def test_a_recreated_inferenceservice_is_tuned_again(
    cluster: Cluster, make_controller: Any, clock: Any
) -> None:
    ctl = make_controller()
    rev, before = await tuned_model(cluster, ctl, clock)
    assert before[TARGET] == "25"

    for kind, name in ((ISVC, "m1"), (REV, rev), (PA, rev)):  # Knative deletes the rest
        cluster.custom.delete_namespaced_custom_object(kind[0], kind[1], "default", kind[2], name)
    await asyncio.to_thread(wait_for, lambda: ctl.cached(REVISIONS, "default", rev) is None)
    clock.advance(TICK_S)
    await ctl.tick()
    assert condition(cluster.get(MSC, "m1")["status"], "Applied")["reason"] == "TargetNotFound"

    assert cluster.deploy("m1") == rev  # the same names again, another object
    uid = cluster.get(REV, rev)["metadata"]["uid"]
    await sees(ctl, REV, rev, lambda o: o["metadata"]["uid"] == uid)
    await sees(ctl, ISVC, "m1", lambda o: bool((o.get("status") or {}).get("components")))
    clock.advance(TICK_S)
    report = await ctl.tick()

    after = annotations(cluster.get(REV, rev))
    assert all(k in after for k in TUNED), after
    # a new revision: it starts from what the old one learned, and nothing counts as applied
    assert after[TARGET] == before[TARGET]
    (written,) = report.models[("default", "m1")].written
    assert {TARGET, RETENTION} <= set(written.new)  # min-scale 0 is there already
    status = cluster.get(MSC, "m1")["status"]
    assert status["target"] == float(after[TARGET])
    assert condition(status, "Applied")["reason"] == "InForce"
    assert decode_checkpoint(status["checkpoint"])[rev].uid == uid


async def test_an_annotation_removed_outside_the_tuner_is_written_again(
    cluster: Cluster, make_controller: Any, clock: Any
) -> None:
    ctl = make_controller()
    rev, before = await tuned_model(cluster, ctl, clock)
    cluster.patch(REV, rev, {"metadata": {"annotations": {TARGET: None}}})
    await sees(ctl, REV, rev, lambda o: TARGET not in annotations(o))
    events = len(cluster.events("TargetChanged"))

    clock.advance(TICK_S)
    report = await ctl.tick()
    after = annotations(cluster.get(REV, rev))
    assert after[TARGET] == before[TARGET]
    assert {k: after[k] for k in before} == before, "the rest left as it was"
    assert [dict(w.new) for w in report.models[("default", "m1")].written] == [
        {TARGET: before[TARGET]}
    ]
    assert len(cluster.events("TargetChanged")) == events + 1
    (restored,) = [e for e in cluster.events("TargetChanged") if "written again" in e.message]
    assert f"target unset -> {before[TARGET]}" in restored.message
    status = cluster.get(MSC, "m1")["status"]
    assert status["target"] == float(before[TARGET])
    assert any("written again" in r for r in status["recommendation"]["reasons"])

    # nothing differs any more: nothing is written
    await sees(ctl, REV, rev, lambda o: TARGET in annotations(o))
    clock.advance(TICK_S)
    report = await ctl.tick()
    assert all(not w.new for w in report.models[("default", "m1")].written)


async def test_an_edited_annotation_is_set_back_and_others_are_left_alone(
    cluster: Cluster, make_controller: Any, clock: Any
) -> None:
    """In Auto mode target, retention and min-scale are the tuner's (spec.target and
    spec.replicas bound them; Recommend, Off or the pause annotation leave them to the user):
    an edit of one is set back. Annotations it does not own stay as the user set them."""
    ctl = make_controller()
    rev, before = await tuned_model(cluster, ctl, clock)
    user = {
        RETENTION: "30s",
        "autoscaling.knative.dev/metric": "concurrency",
        "example.com/team": "search",
    }
    cluster.patch(REV, rev, {"metadata": {"annotations": user}})
    await sees(ctl, REV, rev, lambda o: annotations(o)[RETENTION] == "30s")

    clock.advance(TICK_S)
    await ctl.tick()
    after = annotations(cluster.get(REV, rev))
    assert after[RETENTION] == before[RETENTION]
    assert after["autoscaling.knative.dev/metric"] == "concurrency"
    assert after["example.com/team"] == "search"


async def test_status_shows_the_revision_as_read_when_nothing_is_written(
    cluster: Cluster, make_controller: Any, clock: Any
) -> None:
    """Switched to Recommend, the tuner writes nothing; an annotation removed since is not in
    force, and status says so (Knative's default target), not what the tuner once applied."""
    ctl = make_controller()
    rev, _ = await tuned_model(cluster, ctl, clock)
    cluster.patch(MSC, "m1", {"spec": {"updateMode": "Recommend"}})
    cluster.patch(REV, rev, {"metadata": {"annotations": {TARGET: None}}})
    await sees(ctl, MSC, "m1", lambda o: o["spec"]["updateMode"] == "Recommend")
    await sees(ctl, REV, rev, lambda o: TARGET not in annotations(o))

    clock.advance(TICK_S)
    await ctl.tick()
    assert TARGET not in annotations(cluster.get(REV, rev))
    status = cluster.get(MSC, "m1")["status"]
    assert status["target"] == 100, "Knative's default is in force"
    assert condition(status, "Applied")["reason"] == "RecommendOnly"


async def test_an_annotation_removed_from_the_podautoscaler_is_written_again(
    cluster: Cluster, make_controller: Any, clock: Any
) -> None:
    ctl = make_controller()
    rev, _ = await tuned_model(cluster, ctl, clock, apply="podautoscaler")
    before = annotations(cluster.get(PA, rev))
    assert before[TARGET] == "25"
    cluster.patch(PA, rev, {"metadata": {"annotations": {TARGET: None, MIN_SCALE: None}}})

    clock.advance(TICK_S)
    report = await ctl.tick()
    after = annotations(cluster.get(PA, rev))
    assert (after[TARGET], after[MIN_SCALE]) == (before[TARGET], before[MIN_SCALE])
    assert [dict(w.new) for w in report.models[("default", "m1")].written] == [
        {TARGET: before[TARGET], MIN_SCALE: before[MIN_SCALE]}
    ]
    assert cluster.get(MSC, "m1")["status"]["target"] == float(before[TARGET])


async def test_a_leader_resuming_takes_what_the_object_carries_past_the_checkpoint(
    cluster: Cluster, make_controller: Any, clock: Any
) -> None:
    # A leader wrote a value and stopped before its status (and checkpoint) said so: the next
    # leader resumes from the older checkpoint, and must not write the checkpoint's value back
    # over the newer one (that would apply a change twice), nor take the newer one for an edit.
    ctl = make_controller()
    rev, before = await tuned_model(cluster, ctl, clock)
    checkpoint = decode_checkpoint(cluster.get(MSC, "m1")["status"]["checkpoint"])
    assert checkpoint[rev].applied is not None
    assert checkpoint[rev].applied.target == float(before[TARGET])
    newer = "20"
    cluster.patch(REV, rev, {"metadata": {"annotations": {TARGET: newer}}})
    events = len(cluster.events("TargetChanged"))

    other = make_controller()  # a new leader: its memory comes from the checkpoint
    await sees(other, MSC, "m1")
    await sees(other, REV, rev, lambda o: annotations(o).get(TARGET) == newer)
    await sees(other, ISVC, "m1", lambda o: bool((o.get("status") or {}).get("components")))
    clock.advance(TICK_S)
    report = await other.tick()
    model = report.models[("default", "m1")]
    rec = model.recommendations[rev]
    # judged at the value in force, and whatever it writes starts there: nothing set back
    assert rec.observation is not None and rec.observation.applied_target == float(newer)
    assert all(w.old.get(TARGET) == newer for w in model.written if TARGET in w.new)
    assert not any("written again" in r for r in rec.reasons)
    assert not any("written again" in e.message for e in cluster.events("TargetChanged")[events:])
    status = cluster.get(MSC, "m1")["status"]
    applied = decode_checkpoint(status["checkpoint"])[rev].applied
    assert applied is not None
    assert applied.target == float(annotations(cluster.get(REV, rev))[TARGET])
