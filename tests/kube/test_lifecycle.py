"""A model's life across revisions and controller restarts: inheritance and the checkpoint."""

from __future__ import annotations

from typing import Any

from tests.kube.kit import ISVC, MSC, REV, TARGET, TICK_S, Cluster, sees


def annotations(obj: dict[str, Any]) -> dict[str, str]:
    return obj["metadata"].get("annotations") or {}


async def tuned_model(cluster: Cluster, ctl: Any, clock: Any, ticks: int = 2) -> str:
    rev = cluster.deploy("m1")
    cluster.scaler("m1")
    await sees(ctl, MSC, "m1")
    await sees(ctl, REV, rev)
    await sees(ctl, ISVC, "m1", lambda o: bool((o.get("status") or {}).get("components")))
    for _ in range(ticks):
        clock.advance(TICK_S)
        await ctl.tick()
    return rev


def learned_requests(status: dict[str, Any], revision: str) -> float:
    entry = next(r for r in status["revisions"] if r["name"] == revision)
    return sum(p[2] for p in entry["points"])


async def test_new_revision_inherits_the_learned_target(
    cluster: Cluster, make_controller: Any, clock: Any
) -> None:
    ctl = make_controller()
    rev1 = await tuned_model(cluster, ctl, clock)
    assert annotations(cluster.get(REV, rev1))[TARGET] == "25"

    rev2 = cluster.roll_out("m1", 2)  # as the runtime would after a spec change
    await sees(ctl, REV, rev2)
    await sees(
        ctl,
        ISVC,
        "m1",
        lambda o: o["status"]["components"]["predictor"]["latestReadyRevision"] == rev2,
    )
    clock.advance(TICK_S)
    report = await ctl.tick()

    assert annotations(cluster.get(REV, rev2))[TARGET] == "25", "starts where revision 1 ended"
    rec = report.models[("default", "m1")].recommendations[rev2]
    assert rec.reasons[0].startswith(f"new revision: starting from {rev1}")
    status = cluster.get(MSC, "m1")["status"]
    assert [r["name"] for r in status["revisions"]] == [rev2]
    assert status["revisions"][0]["inheritedFrom"] == rev1
    assert status["recommendation"]["revision"] == rev2
    assert annotations(cluster.get(REV, rev1))[TARGET] == "25", "the old revision is left alone"


async def test_checkpoint_survives_a_controller_restart(
    cluster: Cluster, make_controller: Any, clock: Any
) -> None:
    first = make_controller()
    rev = await tuned_model(cluster, first, clock, ticks=3)
    before = cluster.get(MSC, "m1")["status"]
    await first.stop()

    second = make_controller(identity="tuner-1")
    clock.advance(TICK_S)
    report = await second.tick()

    model = report.models[("default", "m1")]
    assert model.written == (), "resumed: nothing to re-apply"
    rec = model.recommendations[rev]
    assert rec.target == 25
    assert "holding" in rec.reasons[0]
    after = cluster.get(MSC, "m1")["status"]
    # Four ticks of evidence (three before the restart): a fresh start would have one.
    assert learned_requests(after, rev) > learned_requests(before, rev) > 400 * 2
    assert second.metrics.value("modelscale_tuner_errors_total", {"kind": "checkpoint"}) == 0


async def test_a_malformed_checkpoint_is_ignored_not_fatal(
    cluster: Cluster, make_controller: Any, clock: Any
) -> None:
    first = make_controller()
    rev = await tuned_model(cluster, first, clock, ticks=1)
    await first.stop()
    cluster.patch_status(MSC, "m1", {"checkpoint": "v1:not-a-checkpoint"})

    second = make_controller(identity="tuner-1")
    clock.advance(TICK_S)
    report = await second.tick()

    assert second.metrics.value("modelscale_tuner_errors_total", {"kind": "checkpoint"}) == 1
    assert rev in report.models[("default", "m1")].recommendations
    status = cluster.get(MSC, "m1")["status"]
    assert status["checkpoint"].startswith("v1:") and status["checkpoint"] != "v1:not-a-checkpoint"


async def test_a_rollback_goes_on_from_what_the_revision_learned_itself(
    cluster: Cluster, make_controller: Any, clock: Any
) -> None:
    ctl = make_controller()
    rev1 = await tuned_model(cluster, ctl, clock, ticks=3)
    learned_before = learned_requests(cluster.get(MSC, "m1")["status"], rev1)
    rev2 = cluster.roll_out("m1", 2)
    await sees(ctl, REV, rev2)
    clock.advance(TICK_S)
    await ctl.tick()

    # rolled back: all the traffic to revision 1 again (rev2 keeps existing, at 0 %)
    back = [{"revisionName": rev1, "percent": 100, "latestRevision": False}]
    cluster.patch_status(
        ISVC,
        "m1",
        {"components": {"predictor": {"latestRolledoutRevision": rev1, "traffic": back}}},
    )
    await sees(
        ctl,
        ISVC,
        "m1",
        lambda o: o["status"]["components"]["predictor"]["traffic"][0]["revisionName"] == rev1,
    )
    clock.advance(TICK_S)
    report = await ctl.tick()

    rec = report.models[("default", "m1")].recommendations[rev1]
    assert not rec.reasons[0].startswith("new revision"), rec.reasons
    status = cluster.get(MSC, "m1")["status"]
    entry = next(r for r in status["revisions"] if r["name"] == rev1)
    assert entry.get("inheritedFrom") != rev2, entry
    # its own evidence, and one more tick of it, not revision 2's share of it
    assert learned_requests(status, rev1) > learned_before


async def test_the_keep_alive_weighs_the_memory_the_revision_declares(
    cluster: Cluster, make_controller: Any, clock: Any
) -> None:
    """The revision's container asks for 4 GiB: its warm seconds weigh 4096/1536 of the
    reference replica's, so with history still thin it keeps 600 x 1536/4096 = 225 s, not 600."""
    ctl = make_controller()
    rev = cluster.deploy("m1", resources={"requests": {"memory": "4Gi", "cpu": "1"}})
    cluster.scaler("m1")
    await sees(ctl, MSC, "m1")
    await sees(ctl, REV, rev)
    await sees(ctl, ISVC, "m1", lambda o: bool((o.get("status") or {}).get("components")))
    clock.advance(TICK_S)
    report = await ctl.tick()
    rec = report.models[("default", "m1")].recommendations[rev]
    assert rec.windows is not None
    assert (rec.windows.kind, rec.windows.warm_until_s) == ("fallback", 225.0)
    assert "a 4096 MB replica: its seconds weigh 2.7 times the 1536 MB" in rec.windows.reason
    status = cluster.get(MSC, "m1")["status"]
    assert "4096 MB replica" in " ".join(status["recommendation"].get("reasons") or [])
