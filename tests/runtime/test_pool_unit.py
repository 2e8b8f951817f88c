"""RevisionPool with a scripted launcher: what happens to a replica whose start goes wrong."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from dataplane_testkit import capacity_spec, wait_until

from autoscaler.clock import ManualClock
from autoscaler.runtime.capacity import ReplicaBudget
from autoscaler.runtime.launcher import ReplicaProcess, ReplicaStartError
from autoscaler.runtime.pool import PoolSettings, RevisionPool
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
    """Writes the replica's log, then fails as a model that does not load."""

    async def launch(
        self, spec: ReplicaSpec, log_path: str | None = None, *, term_timeout_s: float = 10.0
    ) -> ReplicaProcess:
        self.launches += 1
        assert log_path is not None
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


async def test_the_last_failed_replica_is_named_until_none_is_wanted(tmp_path: Path) -> None:
    """A replica that fails to start stays named, with why, for its failed Pod and its log (kept
    by the pruning); given up when none is wanted, or when its Pod is deleted."""
    launcher = LoggingLauncher()
    clock = ManualClock()
    pool = RevisionPool(
        capacity_spec("gpu-00001"), 0, launcher, clock, ReplicaBudget(1),
        settings=PoolSettings(keep_logs=1), log_dir=tmp_path,
    )  # fmt: skip
    pool.start()
    try:
        pool.set_desired(1)
        await wait_until(lambda: pool.last_failed is not None, what="a failure")
        assert pool.last_failed is not None
        name, why = pool.last_failed
        assert why == "replica failed: ValueError: bad model"
        assert (tmp_path / f"{name}.log").read_text() == "Traceback ...\n"
        await wait_until(lambda: clock.sleepers() == 1, what="backing off")
        clock.advance(1.0)  # the retry fails too: the newer one is named, its log kept
        await wait_until(lambda: launcher.launches == 2 and not pool.replicas, what="again")
        assert pool.last_failed is not None and pool.last_failed[0] != name
        assert (tmp_path / f"{pool.last_failed[0]}.log").exists()
        assert pool.delete_replica(pool.last_failed[0])  # its Pod deleted: forgotten
        assert pool.last_failed is None
        clock.advance(2.0)
        await wait_until(lambda: launcher.launches == 3 and pool.last_failed, what="a third")
        pool.set_desired(0)
        await wait_until(lambda: pool.last_failed is None, what="none wanted")
    finally:
        await asyncio.wait_for(pool.close(graceful=False), 5)
