"""``modelscale status``: the overview as a terminal table, from the API's objects and, with
``--url``, from a running dashboard's overview API (over real HTTP)."""

from __future__ import annotations

import argparse
import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp import web

from autoscaler.dashboard import mount_dashboard, view
from autoscaler.kube import status
from tests.dashboard.dashkit import (
    T0,
    TICK_S,
    Scenario,
    StaticSource,
    isvc,
    observation,
    revision,
    scaler,
)


def tuned_source() -> StaticSource:
    source = StaticSource()
    source.isvcs += [isvc("gpu", [("gpu-predictor-00001", 100)]),
                     isvc("iris", [("iris-predictor-00001", 100)])]  # fmt: skip
    source.revisions += [revision("gpu", "gpu-predictor-00001", 2, 2),
                         revision("iris", "iris-predictor-00001", 0, 0)]  # fmt: skip
    source.scalers += [scaler("gpu", latency_ms=200), scaler("ghost")]
    sc = Scenario(source, "gpu", "gpu-predictor-00001")
    for i in range(3):
        sc.tick(observation(T0 + i * TICK_S, requests=400, latency_ms=250), T0 + i * TICK_S)
    return source


def test_rows_from_the_objects() -> None:
    s = tuned_source()
    got = status.rows(s.isvcs, s.scalers, s.revisions)
    target = f"{s.scalers[0]['status']['target']:g}"
    assert [r[:9] for r in got] == [
        ("default", "ghost", "-", "-", "-", "-", "-", "pending (no InferenceService)", "-"),
        ("default", "gpu", "gpu-predictor-00001", "100%", "2/2", target, "600s", "Auto",
         "Missed"),
        ("default", "iris", "iris-predictor-00001", "100%", "0/0", "-", "-", "untuned", "-"),
    ]  # fmt: skip
    (gpu,) = [r for r in view.overview(s.snapshot())["models"] if r["model"] == "gpu"]
    assert gpu["objective"]["status"] == "False", "p95 over 200 ms at 3 per replica"
    assert gpu["objective"]["message"].startswith("revision gpu-predictor-00001: p95 ")


def canary_source(per_revision: bool) -> StaticSource:
    """gpu serving 00001 at 80 % and 00002 at 20 %, one replica each, beside a failed 00003
    (routed 0 % under a tag, 0 of 2 replicas ready); the ModelScaler's status as the controller writes it
    (``per_revision``), or as one from before it described each revision."""
    source = StaticSource()
    source.isvcs.append(isvc("gpu", [("gpu-predictor-00001", 80), ("gpu-predictor-00002", 20)]))
    routes = source.isvcs[-1]["status"]["components"]["predictor"]["traffic"]
    routes.append({"revisionName": "gpu-predictor-00003", "percent": 0, "tag": "next"})
    source.revisions += [
        revision("gpu", "gpu-predictor-00001", 1, 1),
        revision("gpu", "gpu-predictor-00002", 1, 1),
        revision("gpu", "gpu-predictor-00003", 2, 0),
    ]
    status: dict[str, Any] = {
        "mode": "Auto",
        "target": 1.43,
        "keepAlive": "600s",
        "replicas": 1,
        "recommendation": {"revision": "gpu-predictor-00002", "target": 1.43},
        "applied": {"revision": "gpu-predictor-00001", "time": "2026-12-01T03:34:26Z"},
    }
    if per_revision:
        status["conditions"] = [
            {"type": "ObjectiveMet", "status": "False", "reason": "Missed",
             "message": "revision gpu-predictor-00002 (20% of traffic): p95 900 ms ... misses"},
        ]  # fmt: skip
        status["revisions"] = [
            {"name": "gpu-predictor-00001", "percent": 80, "readyReplicas": 1, "target": 2.5,
             "keepAlive": "330s", "applied": {"time": "2026-12-01T03:34:26Z"}},
            {"name": "gpu-predictor-00002", "percent": 20, "readyReplicas": 1, "target": 1.43,
             "keepAlive": "600s", "applied": {"time": "2026-12-01T03:30:00Z"}},
        ]  # fmt: skip
    source.scalers.append({**scaler("gpu"), "status": status})
    return source


def test_a_canary_is_a_row_per_serving_revision_and_a_failed_one_is_not_counted() -> None:
    s = canary_source(per_revision=True)
    # whether the objective is met is the model's (its condition names each revision): on the
    # model's first row
    assert status.rows(s.isvcs, s.scalers, s.revisions) == [
        ("default", "gpu", "gpu-predictor-00001", "80%", "1/1", "2.5", "330s", "Auto", "Missed",
         "2026-12-01T03:34:26Z"),
        ("default", "gpu", "gpu-predictor-00002", "20%", "1/1", "1.43", "600s", "Auto", "",
         "2026-12-01T03:30:00Z"),
    ]  # fmt: skip
    (row,) = view.overview(s.snapshot())["models"]
    assert (row["replicasActual"], row["replicasDesired"]) == (2, 2), "00003 takes no traffic"
    assert [r["revision"] for r in row["revisions"]] == [
        "gpu-predictor-00001",
        "gpu-predictor-00002",
    ]


def test_a_canary_from_an_older_status_shows_only_what_it_says() -> None:
    # The status describes the live revision (00002) and names 00001 as the last write.
    s = canary_source(per_revision=False)
    assert status.rows(s.isvcs, s.scalers, s.revisions) == [
        ("default", "gpu", "gpu-predictor-00001", "80%", "1/1", "-", "-", "Auto", "-",
         "2026-12-01T03:34:26Z"),
        ("default", "gpu", "gpu-predictor-00002", "20%", "1/1", "1.43", "600s", "Auto", "", "-"),
    ]  # fmt: skip


@pytest.fixture
def dashboard_url() -> Iterator[str]:
    """A dashboard over ``tuned_source()`` on its own event loop in a thread."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    app = web.Application()
    mount_dashboard(app, tuned_source())
    runner = web.AppRunner(app)

    async def start() -> int:
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        return int(runner.addresses[0][1])

    port = asyncio.run_coroutine_threadsafe(start(), loop).result(10)
    try:
        yield f"http://127.0.0.1:{port}/dashboard/"
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def test_url_reads_a_running_dashboard(
    dashboard_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = argparse.Namespace(url=dashboard_url, namespace=None, kubeconfig=None)
    assert status.run(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:7] == [
        "NAMESPACE",
        "MODEL",
        "REVISION",
        "TRAFFIC",
        "REPLICAS",
        "REQ/S",
        "LATENCY",
    ]
    gpu = next(line for line in lines if " gpu " in line).split()
    # 400 requests in 10 s; all in (200, 250] ms: p95 = 200 + 50 x 0.95 = 247.5 -> red against 200
    assert gpu[:6] == ["default", "gpu", "gpu-predictor-00001", "100%", "2/2", "40.00"]
    assert "●" in gpu and "248/200" in gpu


def test_url_unreachable_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    args = argparse.Namespace(url="http://127.0.0.1:9/dashboard/", namespace=None, kubeconfig=None)
    assert status.run(args) == 1
    assert "modelscale status: reading http://127.0.0.1:9/dashboard/" in capsys.readouterr().err


def test_url_copied_from_the_browser_works(
    dashboard_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    url = dashboard_url + "?poll=500#/models/default/gpu"
    assert status.run(argparse.Namespace(url=url, namespace=None, kubeconfig=None)) == 0
    out = capsys.readouterr().out
    assert " gpu " in out
    # a cluster's dashboard cannot see requests wait: its column says what it counts
    assert "FROM ZERO 1H" in out.splitlines()[0] and "COLD STARTS" not in out


def test_url_that_is_not_a_dashboard_is_a_one_line_error(
    dashboard_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    url = dashboard_url + "static"  # the server answers, but has no overview there
    assert status.run(argparse.Namespace(url=url, namespace=None, kubeconfig=None)) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"modelscale status: reading {url}: ")
