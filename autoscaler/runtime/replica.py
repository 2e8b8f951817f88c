"""One replica's lifecycle: process and queue-proxy up, ready, draining, gone.

Like a pod of a Knative revision: the replica process (a KServe model server on 127.0.0.1) and
its queue-proxy start together; it is ready once ``GET /v2/health/ready`` (a function: its
readiness path, ``ReplicaSpec.health_path``) answers 200. Stopping
is a graceful drain: the pool stops routing to it first, then we wait for the requests in its
queue-proxy to finish (up to ``drain_timeout_s``), send SIGTERM (uvicorn finishes what is left),
and SIGKILL after ``term_timeout_s``. One stopped while it starts (its model loading) has its
start cancelled: its process gets SIGTERM at once and SIGKILL after ``term_timeout_s``, as
Kubernetes stops a container whatever its readiness.

A replica started in place of one that crashed (``restarted_from``) is the next run of the same
Pod: it keeps the crashed one's name and Pod creation time and counts one restart more.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable
from enum import StrEnum

import aiohttp

from autoscaler.clock import Clock
from autoscaler.runtime.launcher import (
    TERM_TIMEOUT_S,
    Launcher,
    ReplicaProcess,
    ReplicaStartError,
    terminate,
)
from autoscaler.runtime.qpmetrics import PodIdentity
from autoscaler.runtime.queueproxy import QueueProxy, StatSink
from autoscaler.runtime.restarts import Crashed, Termination, pod_first_launch, run_number
from autoscaler.runtime.spec import ReplicaSpec

READY_POLL_S = 0.01


class ReplicaState(StrEnum):
    STARTING = "Starting"
    READY = "Ready"
    DRAINING = "Draining"
    GONE = "Gone"


class Replica:
    def __init__(
        self,
        pod: PodIdentity,
        spec: ReplicaSpec,
        container_concurrency: int,
        clock: Clock,
        on_stat: StatSink | None = None,
        timeout_s: float = 300.0,
        serve_http: bool = True,
        on_update: Callable[[], None] | None = None,
        restarted_from: Crashed | None = None,
    ) -> None:
        if restarted_from is not None and restarted_from.name != pod.pod:
            raise ValueError(f"replica {pod.pod} cannot restart {restarted_from.name}")
        self.pod = pod
        self.name = pod.pod
        self.spec = spec
        self.container_concurrency = container_concurrency
        self.clock = clock
        self.on_stat = on_stat
        self.timeout_s = timeout_s
        self.serve_http = serve_http
        self.state = ReplicaState.STARTING
        self.process: ReplicaProcess | None = None
        self.queue_proxy: QueueProxy | None = None
        self.stopping = False  # asked to go: its exit is not a crash
        self.started_at = clock.now()
        self.launched_at: float | None = None  # the process is up (its port known)
        self.ready_at: float | None = None
        self.restarted_from = restarted_from
        # Told of every step of the lifecycle (process up, ready, draining, gone); it must not
        # block: it only notes that something changed.
        self.on_update = on_update

    def _updated(self) -> None:
        if self.on_update is not None:
            self.on_update()

    @property
    def restart_count(self) -> int:
        """This run's restart count in its Pod (0: the Pod's first run)."""
        return run_number(self.restarted_from)

    @property
    def last_state(self) -> Termination | None:
        """How the Pod's run before this one ended (None: this is its first)."""
        return None if self.restarted_from is None else self.restarted_from.terminated

    @property
    def pod_created_at(self) -> float:
        """When the Pod's first run started (this one's start, if it is the first)."""
        return self.started_at if self.restarted_from is None else self.restarted_from.created_at

    @property
    def pod_launched_at(self) -> float | None:
        """When the Pod's first process was up (its queue-proxy's start)."""
        return pod_first_launch(self.restarted_from, self.launched_at)

    @property
    def exited(self) -> asyncio.Future[int] | None:
        return None if self.process is None else self.process.exited

    async def start(
        self,
        launcher: Launcher,
        ready_timeout_s: float,
        log_path: str | None,
        term_timeout_s: float = TERM_TIMEOUT_S,
    ) -> None:
        """Launch, attach a queue-proxy and wait until ready. Raises ReplicaStartError.

        Cancelled, the process is stopped (SIGTERM, SIGKILL after ``term_timeout_s``: by the
        launcher while it has not handed it over) and the replica is gone when this returns."""
        try:
            self.process = await launcher.launch(self.spec, log_path, term_timeout_s=term_timeout_s)
            self.launched_at = self.clock.now()
            self.queue_proxy = QueueProxy(
                self.spec.key,
                self.pod,
                self.process.port,
                self.container_concurrency,
                self.clock,
                on_stat=self.on_stat,
                timeout_s=self.timeout_s,
            )
            await self.queue_proxy.start(serve_http=self.serve_http)
            self._updated()
            await self._wait_ready(ready_timeout_s)
        except asyncio.CancelledError:
            self.stopping = True
            try:
                if self.process is not None:
                    await terminate(self.process, term_timeout_s)
            finally:
                self.state = ReplicaState.GONE
                self._updated()
                with contextlib.suppress(Exception):
                    await self.close_proxy()
            raise
        if not self.stopping:
            self.state = ReplicaState.READY
            self.ready_at = self.clock.now()
            self._updated()

    async def _wait_ready(self, timeout_s: float) -> None:
        assert self.process is not None
        url = f"http://127.0.0.1:{self.process.port}{self.spec.health_path}"
        deadline = self.clock.now() + timeout_s
        async with aiohttp.ClientSession() as session:
            while True:
                if not self.process.running:
                    code = self.process.exited.result()
                    raise ReplicaStartError(f"replica {self.name} exited with {code} before ready")
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.get(url) as resp:
                        if resp.status == 200:
                            return
                if self.clock.now() >= deadline:
                    raise ReplicaStartError(f"replica {self.name} not ready within {timeout_s}s")
                await asyncio.sleep(READY_POLL_S)

    async def stop(self, drain_timeout_s: float, term_timeout_s: float) -> None:
        """Drain, SIGTERM, then SIGKILL. The caller has already stopped routing to it."""
        self.stopping = True
        self.state = ReplicaState.DRAINING
        self._updated()
        if self.queue_proxy is not None and self.process is not None and self.process.running:
            await self.queue_proxy.wait_idle(drain_timeout_s)
        if self.process is not None and self.process.running:
            await terminate(self.process, term_timeout_s)
        await self.close_proxy()
        self.state = ReplicaState.GONE
        self._updated()

    async def close_proxy(self) -> None:
        if self.queue_proxy is not None:
            await self.queue_proxy.close()

    def kill(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
