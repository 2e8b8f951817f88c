"""The activator with real replicas: buffering at zero, containerConcurrency inside the replica."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest
from dataplane_testkit import capacity_spec, host_of, iris_spec, wait_until
from prometheus_client.parser import text_string_to_metric_families

from autoscaler.runtime.dataplane import DataPlane
from autoscaler.runtime.spec import RevisionKey

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

IRIS_BODY = {"instances": [[6.8, 2.8, 4.8, 1.4]]}


async def post(
    session: aiohttp.ClientSession, dp: DataPlane, host: str, model: str, body: object
) -> tuple[int, object]:
    url = f"{dp.ingress_url}/v1/models/{model}:predict"
    async with session.post(url, json=body, headers={"Host": host}) as resp:
        return resp.status, await resp.json()


async def test_first_requests_at_zero_are_buffered_then_answered(
    dataplane: DataPlane, iris_dir: Path
) -> None:
    key = RevisionKey("default", "zero-00001")
    dataplane.ensure_revision(key, iris_spec(iris_dir, key.name))
    dataplane.set_route(host_of("zero"), [(key, 100, None)])
    pokes: list[RevisionKey] = []

    def poke(k: RevisionKey) -> None:
        pokes.append(k)
        if k == key:
            dataplane.set_desired(k, 1)

    dataplane.on_poke(poke)
    assert dataplane.status(key).ready == 0
    async with aiohttp.ClientSession() as session:
        results = await asyncio.gather(
            *(post(session, dataplane, host_of("zero"), "iris", IRIS_BODY) for _ in range(5))
        )
    assert results == [(200, {"predictions": [1]})] * 5
    assert pokes.count(key) == 1
    status = dataplane.status(key)
    assert (status.ready, status.desired, status.queued) == (1, 1, 0)
    await dataplane.remove_revision(key)


async def test_a_buffered_request_gets_504_after_the_revisions_timeout_seconds(
    dataplane: DataPlane, iris_dir: Path
) -> None:
    key = RevisionKey("default", "slowstart-00001")
    # timeoutSeconds 0.5, as the controller passes a Revision's; at zero, and nothing scales it
    # up: a cold start longer than the timeout.
    dataplane.ensure_revision(key, iris_spec(iris_dir, key.name), timeout_s=0.5)
    dataplane.set_route(host_of("slowstart"), [(key, 100, None)])
    async with aiohttp.ClientSession() as session:
        status, body = await post(session, dataplane, host_of("slowstart"), "iris", IRIS_BODY)
    assert status == 504
    error = body["error"]  # type: ignore[index]
    assert "activator request timeout" in error and str(key) in error and "(0.5s)" in error
    assert dataplane.status(key).queued == 0
    await dataplane.remove_revision(key)


async def max_in_flight(port: int) -> float:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{port}/metrics") as resp,
    ):
        text = await resp.text()
    for family in text_string_to_metric_families(text):
        if family.name == "capacity_model_max_in_flight":
            return max(s.value for s in family.samples)
    raise AssertionError("capacity_model_max_in_flight not exported")


@pytest.mark.parametrize("activator_in_path", [True, False], ids=["via-activator", "direct"])
async def test_container_concurrency_one_is_never_exceeded_inside_the_replica(
    dataplane: DataPlane, activator_in_path: bool
) -> None:
    name = f"cc-{'act' if activator_in_path else 'direct'}"
    key = RevisionKey("default", f"{name}-00001")
    dataplane.ensure_revision(key, capacity_spec(key.name, capacity=4, base_latency_ms=20), 1)
    dataplane.set_route(host_of(name), [(key, 100, None)])
    dataplane.set_desired(key, 2)
    await wait_until(lambda: dataplane.status(key).ready == 2, what="2 ready replicas")
    dataplane.set_activator_in_path(key, activator_in_path)
    async with aiohttp.ClientSession() as session:
        results = await asyncio.gather(
            *(post(session, dataplane, host_of(name), "gpu", IRIS_BODY) for _ in range(16))
        )
    assert [status for status, _ in results] == [200] * 16
    replicas = dataplane.pool(key).replicas
    assert len(replicas) == 2
    for r in replicas:
        assert r.process is not None
        # The capacity model would admit 4 at once; the queue-proxy lets exactly 1 in.
        assert await max_in_flight(r.process.port) == 1
    # With cc=1 requests queue: every one took at least the 20 ms service time.
    assert all(min(body["predictions"]) >= 19 for _, body in results)  # type: ignore[index]
    await dataplane.remove_revision(key)
