"""Kubernetes Events and CloudEvents for applied changes."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from cloudevents.http import from_http

from tests.kube.kit import ISVC, MSC, REV, TICK_S, Cluster, ready_model, sees


class RecordingSink:
    """A CloudEvents sink on 127.0.0.1 that keeps what it receives."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], Any]] = []

    async def handle(self, request: web.Request) -> web.Response:
        headers = dict(request.headers)
        self.received.append((headers, from_http(headers, await request.read())))
        return web.Response(status=202)


@pytest.fixture
async def sink() -> AsyncIterator[tuple[RecordingSink, str]]:
    recorder = RecordingSink()
    app = web.Application()
    app.router.add_post("/", recorder.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield recorder, f"http://127.0.0.1:{port}/"
    await runner.cleanup()


async def ticks(ctl: Any, clock: Any, n: int) -> None:
    """``n`` of the controller's ticks, the clock a tick further before each."""
    for _ in range(n):
        clock.advance(TICK_S)
        await ctl.tick()


async def test_an_event_per_applied_change(
    cluster: Cluster, make_controller: Any, clock: Any
) -> None:
    ctl = make_controller()
    rev = await ready_model(cluster, ctl)
    clock.advance(TICK_S)
    await ctl.tick()  # target unset -> 50, retention unset -> 0s (min-scale already 0)
    clock.advance(TICK_S)
    await ctl.tick()  # target 50 -> 25
    clock.advance(TICK_S)
    await ctl.tick()  # settled: no event

    events = cluster.events()
    assert sorted(e.reason for e in events) == [
        "KeepAliveChanged",
        "TargetChanged",
        "TargetChanged",
    ]
    for e in events:
        assert (e.involved_object.kind, e.involved_object.name) == ("ModelScaler", "m1")
        assert e.type == "Normal" and rev in e.message
    messages = sorted(e.message for e in events if e.reason == "TargetChanged")
    assert "autoscaling.knative.dev/target 50 -> 25" in messages[0]
    assert "autoscaling.knative.dev/target unset -> 50" in messages[1]


async def test_cloudevent_reaches_the_sink(
    cluster: Cluster, make_controller: Any, clock: Any, sink: tuple[RecordingSink, str]
) -> None:
    recorder, url = sink
    ctl = make_controller(sink_url=url)
    rev = await ready_model(cluster, ctl)
    clock.advance(TICK_S)
    await ctl.tick()
    await ctl.notifier.drain()

    assert len(recorder.received) == 1
    headers, event = recorder.received[0]
    assert headers["ce-specversion"] == "1.0", "binary mode"
    assert headers["Content-Type"] == "application/json"
    assert event["datacontenttype"] == "application/json", "a subscriber sees JSON data"
    assert event["type"] == "modelscale.scaling.changed"
    assert event["source"] == "modelscale/tuner"
    data = event.data
    assert (data["namespace"], data["model"], data["revision"]) == ("default", "m1", rev)
    assert data["new"]["autoscaling.knative.dev/target"] == "50"
    assert data["old"]["autoscaling.knative.dev/target"] is None
    assert data["reasons"] and "misses the 200 ms objective" in data["reasons"][0]
    assert ctl.metrics.value("modelscale_tuner_cloudevents_sent_total") == 1


async def test_an_unreachable_sink_is_counted_not_fatal(
    cluster: Cluster, make_controller: Any, clock: Any
) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctl = make_controller(sink_url=f"http://127.0.0.1:{port}/", sink_timeout_s=0.5)
    rev = await ready_model(cluster, ctl)
    clock.advance(TICK_S)
    report = await ctl.tick()
    assert report.models[("default", "m1")].written[0].name == rev
    await ctl.notifier.drain()
    assert ctl.metrics.value("modelscale_tuner_errors_total", {"kind": "cloudevent"}) == 1


async def test_a_busy_window_is_announced_with_its_own_reason_and_shown_in_status(
    cluster: Cluster, make_controller: Any, clock: Any
) -> None:
    """The fake source's 40 requests a second make the model busy once ten minutes of rate are
    known: the window is written with its event, and the status shows it and counts it in the
    keep-alive (15 s window + 585 s retention: 600 s)."""
    ctl = make_controller()
    rev = await ready_model(cluster, ctl)
    await ticks(ctl, clock, 70)  # ten minutes of rate (decayed over an hour: some 11 of the clock)
    windows = [e for e in cluster.events() if e.reason == "StableWindowChanged"]
    assert len(windows) == 1, [e.reason for e in cluster.events()]
    assert "autoscaling.knative.dev/window unset -> 15s" in windows[0].message
    assert "busy:" in windows[0].message and "requests/s" in windows[0].message
    revision = cluster.get(REV, rev)
    assert revision["metadata"]["annotations"]["autoscaling.knative.dev/window"] == "15s"
    # its mark, in the same patch: the tuner's own window is told from a user's edit by it
    assert revision["metadata"]["annotations"]["modelscale.dev/window-written"] == "15s"
    status = cluster.get(MSC, "m1")["status"]
    assert status["recommendation"]["stableWindowSeconds"] == 15
    assert status["keepAlive"] == "600s"


async def test_a_window_set_on_the_inferenceservice_is_left_to_the_user(
    cluster: Cluster, make_controller: Any, clock: Any
) -> None:
    window = {"autoscaling.knative.dev/window": "2m"}
    rev = cluster.deploy("m1", annotations=window)
    cluster.patch(REV, rev, {"metadata": {"annotations": window}})  # KServe copies it over
    cluster.scaler("m1")
    ctl = make_controller()
    await sees(ctl, REV, rev)
    await sees(ctl, ISVC, "m1", lambda o: bool((o.get("status") or {}).get("components")))
    await ticks(ctl, clock, 70)
    assert not [e for e in cluster.events() if e.reason == "StableWindowChanged"]
    annotations = cluster.get(REV, rev)["metadata"]["annotations"]
    assert annotations["autoscaling.knative.dev/window"] == "2m"
    # the fallback's 600 s after the last request, on the user's 120 s window
    assert annotations["autoscaling.knative.dev/scale-to-zero-pod-retention-period"] == "480s"
    status = cluster.get(MSC, "m1")["status"]
    assert "stableWindowSeconds" not in status["recommendation"]
    assert status["keepAlive"] == "600s"


async def test_a_users_edit_of_the_tuners_window_on_the_revision_is_kept(
    cluster: Cluster, make_controller: Any, clock: Any
) -> None:
    ctl = make_controller()
    rev = await ready_model(cluster, ctl)
    await ticks(ctl, clock, 70)  # busy: the tuner writes its 15 s window (test above)
    assert (
        cluster.get(REV, rev)["metadata"]["annotations"]["autoscaling.knative.dev/window"] == "15s"
    )
    cluster.patch(
        REV, rev, {"metadata": {"annotations": {"autoscaling.knative.dev/window": "30s"}}}
    )
    await sees(
        ctl,
        REV,
        rev,
        lambda o: o["metadata"]["annotations"].get("autoscaling.knative.dev/window") == "30s",
    )
    await ticks(
        ctl, clock, 4
    )  # the tuner's last write is two ticks old by then: the edit is the user's
    annotations = cluster.get(REV, rev)["metadata"]["annotations"]
    assert annotations["autoscaling.knative.dev/window"] == "30s"
    # the fallback's 600 s on the user's 30 s window
    assert annotations["autoscaling.knative.dev/scale-to-zero-pod-retention-period"] == "570s"
    assert len([e for e in cluster.events() if e.reason == "StableWindowChanged"]) == 1
    status = cluster.get(MSC, "m1")["status"]
    assert "stableWindowSeconds" not in status["recommendation"]
    assert status["keepAlive"] == "600s"


async def test_a_users_removal_of_the_tuners_window_is_seen_and_written_again(
    cluster: Cluster, make_controller: Any, clock: Any
) -> None:
    """The mark stays when a user deletes the window: the revision runs on Knative's default
    again, and the tuner, which still wants its short window for a busy model, writes it again
    (before the mark, it went on believing its window was there)."""
    ctl = make_controller()
    rev = await ready_model(cluster, ctl)
    await ticks(ctl, clock, 70)
    window = "autoscaling.knative.dev/window"
    assert cluster.get(REV, rev)["metadata"]["annotations"][window] == "15s"
    cluster.patch(REV, rev, {"metadata": {"annotations": {window: None}}})
    await sees(ctl, REV, rev, lambda o: window not in o["metadata"]["annotations"])
    await ticks(ctl, clock, 4)
    assert cluster.get(REV, rev)["metadata"]["annotations"][window] == "15s"
    changes = [e for e in cluster.events() if e.reason == "StableWindowChanged"]
    assert len(changes) == 2
    assert f"{window} unset -> 15s" in changes[1].message


async def test_a_marked_window_is_learned_back_after_the_checkpoint_is_lost(
    cluster: Cluster, make_controller: Any, clock: Any, source: Any
) -> None:
    """The checkpoint is lost whole (malformed) while the tuner's 15 s window is on the
    revision, and the model has gone quiet: the new leader starts from nothing, yet the mark
    tells it the window is its own, so it gives the window back to Knative's default once the
    quiet rate is known (before the mark, the 15 s window stayed until the next rollout)."""
    first = make_controller()
    rev = await ready_model(cluster, first)
    await ticks(first, clock, 70)
    window = "autoscaling.knative.dev/window"
    assert cluster.get(REV, rev)["metadata"]["annotations"][window] == "15s"
    await first.stop()
    cluster.patch_status(MSC, "m1", {"checkpoint": "v1:not-a-checkpoint"})
    source.requests_per_tick = 0

    second = make_controller(identity="tuner-1")
    await ticks(second, clock, 80)
    assert second.metrics.value("modelscale_tuner_errors_total", {"kind": "checkpoint"}) == 1
    annotations = cluster.get(REV, rev)["metadata"]["annotations"]
    assert annotations[window] == "60s"
    assert annotations["modelscale.dev/window-written"] == "60s"
    changes = sorted(e.message for e in cluster.events() if e.reason == "StableWindowChanged")
    assert len(changes) == 2, changes
    assert f"{window} 15s -> 60s" in changes[0], changes


async def test_a_canary_of_a_busy_model_inherits_its_share_of_the_rate(
    cluster: Cluster, make_controller: Any, clock: Any, source: Any
) -> None:
    """A model at 0.1 requests/s is busy (0.03 and up) and has the tuner's 15 s window. A
    canary that gets 10 % of its traffic starts from a tenth of the model's rate, 0.01/s: not
    busy, so it keeps Knative's window while the old revision keeps its short one."""
    source.requests_per_tick = 1  # 0.1/s at a tick of 10 s
    ctl = make_controller()
    rev1 = await ready_model(cluster, ctl)
    await ticks(ctl, clock, 70)
    window = "autoscaling.knative.dev/window"
    assert cluster.get(REV, rev1)["metadata"]["annotations"][window] == "15s"
    rev2 = cluster.roll_out("m1", 2)
    split = [
        {"revisionName": rev1, "percent": 90},
        {"revisionName": rev2, "percent": 10, "latestRevision": True},
    ]
    predictor = {"latestReadyRevision": rev2, "latestRolledoutRevision": rev1, "traffic": split}
    cluster.patch_status(ISVC, "m1", {"components": {"predictor": predictor}})
    await sees(ctl, REV, rev2)
    await sees(
        ctl, ISVC, "m1", lambda o: len(o["status"]["components"]["predictor"]["traffic"]) == 2
    )
    await ticks(ctl, clock, 3)
    assert window not in cluster.get(REV, rev2)["metadata"]["annotations"]
    assert cluster.get(REV, rev1)["metadata"]["annotations"][window] == "15s"
    status = cluster.get(MSC, "m1")["status"]
    assert {r["name"] for r in status["revisions"]} == {rev1, rev2}
