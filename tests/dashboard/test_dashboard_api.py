"""The dashboard's JSON API on its own, over real HTTP: empty state, unknown model (404), and a
tuned model whose objects and history were made by the real policy, status builders and tick
feed (``tests/dashboard/dashkit.py``). Also the page and the mounts on the controller's server."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
import urllib3
from aiohttp import web
from aiohttp.test_utils import TestServer
from kubernetes.client.rest import ApiException

from autoscaler.dashboard import make_dashboard_app, mount_dashboard
from autoscaler.kube.telemetry import ControllerMetrics, make_app
from tests.dashboard.dashkit import (
    NS,
    T0,
    TICK_S,
    Scenario,
    StaticSource,
    isvc,
    observation,
    revision,
    scaler,
)

MODEL_ROUTES = ["", "/timeseries", "/capacity", "/idle", "/decisions", "/traffic"]


class Client:
    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self.session, self.base = session, base

    async def get(self, path: str) -> tuple[int, Any]:
        async with self.session.get(self.base + path) as resp:
            body = (
                await resp.json() if resp.content_type == "application/json" else await resp.text()
            )
            return resp.status, body


@pytest.fixture
def source() -> StaticSource:
    return StaticSource()


@pytest.fixture
async def api(source: StaticSource) -> AsyncIterator[Client]:
    server = TestServer(make_dashboard_app(source), host="127.0.0.1")
    await server.start_server()
    async with aiohttp.ClientSession() as session:
        yield Client(session, str(server.make_url("")).rstrip("/"))
    await server.close()


def tuned(source: StaticSource) -> Scenario:
    """gpu: two revisions 20/80, the live one tuned over six ticks; iris: untuned, at zero."""
    source.isvcs += [isvc("gpu", [("gpu-predictor-00001", 20), ("gpu-predictor-00002", 80)]),
                     isvc("iris", [("iris-predictor-00001", 100)])]  # fmt: skip
    source.revisions += [
        revision("gpu", "gpu-predictor-00001", 1, 1),
        revision("gpu", "gpu-predictor-00002", 2, 2),
        revision("iris", "iris-predictor-00001", 0, 0),
    ]
    source.scalers.append(scaler("gpu", latency_ms=200))
    sc = Scenario(source, "gpu", "gpu-predictor-00002")
    for i in range(6):
        sc.tick(observation(T0 + i * TICK_S, requests=400, latency_ms=100), T0 + i * TICK_S)
    return sc


async def test_empty_state_is_200_with_empty_lists(api: Client) -> None:
    assert await api.get("/api/v1/overview") == (200, {"now": T0, "leading": True, "models": []})


@pytest.mark.parametrize("route", MODEL_ROUTES, ids=lambda r: r or "detail")
async def test_unknown_model_is_404_json(api: Client, source: StaticSource, route: str) -> None:
    tuned(source)
    status, body = await api.get(f"/api/v1/models/{NS}/nope{route}")
    assert status == 404
    assert body == {"error": "model default/nope not found (no InferenceService or ModelScaler)"}


@pytest.mark.parametrize("route", MODEL_ROUTES, ids=lambda r: r or "detail")
async def test_model_without_history_is_200_with_empty_lists(
    api: Client, source: StaticSource, route: str
) -> None:
    source.isvcs.append(isvc("iris", [("iris-predictor-00001", 100)]))
    status, body = await api.get(f"/api/v1/models/{NS}/iris{route}")
    assert status == 200
    empty = {
        "/timeseries": {"replicas": {"t": [], "desired": [], "actual": []},
                        "ticks": {"t": [], "revision": [], "concurrencyPerReplica": [],
                                  "target": [], "requestRatePerS": [], "latencyMs": [],
                                  "objectiveMs": []}},
        "/decisions": {"decisions": []},
        "/traffic": {"traffic": [{"revision": "iris-predictor-00001", "percent": 100,
                                  "latest": True, "tag": None, "replicasDesired": 0,
                                  "replicasActual": 0}]},
    }  # fmt: skip
    if route in empty:
        assert body == empty[route]
    elif route == "/capacity":
        assert body["points"] == [] and body["target"] is None
    elif route == "/idle":
        assert body["bins"] == [] and body["samples"] == 0
    else:
        assert body["lastReasons"] == [] and body["explain"] == []
        assert body["overview"]["mode"] == "untuned"


async def test_overview_rows(api: Client, source: StaticSource) -> None:
    tuned(source)
    status, body = await api.get("/api/v1/overview")
    assert status == 200
    gpu, iris = body["models"]
    assert (gpu["model"], gpu["revision"], gpu["mode"]) == ("gpu", "gpu-predictor-00002", "Auto")
    assert (gpu["replicasDesired"], gpu["replicasActual"]) == (3, 3)  # both revisions
    assert gpu["requestRatePerS"] == pytest.approx(40.0)  # 400 requests in 10 s
    # all 400 in (80, 100] ms: p95 interpolates to 80 + 20 x 0.95 = 99 ms
    assert gpu["latencyMs"] == pytest.approx(99.0) and gpu["objectiveMs"] == 200
    assert gpu["latencyState"] == "green"
    assert gpu["target"] is not None and gpu["keepAlive"].endswith("s")
    assert (iris["model"], iris["mode"], iris["latencyState"]) == ("iris", "untuned", "unknown")
    assert iris["requestRatePerS"] is None and iris["coldStartsLastHour"] == 0


async def test_model_detail_has_last_reasons_explain_and_traffic(
    api: Client, source: StaticSource
) -> None:
    tuned(source)
    status, body = await api.get(f"/api/v1/models/{NS}/gpu")
    assert status == 200
    reasons = source.scalers[0]["status"]["recommendation"]["reasons"]
    assert body["lastReasons"] == reasons and reasons
    assert body["explain"][0].startswith("model default/gpu (ModelScaler gpu, mode Auto)")
    assert any(reasons[0] in line for line in body["explain"])
    assert [(t["revision"], t["percent"], t["latest"], t["replicasActual"])
            for t in body["traffic"]] == [("gpu-predictor-00001", 20, False, 1),
                                          ("gpu-predictor-00002", 80, True, 2)]  # fmt: skip


async def test_timeseries_capacity_idle_and_decisions(api: Client, source: StaticSource) -> None:
    sc = tuned(source)
    _, ts = await api.get(f"/api/v1/models/{NS}/gpu/timeseries")
    assert ts["ticks"]["t"] == [T0 + i * TICK_S for i in range(6)]
    assert ts["ticks"]["concurrencyPerReplica"] == [3.0] * 6
    assert ts["ticks"]["objectiveMs"] == [200.0] * 6
    assert ts["replicas"]["actual"][-1] == 3
    _, cap = await api.get(f"/api/v1/models/{NS}/gpu/capacity")
    assert cap["points"] and all(p["latencyMs"] <= 100 for p in cap["points"])
    assert cap["target"] == source.scalers[0]["status"]["recommendation"]["target"]
    assert (cap["objectiveMs"], cap["percentile"]) == (200.0, 95.0)
    _, idle = await api.get(f"/api/v1/models/{NS}/gpu/idle")
    assert idle["keepAliveS"] == source.scalers[0]["status"]["recommendation"]["keepAliveSeconds"]
    _, dec = await api.get(f"/api/v1/models/{NS}/gpu/decisions")
    decisions = dec["decisions"]
    assert decisions and decisions[0]["t_s"] == T0 + 5 * TICK_S, "newest first"
    assert sum(d["repeats"] for d in decisions) == 6, "identical decisions fold, none lost"
    assert decisions[0]["reasons"] == list(
        sc.source.scalers[0]["status"]["recommendation"]["reasons"]
    )
    assert decisions[0]["explain"][0].startswith("revision gpu-predictor-00002")


async def test_live_replica_counts_win_over_revision_status(
    api: Client, source: StaticSource
) -> None:
    tuned(source)
    source.live[(NS, "gpu-predictor-00002")] = (4, 1)
    _, body = await api.get("/api/v1/overview")
    assert (body["models"][0]["replicasDesired"], body["models"][0]["replicasActual"]) == (5, 2)


async def test_page_and_static_files_load_nothing_external(api: Client) -> None:
    status, html = await api.get("/")
    assert status == 200 and "<title>modelscale dashboard</title>" in html
    for name in ("dashboard.js", "dashboard.css"):
        status, text = await api.get(f"/static/{name}")
        assert status == 200 and text
        assert not re.search(r"""(src|href|url\()\s*=?\s*["']?(https?:)?//""", text), name
    assert not re.search(r"""(src|href)=["'](https?:)?//""", html)
    assert (await api.get("/static/nope.js"))[0] == 404


async def test_mounted_on_the_controllers_http_server(source: StaticSource) -> None:
    tuned(source)
    app = make_app(ControllerMetrics(), lambda: True, lambda a: mount_dashboard(a, source))
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as session:
            base = str(server.make_url("")).rstrip("/")
            async with session.get(base + "/healthz") as r:
                assert r.status == 200
            async with session.get(base + "/dashboard/api/v1/overview") as r:
                assert [m["model"] for m in (await r.json())["models"]] == ["gpu", "iris"]
            async with session.get(base + "/dashboard", allow_redirects=False) as r:
                assert (r.status, r.headers["Location"]) == (302, "/dashboard/")
            async with session.get(base + "/dashboard/") as r:
                assert r.status == 200 and "modelscale dashboard" in await r.text()
    finally:
        await server.close()


def test_app_is_an_aiohttp_application(source: StaticSource) -> None:
    assert isinstance(make_dashboard_app(source), web.Application)


async def test_replica_series_ends_with_the_counts_now(api: Client, source: StaticSource) -> None:
    tuned(source)
    source.now_s += 3.0
    source.live[(NS, "gpu-predictor-00002")] = (4, 3)
    _, ts = await api.get(f"/api/v1/models/{NS}/gpu/timeseries")
    assert (ts["replicas"]["t"][-1], ts["replicas"]["desired"][-1]) == (source.now_s, 5)
    assert ts["replicas"]["actual"][-2:] == [3, 4]


FIGURES = ("requestRatePerS", "latencyMs", "latencyState")


async def figures(api: Client) -> tuple[Any, ...]:
    _, body = await api.get("/api/v1/overview")
    row = body["models"][0]
    return tuple(row[k] for k in FIGURES)


async def test_figures_not_observed_once_stale_gone_or_standing_by(
    api: Client, source: StaticSource
) -> None:
    tuned(source)
    last_tick = T0 + 5 * TICK_S
    source.now_s = last_tick + 2 * TICK_S
    assert await figures(api) == (pytest.approx(40.0), pytest.approx(99.0), "green")
    source.now_s = last_tick + 3 * TICK_S  # the tuner stopped observing it
    assert await figures(api) == (None, None, "unknown")
    source.now_s = last_tick
    source.leading = False  # a stand-by: what it recorded when it led is no longer current
    assert await figures(api) == (None, None, "unknown")
    _, body = await api.get("/api/v1/overview")
    assert body["leading"] is False
    _, detail = await api.get(f"/api/v1/models/{NS}/gpu")
    assert detail["leading"] is False and detail["overview"]["latencyMs"] is None
    source.leading = True
    source.isvcs.pop(0)  # the InferenceService is deleted; its ModelScaler remains
    source.revisions[:2] = []
    _, body = await api.get("/api/v1/overview")
    gpu = next(m for m in body["models"] if m["model"] == "gpu")
    assert gpu["hasInferenceService"] is False
    assert (gpu["requestRatePerS"], gpu["latencyMs"], gpu["latencyState"]) == (
        None,
        None,
        "unknown",
    )


async def test_idle_bins_carry_their_real_ends(api: Client, source: StaticSource) -> None:
    tuned(source)
    learned = source.scalers[0]["status"]["revisions"][0]
    learned["idleHistogram"] = {"samples": 12, "bins": [[0.0, 0.5], [600.0, 0.25],
                                                         [7200.0, 0.2], [14400.0, 0.05]]}  # fmt: skip
    _, idle = await api.get(f"/api/v1/models/{NS}/gpu/idle")
    assert [(b["fromS"], b["toS"]) for b in idle["bins"]] == [
        (0.0, 10.0), (600.0, 720.0), (7200.0, 8100.0), (14400.0, None),
    ]  # fmt: skip


async def test_capacity_points_beyond_the_last_bucket_are_kept(
    api: Client, source: StaticSource
) -> None:
    tuned(source)
    learned = source.scalers[0]["status"]["revisions"][0]
    learned["points"] = [[1.0, 20.0, 100.0], [8.0, 1e6, 50.0]]
    _, cap = await api.get(f"/api/v1/models/{NS}/gpu/capacity")
    assert cap["points"] == [
        {"concurrency": 1.0, "latencyMs": 20.0, "requests": 100.0, "beyondLastBucket": False},
        {"concurrency": 8.0, "latencyMs": None, "requests": 50.0, "beyondLastBucket": True},
    ]


async def test_decisions_without_history_have_the_documented_shape(
    api: Client, source: StaticSource
) -> None:
    tuned(source)
    _, recorded = await api.get(f"/api/v1/models/{NS}/gpu/decisions")
    source.recorder = type(source.recorder)()  # a restart: the status is all there is
    status = source.scalers[0]["status"]
    status["recommendation"]["time"] = "2027-01-15T08:00:00Z"
    status["recommendation"]["warmFromSeconds"] = 1200
    _, body = await api.get(f"/api/v1/models/{NS}/gpu/decisions")
    (only,) = body["decisions"]
    assert set(recorded["decisions"][0]) <= set(only)
    stamp = datetime(2027, 1, 15, 8, tzinfo=UTC).timestamp()
    assert only["t_s"] == only["first_t_s"] == stamp
    assert (only["repeats"], only["written"], only["explain"]) == (1, [], [])
    assert only["reasons"] == status["recommendation"]["reasons"]
    _, idle = await api.get(f"/api/v1/models/{NS}/gpu/idle")
    assert idle["prewarmFromS"] == 1200, "the pre-warm mark survives a restart (from the status)"


class Unreachable(StaticSource):
    async def world(self) -> Any:
        raise ConnectionRefusedError(111, "Connection refused")


@pytest.mark.parametrize("route", ["/api/v1/overview", f"/api/v1/models/{NS}/gpu"])
async def test_unreadable_objects_are_a_503_with_the_cause_as_json(route: str) -> None:
    server = TestServer(make_dashboard_app(Unreachable()), host="127.0.0.1")
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as session, session.get(server.make_url(route)) as resp:
            assert (resp.status, resp.content_type) == (503, "application/json")
            body = await resp.json()
        assert body == {"error": "reading the objects: [Errno 111] Connection refused"}
    finally:
        await server.close()


class Failing(StaticSource):
    def __init__(self, error: BaseException) -> None:
        super().__init__()
        self.error = error

    async def world(self) -> Any:
        raise self.error


@pytest.mark.parametrize(
    ("error", "status"),
    [
        pytest.param(ApiException(status=503, reason="Service Unavailable"), 503, id="api-error"),
        pytest.param(
            urllib3.exceptions.MaxRetryError(None, "/apis", "refused"), 503, id="no-connection"
        ),
        pytest.param(TimeoutError("read timed out"), 503, id="timeout"),
        pytest.param(AttributeError("'NoneType' object has no attribute 'config'"), 500, id="bug"),
        pytest.param(KeyError("isvcs"), 500, id="another-bug"),
    ],
)
async def test_only_objects_that_cannot_be_read_are_a_503_any_other_failure_a_500(
    error: BaseException, status: int
) -> None:
    server = TestServer(make_dashboard_app(Failing(error)), host="127.0.0.1")
    await server.start_server()
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.get(server.make_url("/api/v1/overview")) as resp,
        ):
            assert (resp.status, resp.content_type) == (status, "application/json")
            body = await resp.json()
        expected = "reading the objects: " if status == 503 else "internal error: "
        assert body["error"].startswith(expected), body
        assert type(error).__name__ in body["error"] or str(error) in body["error"]
    finally:
        await server.close()
