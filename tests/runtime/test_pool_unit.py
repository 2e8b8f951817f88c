"""RevisionPool with a scripted launcher: what happens to a replica whose start goes wrong, and
to one that crashes: it is restarted in its Pod."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

from aiohttp import web
from dataplane_testkit import capacity_spec, wait_until

from autoscaler.clock import ManualClock
from autoscaler.runtime.capacity import ReplicaBudget
from autoscaler.runtime.launcher import ReplicaProcess, ReplicaStartError
from autoscaler.runtime.pool import PoolSettings, RevisionPool
from autoscaler.runtime.replica import Replica, ReplicaState
from autoscaler.runtime.spec import ReplicaSpec

SETTINGS = PoolSettings(backoff_initial_s=1.0)


class RaisingLauncher:
    """``launch`` fails the way a closed pipe transport does (not a ReplicaStartError)."""

    def __init__(self) -> None:
        self.launches = 0

    async def start(self) -> None:
        return None

    async def launch(
        self, spec: ReplicaSpec, log_path: str | None = None, *, term_timeout_s: float = 10.0
    ) -> ReplicaProcess:
        self.launches += 1
        raise RuntimeError("unable to perform operation on <WriteUnixTransport>; closed")

    async def close(self) -> None:
        return None


async def test_an_unexpected_start_error_frees_the_slot_and_backs_off() -> None:
    clock = ManualClock()
    budget = ReplicaBudget(1)
    launcher = RaisingLauncher()
    pool = RevisionPool(capacity_spec("gpu-00001"), 0, launcher, clock, budget, settings=SETTINGS)
    pool.start()
    try:
        pool.set_desired(1)
        await wait_until(lambda: launcher.launches == 1 and not pool.replicas, what="forgotten")
        assert budget.used == 0
        status = pool.status()
        assert (status.actual, status.restarts) == (0, 1)
        assert status.reason is not None and status.reason.startswith("CrashLoopBackOff")
        assert "RuntimeError" in status.reason
        await wait_until(lambda: clock.sleepers() == 1, what="backing off")
        clock.advance(1.0)
        await wait_until(lambda: launcher.launches == 2, what="the retry after the backoff")
    finally:
        await asyncio.wait_for(pool.close(graceful=False), 5)
    assert budget.used == 0


class LoggingLauncher(RaisingLauncher):
    """Writes the replica's log, then fails as a model that does not load; notes the logs."""

    def __init__(self) -> None:
        super().__init__()
        self.logs: list[str] = []

    async def launch(
        self, spec: ReplicaSpec, log_path: str | None = None, *, term_timeout_s: float = 10.0
    ) -> ReplicaProcess:
        self.launches += 1
        assert log_path is not None
        self.logs.append(log_path)
        Path(log_path).write_text("Traceback ...\n")
        raise ReplicaStartError("replica failed: ValueError: bad model")


async def test_only_the_newest_replica_logs_of_a_revision_are_kept(tmp_path: Path) -> None:
    spec = capacity_spec("gpu-00001")
    ours = [tmp_path / f"gpu-00001-deployment-{i:06x}-{i}.log" for i in range(25)]
    other = tmp_path / "gpu-00002-deployment-000000-1.log"
    for i, path in enumerate([*ours, other]):
        path.write_text("old\n")
        os.utime(path, (1_000_000 + i, 1_000_000 + i))
    launcher = LoggingLauncher()
    budget = ReplicaBudget(1)
    settings = PoolSettings(keep_logs=20)
    pool = RevisionPool(
        spec, 0, launcher, ManualClock(), budget, settings=settings, log_dir=tmp_path
    )
    pool.start()
    try:
        pool.set_desired(1)
        await wait_until(lambda: launcher.launches == 1 and not pool.replicas, what="a failure")
    finally:
        await asyncio.wait_for(pool.close(graceful=False), 5)
    kept = sorted(tmp_path.glob("gpu-00001-deployment-*.log"))
    assert len(kept) == 20
    assert set(ours[-19:]) < set(kept)  # the newest old ones and the new one
    assert not any(path.exists() for path in ours[:6])
    assert other.exists()  # another revision's logs are its own pool's business


class LoadingLauncher(RaisingLauncher):
    """Each launch loads its model until the test gives up on it; notes the stops it is asked
    for (their SIGTERM-to-SIGKILL time)."""

    def __init__(self) -> None:
        super().__init__()
        self.stopped: list[float] = []
        self._never = asyncio.Event()

    async def launch(
        self, spec: ReplicaSpec, log_path: str | None = None, *, term_timeout_s: float = 10.0
    ) -> ReplicaProcess:
        self.launches += 1
        try:
            await self._never.wait()
        except asyncio.CancelledError:
            self.stopped.append(term_timeout_s)
            raise
        raise AssertionError("unreachable")


async def test_a_replica_stopped_while_starting_is_not_waited_for() -> None:
    """Deleted or scaled down while its model loads: its start is given up at once (the launcher
    stops the process), its slot comes back for the replacement, and it is no restart."""
    clock = ManualClock()
    budget = ReplicaBudget(1)
    launcher = LoadingLauncher()
    settings = PoolSettings(term_timeout_s=3.0)
    pool = RevisionPool(capacity_spec("gpu-00001"), 0, launcher, clock, budget, settings=settings)
    pool.start()
    try:
        pool.set_desired(1)
        await wait_until(lambda: launcher.launches == 1, what="loading")
        (first,) = pool.replicas
        assert pool.delete_replica(first.name)
        await wait_until(lambda: launcher.stopped == [3.0], what="the deleted replica stopped")
        await wait_until(lambda: launcher.launches == 2, what="the replacement, in the one slot")
        assert first not in pool.replicas and budget.used == 1
        pool.set_desired(0)
        await wait_until(lambda: not pool.replicas, what="scaled down while loading")
        assert launcher.stopped == [3.0, 3.0] and budget.used == 0
        assert pool.status().restarts == 0 and pool.status().reason is None
    finally:
        await asyncio.wait_for(pool.close(graceful=False), 5)
    assert budget.used == 0


async def test_a_replica_that_fails_to_start_is_restarted_in_its_pod(tmp_path: Path) -> None:
    """A failed start waits in ``crashed``, backing off, saying how it ended; the start after the
    backoff restarts it in its Pod (same name, one restart more, a log of its own). Its Pod
    deleted, it is given up and the next start is a new Pod; none wanted, it is given up too,
    and the revision's reason no longer says CrashLoopBackOff."""
    launcher = LoggingLauncher()
    clock = ManualClock()
    pool = RevisionPool(
        capacity_spec("gpu-00001"), 0, launcher, clock, ReplicaBudget(1),
        settings=PoolSettings(backoff_initial_s=1.0), log_dir=tmp_path,
    )  # fmt: skip
    pool.start()
    try:
        pool.set_desired(1)
        await wait_until(lambda: bool(pool.crashed), what="a failure")
        (first,) = pool.crashed
        assert (first.restart_count, first.backoff_s, first.last_state) == (0, 1.0, None)
        ended = first.terminated
        assert (ended.exit_code, ended.reason) == (1, "Error")  # no process was left to say
        assert ended.message == "replica failed: ValueError: bad model"
        assert launcher.logs == [str(tmp_path / f"{first.name}.log")]

        await wait_until(lambda: clock.sleepers() == 1, what="backing off")
        clock.advance(1.0)  # the restart fails too: the same Pod, one restart more
        await wait_until(lambda: launcher.launches == 2 and bool(pool.crashed), what="again")
        (second,) = pool.crashed
        assert (second.name, second.restart_count, second.backoff_s) == (first.name, 1, 2.0)
        assert second.last_state == first.terminated and second.created_at == first.created_at
        assert launcher.logs[1] == str(tmp_path / f"{first.name}.1.log")  # each run apart
        assert (tmp_path / f"{first.name}.log").exists()  # the run before stays (--previous)
        assert pool.status().restarts == 2

        assert pool.delete_replica(first.name)  # its Pod deleted: given up
        assert pool.crashed == []
        clock.advance(2.0)
        await wait_until(lambda: launcher.launches == 3 and bool(pool.crashed), what="a third")
        (third,) = pool.crashed
        assert third.name != first.name and third.restart_count == 0  # a new Pod
        pool.set_desired(0)
        await wait_until(lambda: not pool.crashed, what="none wanted")
        assert pool.status().reason is None  # no Pod backs off any more
    finally:
        await asyncio.wait_for(pool.close(graceful=False), 5)


class ServingLauncher(RaisingLauncher):
    """Each launch is a real process (``sleep``) that is ready at once: a small HTTP server of
    the test answers every replica's readiness. Killing a replica's process is its crash."""

    def __init__(self) -> None:
        super().__init__()
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def start(self) -> None:
        async def ready(_: web.Request) -> web.Response:
            return web.Response(text="ok")

        app = web.Application()
        app.router.add_get("/{path:.*}", ready)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def launch(
        self, spec: ReplicaSpec, log_path: str | None = None, *, term_timeout_s: float = 10.0
    ) -> ReplicaProcess:
        self.launches += 1
        proc = await asyncio.create_subprocess_exec("sleep", "600")
        return ReplicaProcess(proc.pid, self.port, asyncio.ensure_future(proc.wait()))

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


async def test_a_replica_that_crashes_is_restarted_at_once_in_its_pod() -> None:
    """A ready replica's process is killed: it is restarted at once (no backoff: it did start),
    as the same Pod with restart count 1, its last state the run that ended (SIGKILL: exit code
    137, Error). Scaled down, the restarted replica is not restarted again."""
    clock = ManualClock()
    launcher = ServingLauncher()
    await launcher.start()
    pool = RevisionPool(capacity_spec("gpu-00001"), 0, launcher, clock, ReplicaBudget(1))
    pool.start()
    try:
        pool.set_desired(1)
        await wait_until(lambda: pool.status().ready == 1, what="ready")
        (first,) = pool.replicas
        assert first.process is not None and first.restart_count == 0
        first.process.send_signal(signal.SIGKILL)

        def restarted() -> list[Replica]:
            return [r for r in pool.replicas if r is not first and r.state is ReplicaState.READY]

        await wait_until(lambda: bool(restarted()), what="restarted and ready")
        (second,) = restarted()
        assert (second.name, second.restart_count) == (first.name, 1)
        assert second.pod_created_at == first.pod_created_at
        assert second.restarted_from is not None and second.restarted_from.backoff_s is None
        last = second.last_state
        assert last is not None and (last.exit_code, last.reason) == (137, "Error")
        assert last.started_at == first.launched_at
        assert last.message == "exited unexpectedly (code -9)"
        assert pool.status().restarts == 1 and launcher.launches == 2 and pool.crashed == []

        pool.set_desired(0)
        await wait_until(lambda: not pool.replicas, what="scaled down")
        assert launcher.launches == 2 and pool.crashed == [] and pool.status().restarts == 1
    finally:
        await asyncio.wait_for(pool.close(graceful=False), 10)
        await launcher.close()


async def test_crashes_in_a_row_back_off_and_a_quiet_spell_starts_over() -> None:
    """The kubelet's CrashLoopBackOff for a container that crashes after it started: the first
    crash restarts at once, each next one in a row waits ``backoff_initial_s`` doubled (the Pod
    says so), and ``backoff_reset_s`` with no crash makes the next one the first again."""
    clock = ManualClock()
    launcher = ServingLauncher()
    await launcher.start()
    settings = PoolSettings(backoff_initial_s=1.0, backoff_max_s=30.0, backoff_reset_s=600.0)
    pool = RevisionPool(
        capacity_spec("gpu-00001"), 0, launcher, clock, ReplicaBudget(1), settings=settings
    )
    pool.start()

    async def crash() -> Replica:
        (replica,) = [r for r in pool.replicas if r.state is ReplicaState.READY]
        assert replica.process is not None
        replica.process.send_signal(signal.SIGKILL)
        await wait_until(lambda: replica not in pool.replicas, what="the crash noted")
        return replica

    async def ready_after(launches: int) -> None:
        await wait_until(
            lambda: launcher.launches == launches and pool.status().ready == 1,
            what=f"launch {launches} ready",
        )

    try:
        pool.set_desired(1)
        await ready_after(1)
        await crash()
        await ready_after(2)  # the first crash: at once, the clock never moved
        assert pool.status().reason is None

        for launches, backoff in ((3, 1.0), (4, 2.0)):
            crashed = await crash()
            (waiting,) = pool.crashed
            assert waiting.name == crashed.name and waiting.backoff_s == backoff
            reason = pool.status().reason
            assert reason is not None and reason.startswith("CrashLoopBackOff: exited")
            assert f"retry in {backoff:g}s" in reason
            await wait_until(lambda: clock.sleepers() == 1, what="backing off")
            assert launcher.launches == launches - 1  # held
            clock.advance(backoff - 0.01)
            assert clock.sleepers() == 1  # the back-off's timer is not yet due
            clock.advance(0.01)
            await ready_after(launches)
            assert pool.status().reason is None

        clock.advance(600.0)  # ten quiet minutes since the last crash
        await crash()
        await ready_after(5)  # at once again
        assert pool.status().restarts == 4
    finally:
        await asyncio.wait_for(pool.close(graceful=False), 10)
        await launcher.close()


async def test_each_pod_backs_off_its_own_crashes() -> None:
    """Two replicas die together (as when the process they were forked from dies): each is its
    Pod's first crash, so both restart at once. Then one crashes again: it alone backs off, and
    while it does it is not replaced by a new Pod."""
    clock = ManualClock()
    launcher = ServingLauncher()
    await launcher.start()
    pool = RevisionPool(
        capacity_spec("gpu-00001"), 0, launcher, clock, ReplicaBudget(2), settings=SETTINGS
    )
    pool.start()
    try:
        pool.set_desired(2)
        await wait_until(lambda: pool.status().ready == 2, what="two ready")
        first = list(pool.replicas)
        for replica in first:
            assert replica.process is not None
            replica.process.send_signal(signal.SIGKILL)
        await wait_until(
            lambda: launcher.launches == 4 and pool.status().ready == 2, what="both restarted"
        )
        assert sorted(r.name for r in pool.replicas) == sorted(r.name for r in first)
        assert all(r.restarted_from is not None and r.restarted_from.backoff_s is None
                   for r in pool.replicas)  # fmt: skip

        again, other = pool.replicas
        assert again.process is not None
        again.process.send_signal(signal.SIGKILL)
        await wait_until(lambda: again not in pool.replicas, what="the crash noted")
        (waiting,) = pool.crashed
        assert (waiting.name, waiting.crashes, waiting.backoff_s) == (again.name, 2, 1.0)
        # the back-off's timer, beside the other replica's queue-proxy reporting each second
        await wait_until(lambda: clock.sleepers() == 2, what="backing off")
        assert launcher.launches == 4 and pool.replicas == [other]  # not replaced meanwhile
        reason = pool.status().reason
        assert reason is not None and reason.startswith("CrashLoopBackOff: exited unexpectedly")
        clock.advance(1.0)
        await wait_until(lambda: pool.status().ready == 2, what="restarted after its back-off")
        assert launcher.launches == 5 and again.name in {r.name for r in pool.replicas}
        assert pool.status().reason is None
    finally:
        await asyncio.wait_for(pool.close(graceful=False), 10)
        await launcher.close()
