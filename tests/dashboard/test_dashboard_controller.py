"""The dashboard on the real tuner controller (``ControllerSource``) against the embedded API
server, mounted on the controller's own HTTP server: a controller with no data yet is an empty
state, not an error; after a tick the model, its decision and its reason are there."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from autoscaler.apiserver.testing import RunningAPIServer, running_apiserver
from autoscaler.clock import ManualClock
from autoscaler.dashboard import ControllerSource, mount_dashboard
from autoscaler.kube.controller import Controller
from autoscaler.kube.settings import ControllerSettings
from autoscaler.kube.telemetry import start_http
from autoscaler.metrics.source import RevisionKey, RevisionRef
from autoscaler.tuner.observation import RevisionObservation
from tests.kube.kit import MODELSCALER_CRD, MSC, Cluster, sees


class NoMetricsYet:
    """A metric source that has seen nothing yet (a fresh Prometheus, replicas not scraped):
    every revision is unobserved, so the tuner holds its values (fail-static)."""

    async def observe(
        self, revisions: Sequence[RevisionRef], now_s: float
    ) -> dict[RevisionKey, RevisionObservation | None]:
        return {ref.key: None for ref in revisions}

    sample_period_s = 0.0

    async def sample(self, revisions: Sequence[RevisionRef], now_s: float) -> None:
        return None

    async def close(self) -> None:
        return None


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningAPIServer]:
    with running_apiserver(tmp_path, extra_crds=[MODELSCALER_CRD]) as handle:
        yield handle


@pytest.fixture
async def served(server: RunningAPIServer) -> AsyncIterator[tuple[Controller, str]]:
    clock = ManualClock(start=1000.0)
    ctl = Controller(server.api_client(), NoMetricsYet(), ControllerSettings(identity="t"), clock)
    ctl.start()
    assert ctl.wait_synced(10.0)
    dashboard = ControllerSource(ctl, clock=clock)
    runner, port = await start_http(
        ctl.metrics, ctl.ready, "127.0.0.1", 0, mount=lambda app: mount_dashboard(app, dashboard)
    )
    try:
        yield ctl, f"http://127.0.0.1:{port}/dashboard"
    finally:
        await runner.cleanup()
        await ctl.stop(release=False)


async def get(url: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session, session.get(url) as resp:
        return resp.status, await resp.json()


async def test_no_data_yet_is_an_empty_state(served: tuple[Controller, str]) -> None:
    ctl, base = served
    clock = ManualClock(start=1000.0)
    assert await get(base + "/api/v1/overview") == (
        200,
        {"now": clock.wall(), "leading": True, "models": []},
    )
    await ctl.tick()
    assert (await get(base + "/api/v1/overview"))[1]["models"] == []
    status, body = await get(base + "/api/v1/models/default/m1/decisions")
    assert status == 404 and "not found" in body["error"]


async def test_after_a_tick_the_model_its_decision_and_reason(
    served: tuple[Controller, str], server: RunningAPIServer
) -> None:
    ctl, base = served
    cluster = Cluster(server)
    rev = cluster.deploy("m1")
    cluster.scaler("m1", updateMode="Recommend")
    await sees(ctl, MSC, "m1")
    await ctl.tick()
    _, body = await get(base + "/api/v1/overview")
    (row,) = body["models"]
    assert (row["model"], row["revision"], row["replicasActual"], row["replicasDesired"]) == (
        "m1", rev, 2, 2,
    )  # fmt: skip
    assert row["requestRatePerS"] is None and row["latencyState"] == "unknown"
    _, decisions = await get(base + "/api/v1/models/default/m1/decisions")
    (first,) = decisions["decisions"]
    assert first["revision"] == rev and first["fail_static"] is True
    assert any("no metrics" in r for r in first["reasons"])
    _, ts = await get(base + "/api/v1/models/default/m1/timeseries")
    assert ts["replicas"]["actual"] == [2] and ts["ticks"]["concurrencyPerReplica"] == [None]
