"""``RevisionPool``: one revision's replicas, like a ReplicaSet plus the pod lifecycle.

``set_desired(n)`` is the only input. A single reconcile task compares desired with what runs and
acts: it starts replicas (each takes a slot of the machine-wide ``ReplicaBudget`` first; without
one it waits, and ``reason`` says why), drains surplus ones (starting ones first, then the least
busy ready ones), and restarts replicas that exit on their own, counting each as a restart. A
replica stopped while it starts (scaled down, or its Pod deleted, while its model loads) is not
waited for: its start is cancelled and its process stopped at once (SIGTERM, SIGKILL after
``term_timeout_s``), as Kubernetes stops a container whatever its readiness; its slot comes back
when the process is gone, and it is no restart. Each Pod backs off its own crashes, as the
kubelet's CrashLoopBackOff does (10 s doubling to 5 minutes there, ``backoff_initial_s`` doubling
to ``backoff_max_s`` here): a replica that fails to start waits ``backoff_initial_s`` before its
next run, doubled for each crash of its Pod before it in a row; one that crashes after it
started is restarted at once the first time, as the kubelet restarts a container, and waits the
back-off when crashes follow one another; a crash ``backoff_reset_s`` (the kubelet's 10 minutes)
or more after the Pod's last one is a first again. A Pod backing off is not replaced by another.
Whenever the set of ready replicas changes, ``on_change`` is called so the activator and the
ingress route to exactly the ready ones; ``on_replicas`` is told of every other step too (a
replica launched, up, ready, draining or gone, a new desired count), for observers that show the
replicas (it must not block: it only notes that something changed).

Replicas are named as a Deployment's Pods are, ``<revision>-deployment-<pod-template-hash>-<5
random characters>``: the hash is the replica spec's, so every replica of a revision shares it.
A replica that crashes (exits on its own, or fails to start or to load its model) is restarted
in its Pod, as the kubelet restarts a container: it waits in ``crashed`` (its Pod stays, showing
why and, while the pool backs off, CrashLoopBackOff) until the next start takes it over, with the
same name and one restart more (``Replica.restart_count``; each run logs to a file of its own,
``restarts.run_log_name``). A crashed replica is given up, and its Pod goes, when fewer replicas
are wanted or its Pod is deleted; a replica deleted or scaled down is never restarted: the one
started for a deleted Pod is a new Pod with a new name, as a ReplicaSet's. ``restarts`` counts
the crashes of all the revision's replicas.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from autoscaler.clock import Clock
from autoscaler.runtime.capacity import ReplicaBudget
from autoscaler.runtime.launcher import Launcher, ReplicaStartError
from autoscaler.runtime.qpmetrics import PodIdentity
from autoscaler.runtime.queueproxy import QueueProxy, StatSink
from autoscaler.runtime.replica import Replica, ReplicaState
from autoscaler.runtime.restarts import Crashed, run_log_name, termination
from autoscaler.runtime.spec import ReplicaSpec

log = logging.getLogger(__name__)

# The characters Kubernetes uses in generated names and pod-template hashes (no vowels, no
# look-alikes: k8s.io/apimachinery/pkg/util/rand).
NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_rng = random.SystemRandom()


def pod_template_hash(spec: ReplicaSpec) -> str:
    """A revision's pod-template hash, as upstream writes one: a 32-bit hash of the template
    (here the replica spec) printed in decimal, each digit mapped into ``NAME_ALPHABET``."""
    value = int.from_bytes(hashlib.sha256(spec.to_json().encode()).digest()[:4], "big")
    return "".join(NAME_ALPHABET[ord(c) % len(NAME_ALPHABET)] for c in str(value))


@dataclass(frozen=True)
class PoolSettings:
    ready_timeout_s: float = 60.0
    drain_timeout_s: float = 30.0
    term_timeout_s: float = 10.0
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 30.0
    # a crash this long after its Pod's last one is a first again (the kubelet's 10 minutes)
    backoff_reset_s: float = 600.0
    revision_timeout_s: float = 300.0
    serve_queue_proxy_http: bool = True
    keep_logs: int = 20  # replica log files kept per revision (the newest; live ones always)


@dataclass(frozen=True)
class PoolStatus:
    ready: int
    desired: int
    actual: int
    restarts: int
    reason: str | None


def _exit_code(replica: Replica) -> int | None:
    """The replica's process's exit code (None: no process, or it is not known)."""
    exited = replica.exited
    if exited is None or not exited.done() or exited.cancelled() or exited.exception():
        return None
    return exited.result()


class RevisionPool:
    def __init__(
        self,
        spec: ReplicaSpec,
        container_concurrency: int,
        launcher: Launcher,
        clock: Clock,
        budget: ReplicaBudget,
        on_change: Callable[[RevisionPool], None] | None = None,
        on_stat: StatSink | None = None,
        settings: PoolSettings | None = None,
        service: str | None = None,
        configuration: str | None = None,
        log_dir: Path | None = None,
        on_replicas: Callable[[RevisionPool], None] | None = None,
    ) -> None:
        self.spec = spec
        self.key = spec.key
        self.container_concurrency = container_concurrency
        self.launcher = launcher
        self.clock = clock
        self.budget = budget
        self.on_change = on_change
        self.on_stat = on_stat
        self.settings = settings or PoolSettings()
        self.service = service or spec.model_name
        self.configuration = configuration or self.service
        self.log_dir = log_dir
        self.on_replicas = on_replicas
        self.template_hash = pod_template_hash(spec)
        self.desired = 0
        self.restarts = 0
        self.replicas: list[Replica] = []
        # Replicas that crashed, oldest first, each waiting for the start that restarts it in its
        # Pod (shown as that Pod, its container waiting or terminated, saying why).
        self.crashed: list[Crashed] = []
        self.reason: str | None = None
        self._retry_at: float | None = None  # the first restart of a Pod backing off
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()
        self._starting: dict[Replica, asyncio.Task[None]] = {}
        self._closed = False
        budget.subscribe(self.wake)

    # -- inputs --------------------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    def set_desired(self, n: int) -> None:
        if n < 0:
            raise ValueError(f"desired replicas={n}: must be >= 0")
        if n != self.desired:
            self.desired = n
            self._notify()
        self.wake()

    def delete_replica(self, name: str) -> bool:
        """Stop the live replica ``name`` (drained, as on a scale-down) and let reconcile start
        a replacement, a new Pod, as a Deployment replaces a deleted Pod; a crashed one is given
        up instead of restarted. False when none has it."""
        for c in self.crashed:
            if c.name == name:
                self.crashed.remove(c)
                self._notify()
                self.wake()
                return True
        for r in self.replicas:
            if r.name == name and not r.stopping and r.state is not ReplicaState.GONE:
                r.stopping = True
                r.state = ReplicaState.DRAINING
                self._changed()  # stop routing before draining
                self._notify()
                self._spawn(self._stop(r))
                self.wake()
                return True
        return False

    @property
    def closed(self) -> bool:
        return self._closed

    def wake(self) -> None:
        self._wake.set()

    # -- outputs -------------------------------------------------------------------------------

    def ready_targets(self) -> list[QueueProxy]:
        return [
            r.queue_proxy
            for r in self.replicas
            if r.state is ReplicaState.READY and r.queue_proxy is not None
        ]

    def status(self) -> PoolStatus:
        live = [r for r in self.replicas if r.state in (ReplicaState.STARTING, ReplicaState.READY)]
        return PoolStatus(
            ready=sum(1 for r in live if r.state is ReplicaState.READY),
            desired=self.desired,
            actual=len(live),
            restarts=self.restarts,
            reason=self.reason,
        )

    # -- the reconcile loop ----------------------------------------------------------------------

    async def _run(self) -> None:
        while not self._closed:
            self._wake.clear()
            try:
                self._reconcile()
            except Exception:
                log.exception("reconciling %s failed", self.key)
            timeout = None
            if self._retry_at is not None:
                timeout = max(0.0, self._retry_at - self.clock.now())
            sleeper = asyncio.ensure_future(self._wake.wait())
            waits: set[asyncio.Future[object]] = {sleeper}  # type: ignore[arg-type]
            timer = None
            if timeout is not None:
                timer = asyncio.ensure_future(self.clock.sleep(timeout))
                waits.add(timer)  # type: ignore[arg-type]
            try:
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for w in waits:
                    w.cancel()

    def _give_up_crashed(self, keep: int) -> None:
        """Keep only the ``keep`` oldest crashed replicas: fewer are wanted, the others' Pods go
        without a restart."""
        if len(self.crashed) > keep:
            del self.crashed[max(0, keep) :]
            self._notify()

    def _reconcile(self) -> None:
        self._retry_at = None  # set again below while a Pod backs off
        live = [r for r in self.replicas if r.state in (ReplicaState.STARTING, ReplicaState.READY)]
        surplus = len(live) - self.desired
        self._give_up_crashed(-surplus)
        if surplus > 0:
            self._scale_down(live, surplus)
            self.reason = None
            return
        missing = -surplus
        if missing == 0:
            self.reason = self.reason if self._backing_off() else None
            return
        # Pods backing off stay, to be restarted when their back-off ends, and are not replaced
        now = self.clock.now()
        held = [c.restart_at for c in self.crashed if c.restart_at > now]
        self._retry_at = min(held, default=None)
        to_start = missing - len(held)
        started = 0
        for _ in range(to_start):
            if not self.budget.try_acquire():
                break
            self._launch(now)
            started += 1
        if started < to_start:
            self.reason = (
                f"{self.budget.reason()}; {to_start - started} of {self.desired} replicas waiting"
            )
        elif not self._backing_off():
            self.reason = None

    def _backing_off(self) -> bool:
        """Whether a Pod of the revision is in CrashLoopBackOff: waiting out its back-off, or
        its run after one still starting (the reason says so until a replica is ready)."""
        return any(c.backoff_s is not None for c in self.crashed) or any(
            r.state is ReplicaState.STARTING
            and r.restarted_from is not None
            and r.restarted_from.backoff_s is not None
            for r in self.replicas
        )

    def _scale_down(self, live: list[Replica], surplus: int) -> None:
        starting = [r for r in live if r.state is ReplicaState.STARTING]
        ready = sorted(
            (r for r in live if r.state is ReplicaState.READY),
            key=lambda r: r.queue_proxy.in_flight if r.queue_proxy else 0,
        )
        victims = (starting + ready)[:surplus]
        for r in victims:
            r.stopping = True
            r.state = ReplicaState.DRAINING
        self._changed()  # stop routing before draining
        self._notify()
        for r in victims:
            self._spawn(self._stop(r))

    def _next_name(self) -> str:
        taken = {r.name for r in self.replicas} | {c.name for c in self.crashed}
        while True:
            suffix = "".join(_rng.choice(NAME_ALPHABET) for _ in range(5))
            name = f"{self.key.name}-deployment-{self.template_hash}-{suffix}"
            if name in taken:
                continue
            if self.log_dir is not None and (self.log_dir / f"{name}.log").exists():
                continue  # an earlier run's replica of that name: its log is not appended to
            return name

    def _launch(self, now: float) -> None:
        # the oldest crashed replica past its back-off is restarted in its Pod; else a new Pod
        due = next((i for i, c in enumerate(self.crashed) if c.restart_at <= now), None)
        restarted_from = self.crashed.pop(due) if due is not None else None
        name = restarted_from.name if restarted_from is not None else self._next_name()
        pod = PodIdentity(
            namespace=self.key.namespace,
            service=self.service,
            configuration=self.configuration,
            revision=self.key.name,
            pod=name,
        )
        replica = Replica(
            pod,
            self.spec,
            self.container_concurrency,
            self.clock,
            on_stat=self.on_stat,
            timeout_s=self.settings.revision_timeout_s,
            serve_http=self.settings.serve_queue_proxy_http,
            on_update=self._notify,
            restarted_from=restarted_from,
        )
        self.replicas.append(replica)
        self._starting[replica] = self._spawn(self._start(replica))
        self._notify()

    async def _start(self, replica: Replica) -> None:
        log_path = None
        if self.log_dir is not None:
            log_path = str(self.log_dir / run_log_name(replica.name, replica.restart_count))
            self._prune_logs()
        try:
            await replica.start(
                self.launcher,
                self.settings.ready_timeout_s,
                log_path,
                self.settings.term_timeout_s,
            )
        except asyncio.CancelledError:  # stopped while starting: ``start`` stopped its process
            replica.state = ReplicaState.GONE
            self._forget(replica)
            raise
        except (ReplicaStartError, OSError) as exc:
            await self._start_failed(replica, str(exc))
            return
        except Exception as exc:  # whatever went wrong, the slot must come back
            log.exception("starting replica %s of %s failed", replica.name, self.key)
            await self._start_failed(replica, f"{type(exc).__name__}: {exc}")
            return
        finally:
            self._starting.pop(replica, None)
        if replica.stopping:  # scaled down while starting: it never took traffic
            await replica.stop(0.0, self.settings.term_timeout_s)
            self._forget(replica)
            return
        if not self._backing_off():  # else another Pod still backs off: its reason stays
            self.reason = None
        assert replica.exited is not None
        replica.exited.add_done_callback(lambda _: self._on_exit(replica))
        self._changed()
        self.wake()

    def _prune_logs(self) -> None:
        """Remove this revision's oldest replica logs beyond ``keep_logs``; those ``kubectl logs``
        can still ask for stay (each Pod's current run and the run before it, as the kubelet
        keeps one dead container's log for ``--previous``)."""
        assert self.log_dir is not None
        runs = [(r.name, r.restart_count) for r in self.replicas]
        runs += [(c.name, c.restart_count) for c in self.crashed]
        live = {run_log_name(name, n) for name, count in runs for n in (count, count - 1) if n >= 0}
        try:
            old = [
                p
                for p in self.log_dir.glob(f"{self.key.name}-deployment-*.log")
                if p.name not in live
            ]
            old.sort(key=lambda p: p.stat().st_mtime)
        except OSError:
            return  # a file went while listing: prune on the next start
        for path in old[: max(0, len(old) + len(live) - self.settings.keep_logs)]:
            with contextlib.suppress(OSError):
                path.unlink()

    async def _start_failed(self, replica: Replica, error: str) -> None:
        replica.kill()
        if replica.exited is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(replica.exited), 5)
        await replica.close_proxy()
        crashed = not (replica.stopping or self._closed)
        if crashed:  # noted before the replica goes, so its Pod stays throughout
            self.restarts += 1
            self._crashed(replica, error, started=False)
        replica.state = ReplicaState.GONE
        self._forget(replica)
        if not crashed:
            return
        log.warning("replica %s of %s failed to start: %s", replica.name, self.key, error)
        self.wake()

    def _crashed(self, replica: Replica, why: str, *, started: bool) -> None:
        """Note ``replica``'s crash: it waits to be restarted in its Pod, after the Pod's
        back-off. ``started``: it crashed after it started (a failed start backs off from the
        first crash; a crash after a start restarts at once the first time)."""
        now = self.clock.now()
        before = replica.restarted_from  # the Pod's crash before this run
        crashes = 1
        if (
            before is not None
            and now - before.terminated.finished_at < self.settings.backoff_reset_s
        ):
            crashes = before.crashes + 1
        doublings = crashes - 2 if started else crashes - 1
        backoff = None
        if doublings >= 0:
            backoff = min(
                self.settings.backoff_max_s, self.settings.backoff_initial_s * 2**doublings
            )
            self.reason = f"CrashLoopBackOff: {why} (retry in {backoff:g}s)"
        run_start = replica.launched_at if replica.launched_at is not None else replica.started_at
        self.crashed.append(
            Crashed(
                name=replica.name,
                created_at=replica.pod_created_at,
                launched_at=replica.pod_launched_at,
                restart_count=replica.restart_count,
                terminated=termination(_exit_code(replica), why, run_start, now),
                last_state=replica.last_state,
                backoff_s=backoff,
                crashes=crashes,
            )
        )
        self._notify()

    def _on_exit(self, replica: Replica) -> None:
        if replica.stopping or self._closed:
            return
        # A crash: stop routing to it at once, count it, and let reconcile restart it in its
        # Pod (at once, unless the Pod crashed just before: then after its back-off).
        log.warning("replica %s of %s exited unexpectedly", replica.name, self.key)
        replica.state = ReplicaState.GONE
        self.restarts += 1
        self._crashed(replica, f"exited unexpectedly (code {_exit_code(replica)})", started=True)
        self._changed()
        self._notify()
        self._spawn(self._reap(replica))
        self.wake()

    async def _reap(self, replica: Replica) -> None:
        await replica.close_proxy()
        self._forget(replica)

    async def _stop(self, replica: Replica) -> None:
        start = self._starting.get(replica)
        if start is not None:
            # Still starting: its model load (minutes, for a big one) is not waited for; it never
            # took traffic, so cancelling its start stops its process at once.
            start.cancel()
            await asyncio.wait({start})
            self._starting.pop(replica, None)  # a start cancelled before it ran did not
            try:  # nothing to do, unless the start had just finished and was stopping it
                await replica.stop(0.0, self.settings.term_timeout_s)
            finally:
                self._forget(replica)
            return
        try:
            await replica.stop(self.settings.drain_timeout_s, self.settings.term_timeout_s)
        finally:
            self._forget(replica)

    def _forget(self, replica: Replica) -> None:
        if replica in self.replicas:
            self.replicas.remove(replica)
            self.budget.release()
            self._notify()

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change(self)

    def _notify(self) -> None:
        if self.on_replicas is not None:
            try:
                self.on_replicas(self)
            except Exception:
                log.exception("replica observer of %s failed", self.key)

    def _spawn(self, coro: object) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)  # type: ignore[call-overload]
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    # -- shutdown ------------------------------------------------------------------------------

    async def close(self, graceful: bool = True) -> None:
        """Stop every replica (drained when ``graceful``) and the reconcile task."""
        self.desired = 0
        self._closed = True
        self.crashed.clear()
        self.budget.unsubscribe(self.wake)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        drain = self.settings.drain_timeout_s if graceful else 0.0
        for r in self.replicas:
            r.stopping = True
            if r.state is not ReplicaState.GONE:
                r.state = ReplicaState.DRAINING
        self._changed()
        self._notify()
        # Replicas still starting never took traffic: a model load is not waited for (it can
        # take minutes); cancelling the start stops the process (those being stopped already
        # are left to finish, awaited with the background tasks).
        for task in list(self._starting.values()):
            if not task.cancelling():
                task.cancel()
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        await asyncio.gather(
            *(r.stop(drain, self.settings.term_timeout_s) for r in list(self.replicas)),
            return_exceptions=True,
        )
        for r in list(self.replicas):
            self._forget(r)
