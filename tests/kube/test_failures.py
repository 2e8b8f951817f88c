"""Fail-static on metric failures, and surviving an API server restarted under the controller."""

from __future__ import annotations

from typing import Any

from autoscaler.apiserver.server import APIServer
from tests.kube.kit import ISVC, MSC, REV, TARGET, TICK_S, Cluster, ready_model, sees


def annotations(obj: dict[str, Any]) -> dict[str, str]:
    return obj["metadata"].get("annotations") or {}


def condition(status: dict[str, Any], type_: str) -> dict[str, Any]:
    return next(c for c in status["conditions"] if c["type"] == type_)


async def test_metrics_down_holds_values_and_says_so(
    cluster: Cluster, make_controller: Any, clock: Any, source: Any
) -> None:
    ctl = make_controller()
    rev = await ready_model(cluster, ctl)
    clock.advance(TICK_S)
    await ctl.tick()
    applied = annotations(cluster.get(REV, rev))
    assert applied[TARGET] == "50"

    source.down = True
    for _ in range(3):
        clock.advance(TICK_S)
        report = await ctl.tick()
        assert report.metrics_error and "down" in report.metrics_error
    assert annotations(cluster.get(REV, rev)) == applied, "fail-static: nothing lowered or raised"
    status = cluster.get(MSC, "m1")["status"]
    metrics = condition(status, "MetricsAvailable")
    assert (metrics["status"], metrics["reason"]) == ("False", "MetricsUnavailable")
    assert "the fake source is down" in metrics["message"]
    assert status["recommendation"]["failStatic"] is True
    assert condition(status, "RecommendationReady")["reason"] == "FailStatic"
    assert status["target"] == 50
    assert ctl.metrics.value("modelscale_tuner_errors_total", {"kind": "metrics"}) == 3

    # One revision without data is the same, with its name in the message.
    source.down = False
    source.missing = {rev}
    clock.advance(TICK_S)
    await ctl.tick()
    metrics = condition(cluster.get(MSC, "m1")["status"], "MetricsAvailable")
    assert (metrics["reason"], rev in metrics["message"]) == ("NoData", True)
    assert "the fake source has no series of it" in metrics["message"]  # the source's reason

    source.missing = set()
    clock.advance(TICK_S)
    await ctl.tick()
    assert condition(cluster.get(MSC, "m1")["status"], "MetricsAvailable")["status"] == "True"
    assert annotations(cluster.get(REV, rev))[TARGET] == "25", "learning resumes"


async def test_survives_an_api_server_restart(
    cluster: Cluster, make_controller: Any, clock: Any, tmp_path: Any
) -> None:
    ctl = make_controller()
    rev = await ready_model(cluster, ctl)
    clock.advance(TICK_S)
    await ctl.tick()
    handle = cluster.server
    old = handle.server
    handle.call(old.stop())

    clock.advance(TICK_S)
    down = await ctl.tick()  # the write of 25 fails after its retries; nothing crashes
    assert down.models[("default", "m1")].errors
    assert ctl.metrics.value("modelscale_tuner_errors_total", {"kind": "write"}) == 1

    new = APIServer(old.data_dir, port=old.port)
    handle.call(new.start())
    try:
        # The informers relist: a change made after the restart reaches the cache.
        cluster.patch(ISVC, "m1", {"metadata": {"labels": {"probe": "after-restart"}}})
        await sees(
            ctl,
            ISVC,
            "m1",
            lambda o: o["metadata"].get("labels", {}).get("probe") == "after-restart",
        )
        clock.advance(TICK_S)
        up = await ctl.tick()
        assert up.models[("default", "m1")].errors == ()
        assert annotations(cluster.get(REV, rev))[TARGET] == "25", "the held change goes through"
        assert condition(cluster.get(MSC, "m1")["status"], "Applied")["status"] == "True"
    finally:
        await ctl.stop()
        handle.call(new.stop())


async def test_one_models_tuner_failure_does_not_stop_the_others(
    cluster: Cluster, make_controller: Any, clock: Any, monkeypatch: Any
) -> None:
    from autoscaler.kube import reconciler

    ctl = make_controller()
    bad = await ready_model(cluster, ctl)
    good = cluster.deploy("m2")
    cluster.scaler("m2")
    await sees(ctl, MSC, "m2")
    await sees(ctl, REV, good)
    await sees(ctl, ISVC, "m2", lambda o: bool((o.get("status") or {}).get("components")))
    real = reconciler.recommend

    def failing(obs: Any, spec: Any, config: Any, state: Any, now: float) -> Any:
        if state.revision == bad:
            raise ValueError("a broken histogram")
        return real(obs, spec, config, state, now)

    monkeypatch.setattr(reconciler, "recommend", failing)
    clock.advance(TICK_S)
    report = await ctl.tick()
    assert report.leader
    assert TARGET in annotations(cluster.get(REV, good)), "the other model is tuned"
    assert TARGET not in annotations(cluster.get(REV, bad))
    status = cluster.get(MSC, "m1")["status"]
    applied = condition(status, "Applied")
    assert (applied["status"], applied["reason"]) == ("False", "TunerError")
    assert "ValueError: a broken histogram" in applied["message"]
    assert ctl.metrics.value("modelscale_tuner_errors_total", {"kind": "reconcile"}) == 1
