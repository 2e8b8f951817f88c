"""RevisionPool: crash restarts under load, graceful drain, the machine-wide replica cap."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import psutil
import pytest
import pytest_asyncio
from dataplane_testkit import (
    FAST_POOL,
    capacity_spec,
    host_of,
    iris_spec,
    requests_served,
    wait_until,
)

from autoscaler.runtime.capacity import replica_cap_for
from autoscaler.runtime.dataplane import DataPlane
from autoscaler.runtime.launcher import ZygoteLauncher
from autoscaler.runtime.replica import Replica
from autoscaler.runtime.spec import PredictorKind, ReplicaSpec, RevisionKey

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

MB = 1024 * 1024


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def capped(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[DataPlane]:
    dp = DataPlane(pool_settings=FAST_POOL, log_dir=tmp_path_factory.mktemp("logs"), max_replicas=2)
    await dp.start()
    try:
        yield dp
    finally:
        await dp.close()


async def load(dp: DataPlane, host: str, model: str, n: int, concurrency: int) -> list[int]:
    statuses: list[int] = []
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(n):
        queue.put_nowait(i)

    async def worker(session: aiohttp.ClientSession) -> None:
        while not queue.empty():
            queue.get_nowait()
            async with session.post(
                f"{dp.ingress_url}/v1/models/{model}:predict",
                json={"instances": [[6.8, 2.8, 4.8, 1.4]]},
                headers={"Host": host},
            ) as resp:
                await resp.read()
                statuses.append(resp.status)

    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    return statuses


@pytest.mark.parametrize("activator_in_path", [True, False], ids=["via-activator", "direct"])
async def test_replica_killed_mid_load_is_restarted_in_its_pod_and_load_finishes(
    capped: DataPlane, iris_dir: Path, activator_in_path: bool
) -> None:
    key = RevisionKey("default", f"crash-{int(activator_in_path)}")
    capped.ensure_revision(key, iris_spec(iris_dir, key.name))
    capped.set_route(host_of(key.name), [(key, 100, None)])
    capped.set_desired(key, 2)
    await wait_until(lambda: capped.status(key).ready == 2, what="2 ready")
    capped.set_activator_in_path(key, activator_in_path)
    victim = capped.pool(key).replicas[0]
    assert victim.process is not None and victim.queue_proxy is not None
    qp = victim.queue_proxy

    async def kill_when_busy() -> None:
        await wait_until(
            lambda: requests_served(qp.metrics.render().decode()) > 20, what="load on the victim"
        )
        victim.process.send_signal(signal.SIGKILL)  # type: ignore[union-attr]

    statuses, _ = await asyncio.gather(
        load(capped, host_of(key.name), "iris", 400, 8), kill_when_busy()
    )
    assert statuses == [200] * 400
    await wait_until(lambda: capped.status(key).ready == 2, what="restarted and ready")
    assert capped.status(key).restarts == 1
    assert victim not in capped.pool(key).replicas
    assert_restarted_in_its_pod(capped, key, victim)
    await capped.remove_revision(key)


def assert_restarted_in_its_pod(dp: DataPlane, key: RevisionKey, victim: Replica) -> None:
    """The killed replica's restart has its name (its Pod), restart count 1, the kill as its
    last state, and a log of its own beside the killed run's."""
    (restarted,) = [r for r in dp.pool(key).replicas if r.name == victim.name]
    assert restarted.restart_count == 1 and restarted.pod_created_at == victim.pod_created_at
    last = restarted.last_state
    assert last is not None and (last.exit_code, last.reason) == (128 + signal.SIGKILL, "Error")
    assert dp.log_dir is not None
    assert (dp.log_dir / f"{victim.name}.log").is_file()
    assert (dp.log_dir / f"{victim.name}.1.log").is_file()


async def wait_model_busy(port: int, timeout_s: float = 10.0) -> None:
    """Poll the capacity model's own gauge until a request is being computed."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    async with aiohttp.ClientSession() as session:
        while True:
            async with session.get(f"http://127.0.0.1:{port}/metrics") as resp:
                text = await resp.text()
            if any(
                line.startswith("capacity_model_in_flight{") and float(line.split()[-1]) >= 1
                for line in text.splitlines()
            ):
                return
            if loop.time() > deadline:
                raise AssertionError("the model never got busy")
            await asyncio.sleep(0.01)


@pytest.mark.parametrize("activator_in_path", [True, False], ids=["via-activator", "direct"])
async def test_requests_waiting_in_a_killed_replicas_breaker_are_retried_not_lost(
    capped: DataPlane, activator_in_path: bool
) -> None:
    """cc 1, one replica, five requests (one in the model, four waiting in its queue-proxy's
    breaker when it goes direct): the replica is killed. The waiting ones were never sent, so
    they go through the activator, which holds them until the replacement is ready."""
    key = RevisionKey("default", f"crashq-{int(activator_in_path)}")
    capped.ensure_revision(key, capacity_spec(key.name, capacity=1, base_latency_ms=300), 1)
    capped.set_route(host_of(key.name), [(key, 100, None)])
    capped.set_desired(key, 1)
    await wait_until(lambda: capped.status(key).ready == 1, what="ready")
    capped.set_activator_in_path(key, activator_in_path)
    victim = capped.pool(key).replicas[0]
    assert victim.process is not None and victim.queue_proxy is not None
    qp = victim.queue_proxy
    pending = asyncio.ensure_future(load(capped, host_of(key.name), "gpu", 5, 5))

    def queued() -> bool:
        if activator_in_path:  # the activator holds them: cc 1 per replica
            return qp.in_flight == 1 and capped.status(key).queued == 4
        return qp.breaker is not None and qp.in_flight == 5 and qp.breaker.waiting == 4

    await wait_until(queued, timeout_s=10, what="one in the model, four waiting")
    await wait_model_busy(victim.process.port)
    victim.process.send_signal(signal.SIGKILL)
    assert await asyncio.wait_for(pending, 30) == [200] * 5
    assert capped.status(key).restarts == 1
    await wait_until(lambda: capped.status(key).ready == 1, what="restarted and ready")
    assert_restarted_in_its_pod(capped, key, victim)
    await capped.remove_revision(key)


async def test_cap_holds_reason_is_exposed_and_waiting_requests_get_through(
    capped: DataPlane, iris_dir: Path
) -> None:
    a, b = RevisionKey("default", "capa-00001"), RevisionKey("default", "capb-00001")
    for key in (a, b):
        capped.ensure_revision(key, iris_spec(iris_dir, key.name))
        capped.set_route(host_of(key.name), [(key, 100, None)])
    capped.set_desired(a, 3)
    await wait_until(lambda: capped.status(a).ready == 2, what="a at the cap")
    capped.set_desired(b, 1)
    pending = asyncio.ensure_future(load(capped, host_of(b.name), "iris", 1, 1))
    await wait_until(lambda: capped.status(b).queued == 1, what="request buffered for b")
    for key, actual in ((a, 2), (b, 0)):
        status = capped.status(key)
        assert status.actual == actual
        assert status.reason is not None and "ReplicaCapReached" in status.reason
        assert "cap of 2" in status.reason
    capped.set_desired(a, 1)  # frees a slot: b starts and the buffered request is answered
    assert await asyncio.wait_for(pending, 30) == [200]
    await wait_until(lambda: capped.status(b).ready == 1, what="b ready")
    assert capped.status(b).reason is None
    await capped.remove_revision(a)
    await capped.remove_revision(b)


async def test_scale_down_drains_in_flight_requests(capped: DataPlane) -> None:
    key = RevisionKey("default", "drain-00001")
    capped.ensure_revision(key, capacity_spec(key.name, capacity=8, base_latency_ms=400))
    capped.set_route(host_of(key.name), [(key, 100, None)])
    capped.set_desired(key, 1)
    await wait_until(lambda: capped.status(key).ready == 1, what="ready")
    replica = capped.pool(key).replicas[0]
    assert replica.queue_proxy is not None and replica.process is not None
    pending = asyncio.ensure_future(load(capped, host_of(key.name), "gpu", 4, 4))
    await wait_until(lambda: replica.queue_proxy.in_flight == 4, what="4 in flight")  # type: ignore[union-attr]
    capped.set_desired(key, 0)
    assert await pending == [200] * 4
    code = await asyncio.wait_for(replica.process.exited, 15)
    assert code in (0, -signal.SIGTERM)  # SIGTERM after the drain, not SIGKILL
    await wait_until(lambda: capped.status(key).actual == 0, what="scaled to zero")
    assert capped.status(key).restarts == 0
    await capped.remove_revision(key)


@pytest.mark.parametrize(
    ("available_mb", "expected"), [(24 * 1024, 145), (1000, 5), (100, 1)], ids=str
)
async def test_default_cap_from_free_memory(available_mb: int, expected: int) -> None:
    assert replica_cap_for(available_mb * MB) == expected


async def test_a_killed_zygote_is_restarted_and_replicas_start_again(
    tmp_path: Path, iris_dir: Path
) -> None:
    """The zygote dies (its replicas die with it): the next replica start forks from a new one,
    the revision serves again, and no replica is left holding a slot of the budget."""
    async with DataPlane(pool_settings=FAST_POOL, log_dir=tmp_path, max_replicas=2) as dp:
        assert isinstance(dp.launcher, ZygoteLauncher)
        key = RevisionKey("default", "zdeath-00001")
        dp.ensure_revision(key, iris_spec(iris_dir, key.name))
        dp.set_route(host_of(key.name), [(key, 100, None)])
        dp.set_desired(key, 1)
        await wait_until(lambda: dp.status(key).ready == 1, what="ready")
        first = dp.pool(key).replicas[0]
        zygote = dp.launcher.pid
        assert zygote is not None and first.process is not None
        os.kill(zygote, signal.SIGKILL)
        assert await asyncio.wait_for(first.process.exited, 10) == -signal.SIGKILL

        def replaced() -> bool:
            replicas = dp.pool(key).replicas
            return dp.status(key).ready == 1 and replicas[0] is not first

        await wait_until(replaced, what="a replica forked from a new zygote")
        assert dp.launcher.pid not in (None, zygote)
        assert await load(dp, host_of(key.name), "iris", 5, 2) == [200] * 5
        assert dp.budget.used == 1


async def test_closing_while_a_model_loads_kills_it_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C while a replica loads its model: the load is killed, not waited for."""
    here = str(Path(__file__).resolve().parent)
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [here, os.environ.get("PYTHONPATH")]))
    )
    dp = DataPlane(pool_settings=FAST_POOL, log_dir=tmp_path)
    await dp.start()
    try:
        assert isinstance(dp.launcher, ZygoteLauncher) and dp.launcher.pid is not None
        zygote = psutil.Process(dp.launcher.pid)
        key = RevisionKey("default", "slow-00001")
        spec = ReplicaSpec(
            "default", key.name, "slow", PredictorKind.CUSTOM, model_class="slowload_model:SlowLoad"
        )
        dp.ensure_revision(key, spec)
        dp.set_desired(key, 1)
        await wait_until(lambda: len(zygote.children()) == 1, what="the replica forked")
        (loading,) = zygote.children()
    finally:
        loop = asyncio.get_running_loop()
        started = loop.time()
        await asyncio.wait_for(dp.close(), 10)
        assert loop.time() - started < 5
    assert gone(loading) and gone(zygote)


async def test_a_replica_stopped_while_its_model_loads_goes_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its Pod deleted, or scaled down, while the model loads: the process is stopped at once
    (SIGTERM), not after the load; its slot comes back for the replacement, which loads and
    serves; neither stop is a restart."""
    here = str(Path(__file__).resolve().parent)
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [here, os.environ.get("PYTHONPATH")]))
    )
    hold = tmp_path / "hold"
    hold.touch()
    loop = asyncio.get_running_loop()
    # one slot: the replacement can start only once the deleted replica has given its slot back
    async with DataPlane(pool_settings=FAST_POOL, log_dir=tmp_path, max_replicas=1) as dp:
        assert isinstance(dp.launcher, ZygoteLauncher) and dp.launcher.pid is not None
        zygote = psutil.Process(dp.launcher.pid)
        key = RevisionKey("default", "held-00001")
        spec = ReplicaSpec(
            "default",
            key.name,
            "held",
            PredictorKind.CUSTOM,
            model_class="slowload_model:HeldLoad",
            env=(("HOLD_FILE", str(hold)),),
        )
        dp.ensure_revision(key, spec)
        dp.set_route(host_of(key.name), [(key, 100, None)])
        pool = dp.pool(key)
        dp.set_desired(key, 1)
        await wait_until(lambda: len(zygote.children()) == 1, what="the replica forked")
        (loading,) = zygote.children()
        first = pool.replicas[0]

        started = loop.time()
        assert pool.delete_replica(first.name)  # kubectl delete pod
        await wait_until(lambda: gone(loading), timeout_s=10, what="the deleted replica gone")
        assert loop.time() - started < FAST_POOL.term_timeout_s

        def replacement_forked() -> bool:
            children = zygote.children()
            return len(children) == 1 and children[0].pid != loading.pid

        await wait_until(replacement_forked, what="the replacement forked")
        (replacement,) = zygote.children()
        assert [r.name for r in pool.replicas] != [first.name] and dp.budget.used == 1

        started = loop.time()
        dp.set_desired(key, 0)  # scaled down while it loads
        await wait_until(lambda: gone(replacement), timeout_s=10, what="the replacement gone")
        await wait_until(lambda: not pool.replicas, what="the replacement forgotten")
        assert loop.time() - started < FAST_POOL.term_timeout_s
        assert dp.budget.used == 0 and dp.status(key).restarts == 0

        hold.unlink()
        dp.set_desired(key, 1)
        await wait_until(lambda: dp.status(key).ready == 1, what="a replica serving")
        assert await load(dp, host_of(key.name), "held", 2, 1) == [200] * 2
        assert dp.status(key).restarts == 0


def gone(proc: psutil.Process) -> bool:
    """Exited (a zombie waiting for a reaper that is not us counts: it runs no more)."""
    try:
        return proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True
