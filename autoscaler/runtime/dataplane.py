"""``DataPlane``: the one-machine Knative/KServe data plane behind one facade.

The reconcilers drive it; it owns the replica launcher (the zygote by default) and the local-function launcher, the machine-wide
replica budget, one ``RevisionPool`` per revision, the activator and the ingress, and keeps
them consistent: whenever a pool's ready replicas change, the activator's targets and the
ingress's direct targets change with them. Stats from every queue-proxy and from the activator,
and the activator's pokes, go to the callbacks registered with ``on_stat`` / ``on_poke``.

Usage::

    async with DataPlane(clock) as dp:
        dp.ensure_revision(key, spec, container_concurrency=0)
        dp.set_route("iris.default.example.com", [(key, 100, None)])
        dp.set_desired(key, 1)
        ... POST {dp.ingress_url}/v1/models/iris:predict with Host: iris.default.example.com
"""

from __future__ import annotations

import contextlib
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from autoscaler.clock import Clock, SystemClock
from autoscaler.runtime.activator import Activator, ActivatorSettings, Target
from autoscaler.runtime.capacity import ReplicaBudget
from autoscaler.runtime.ingress import DEFAULT_MAX_BODY_BYTES, Ingress
from autoscaler.runtime.launcher import FunctionLauncher, Launcher, ZygoteLauncher
from autoscaler.runtime.pool import PoolSettings, RevisionPool
from autoscaler.runtime.routing import DEFAULT_DOMAIN, RouteTable, TrafficTarget
from autoscaler.runtime.spec import PredictorKind, ReplicaSpec, RevisionKey
from autoscaler.runtime.stats import Stat

log = logging.getLogger(__name__)

StatCallback = Callable[[RevisionKey, Stat], None]
PokeCallback = Callable[[RevisionKey], None]
ReplicasCallback = Callable[[RevisionPool], None]


@dataclass(frozen=True)
class RevisionStatus:
    ready: int
    desired: int
    actual: int
    restarts: int
    reason: str | None
    activator_in_path: bool
    queued: int = 0


@dataclass
class _Revision:
    pool: RevisionPool
    kserve_paths: bool = True
    activator_in_path: bool = True
    targets: list[Target] = field(default_factory=list)


class DataPlane:
    def __init__(
        self,
        clock: Clock | None = None,
        *,
        launcher: Launcher | None = None,
        domain: str = DEFAULT_DOMAIN,
        max_replicas: int | None = None,
        rng: random.Random | None = None,
        activator_settings: ActivatorSettings | None = None,
        pool_settings: PoolSettings | None = None,
        log_dir: Path | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        ingress_port: int = 0,
    ) -> None:
        self.clock: Clock = clock or SystemClock()
        self.domain = domain
        self.launcher: Launcher = launcher or ZygoteLauncher(
            log_path=str(log_dir / "zygote.log") if log_dir else None
        )
        # Local functions are their own processes, not forks of the model server zygote.
        self.function_launcher = FunctionLauncher()
        self.budget = ReplicaBudget(max_replicas)
        self.pool_settings = pool_settings or PoolSettings()
        self.log_dir = log_dir
        self.routes = RouteTable()
        self._revisions: dict[RevisionKey, _Revision] = {}
        self._stat_callbacks: list[StatCallback] = []
        self._poke_callbacks: list[PokeCallback] = []
        self._replicas_callbacks: list[ReplicasCallback] = []
        self.activator = Activator(
            self.clock, activator_settings, on_poke=self._poke, on_stat=self._stat
        )
        self.ingress = Ingress(
            self.routes,
            self,
            self.activator,
            rng=rng,
            max_body_bytes=max_body_bytes,
            port=ingress_port,
        )

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
        await self.launcher.start()
        await self.activator.start()
        await self.ingress.start()
        self.function_launcher.proxy_url = self.ingress.url

    async def close(self) -> None:
        await self.ingress.close()
        for key in list(self._revisions):
            await self.remove_revision(key, graceful=False)
        await self.activator.close()
        await self.launcher.close()
        await self.function_launcher.close()

    async def __aenter__(self) -> DataPlane:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def ingress_url(self) -> str:
        return self.ingress.url

    # -- callbacks -----------------------------------------------------------------------------

    def on_stat(self, callback: StatCallback) -> None:
        self._stat_callbacks.append(callback)

    def on_poke(self, callback: PokeCallback) -> None:
        self._poke_callbacks.append(callback)

    def on_replicas(self, callback: ReplicasCallback) -> None:
        """``callback(pool)`` on every step of a revision's replicas (see ``RevisionPool``),
        when a revision's pool is added, and when it is removed (``pool.closed``). It runs on the
        data path: it must only note the change."""
        self._replicas_callbacks.append(callback)

    def _replicas(self, pool: RevisionPool) -> None:
        for cb in self._replicas_callbacks:
            try:
                cb(pool)
            except Exception:
                log.exception("replicas callback failed for %s", pool.key)

    def _stat(self, key: RevisionKey, stat: Stat) -> None:
        for cb in self._stat_callbacks:
            try:
                cb(key, stat)
            except Exception:
                log.exception("stat callback failed for %s", key)

    def _poke(self, key: RevisionKey) -> None:
        for cb in self._poke_callbacks:
            try:
                cb(key)
            except Exception:
                log.exception("poke callback failed for %s", key)

    # -- routes --------------------------------------------------------------------------------

    def set_route(self, host: str, targets: Sequence[tuple[RevisionKey, int, str | None]]) -> None:
        """Route ``host`` to revisions by percent; tagged ones also get ``<tag>-<host>``."""
        self.routes.set_route(host, [TrafficTarget(k, p, t) for k, p, t in targets])

    def remove_route(self, host: str) -> None:
        self.routes.remove_route(host)

    # -- revisions -----------------------------------------------------------------------------

    def ensure_revision(
        self,
        key: RevisionKey,
        spec: ReplicaSpec,
        container_concurrency: int = 0,
        *,
        service: str | None = None,
        configuration: str | None = None,
        timeout_s: float | None = None,
        kserve_paths: bool | None = None,
    ) -> None:
        """Create the revision's pool (at zero replicas) unless it exists with the same spec.

        ``timeout_s``: the revision's timeoutSeconds (unset or 0: the pool settings' default,
        Knative's 300 s); it bounds a request in the queue-proxy and in the activator.
        ``kserve_paths``: whether the revision runs KServe's model server, so the ingress
        answers a KServe model path naming another model 404 itself (an InferenceService's
        revision); by default every revision but a function's. Every path reaches the revision.
        """
        if spec.key != key:
            raise ValueError(f"spec is for revision {spec.key}, not {key}")
        if container_concurrency < 0:
            raise ValueError(f"containerConcurrency={container_concurrency}: must be >= 0")
        existing = self._revisions.get(key)
        if existing is not None:
            pool = existing.pool
            if pool.spec != spec or pool.container_concurrency != container_concurrency:
                raise ValueError(
                    f"revision {key} exists with another spec: a revision is immutable"
                )
            return
        settings = self.pool_settings
        if timeout_s:
            settings = PoolSettings(**{**settings.__dict__, "revision_timeout_s": timeout_s})
        launcher = (
            self.function_launcher if spec.predictor is PredictorKind.FUNCTION else self.launcher
        )
        pool = RevisionPool(
            spec,
            container_concurrency,
            launcher,
            self.clock,
            self.budget,
            on_change=self._pool_changed,
            on_stat=self._stat,
            settings=settings,
            service=service,
            configuration=configuration,
            log_dir=self.log_dir,
            on_replicas=self._replicas,
        )
        if kserve_paths is None:
            kserve_paths = spec.predictor is not PredictorKind.FUNCTION
        self._revisions[key] = _Revision(pool, kserve_paths=kserve_paths)
        # The activator bounds a buffered request by the revision's timeoutSeconds, too.
        self.activator.set_targets(
            key, [], container_concurrency, timeout_s=settings.revision_timeout_s
        )
        pool.start()
        self._replicas(pool)

    async def remove_revision(self, key: RevisionKey, graceful: bool = True) -> None:
        rev = self._revisions.pop(key, None)
        if rev is None:
            return
        self.activator.remove_revision(key)
        with contextlib.suppress(Exception):
            await rev.pool.close(graceful=graceful)
        self._replicas(rev.pool)

    def set_activator_in_path(self, key: RevisionKey, in_path: bool) -> None:
        self._get(key).activator_in_path = in_path

    def set_desired(self, key: RevisionKey, n: int) -> None:
        self._get(key).pool.set_desired(n)

    def delete_replica(self, key: RevisionKey, name: str) -> bool:
        """Stop the live replica ``name`` of ``key``; its pool starts a replacement."""
        rev = self._revisions.get(key)
        return rev is not None and rev.pool.delete_replica(name)

    def status(self, key: RevisionKey) -> RevisionStatus:
        rev = self._get(key)
        s = rev.pool.status()
        return RevisionStatus(
            ready=s.ready,
            desired=s.desired,
            actual=s.actual,
            restarts=s.restarts,
            reason=s.reason,
            activator_in_path=rev.activator_in_path,
            queued=self.activator.queued(key),
        )

    def pool(self, key: RevisionKey) -> RevisionPool:
        return self._get(key).pool

    def revisions(self) -> list[RevisionKey]:
        return sorted(self._revisions)

    def _get(self, key: RevisionKey) -> _Revision:
        rev = self._revisions.get(key)
        if rev is None:
            raise KeyError(f"unknown revision {key}")
        return rev

    def _pool_changed(self, pool: RevisionPool) -> None:
        rev = self._revisions.get(pool.key)
        if rev is None or rev.pool is not pool:
            return
        rev.targets = list(pool.ready_targets())
        self.activator.set_targets(pool.key, rev.targets, pool.container_concurrency)

    # -- what the ingress asks (RevisionDirectory) ---------------------------------------------

    def model_name(self, key: RevisionKey) -> str | None:
        rev = self._revisions.get(key)
        return None if rev is None else rev.pool.spec.model_name

    def kserve_paths(self, key: RevisionKey) -> bool:
        rev = self._revisions.get(key)
        return True if rev is None else rev.kserve_paths

    def direct_targets(self, key: RevisionKey) -> Sequence[Target]:
        rev = self._revisions.get(key)
        if rev is None or rev.activator_in_path:
            return ()
        return rev.targets
