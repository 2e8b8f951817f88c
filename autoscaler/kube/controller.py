"""The tuner's controller: each tick, for every ModelScaler, observe its serving revisions, ask the
pure policy (``autoscaler.tuner.recommend``) and apply what it says per ``updateMode``.

A thin driver around ``tick(now_s)``, which tests call directly; ``run()`` loops on the injected
clock. Reads come from informers (list+watch caches that relist after an API restart); writes
are read-modify-write with retries, each fenced by ``is_leader()`` right before it. Only the
leader ticks; a replica that becomes leader resumes from the checkpoints in the ModelScalers'
status, so nothing is relearned and nothing applied twice.

Time base: the tuner's times (observations, learned state, the checkpoint) are wall seconds
(``clock.wall()``), because the checkpoint outlives the process and must mean the same in the
next one; monotonic time serves only for durations and leader election.

Kubernetes calls block (the official client is synchronous): they run in worker threads so the
event loop (metrics endpoint, CloudEvents, the metric source) never waits on them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, cast

from kubernetes import client
from kubernetes.client.rest import ApiException

from autoscaler.clock import Clock
from autoscaler.metrics.source import MetricSource, RevisionKey, RevisionRef
from autoscaler.runtime.reconcile.names import ISVC_LABEL, revision_order
from autoscaler.tuner import (
    CheckpointError,
    SettingsError,
    TunerConfig,
    decode_checkpoint,
    parse_tuner_config,
)
from autoscaler.tuner.observation import RevisionObservation

from . import model as m
from .endpoints import EndpointResolver
from .informer import Informer, Resource
from .leader import LeaderElector
from .notify import Notifier
from .reconciler import MODELSCALERS, ModelReconciler, ModelReport
from .settings import ControllerSettings
from .telemetry import ControllerMetrics

log = logging.getLogger(__name__)

INFERENCESERVICES = Resource(
    "serving.kserve.io", "v1beta1", "inferenceservices", "InferenceService"
)
REVISIONS = Resource("serving.knative.dev", "v1", "revisions", "Revision")


@dataclass(frozen=True, slots=True)
class TickReport:
    now_s: float
    leader: bool
    models: Mapping[m.ModelKey, ModelReport] = field(default_factory=dict)
    metrics_error: str | None = None


class Controller:
    """The tuner controller for every ModelScaler the API shows it."""

    def __init__(
        self,
        api_client: client.ApiClient,
        source: MetricSource,
        settings: ControllerSettings,
        clock: Clock,
        *,
        elector: LeaderElector | None = None,
        endpoints: EndpointResolver | None = None,
        metrics: ControllerMetrics | None = None,
        owns_source: bool = False,
    ) -> None:
        self.settings = settings
        self._owns_source = owns_source  # stop() closes the source too
        self.metrics = metrics or ControllerMetrics()
        self._api_client = api_client
        self._custom = client.CustomObjectsApi(api_client)
        self._core = client.CoreV1Api(api_client)
        self._source = source
        self._clock = clock
        self._elector = elector
        self._endpoints = endpoints
        ns = settings.watch_namespace
        self._scalers = Informer(api_client, MODELSCALERS, namespace=ns)
        self._isvcs = Informer(api_client, INFERENCESERVICES, namespace=ns)
        self._revisions = Informer(
            api_client, REVISIONS, namespace=ns, label_selector=ISVC_LABEL, index=_isvc_of
        )
        self.notifier = Notifier(
            api_client,
            sink_url=settings.sink_url,
            sink_timeout_s=settings.sink_timeout_s,
            identity=settings.identity,
            is_leader=self.is_leader,
            on_error=lambda kind: self.metrics.errors.labels(kind).inc(),
            on_sent=self.metrics.cloudevents.inc,
            request_timeout_s=settings.request_timeout_s,
        )
        self._reconciler = ModelReconciler(
            api_client, settings, self.metrics, self.notifier, self.is_leader
        )
        self.config = TunerConfig()
        self._memory: dict[m.ModelKey, m.ModelMemory] | None = None
        self._term = 0  # the elector's count of terms won, at the last tick
        # the revisions observed at the last tick (leading): sampled until the next one
        self._observed: list[RevisionRef] = []
        self._started = False
        self._lead_task: asyncio.Task[None] | None = None
        # Read-only for observers (tests, dashboards): the latest tick's report and how many ran.
        self.last_report: TickReport | None = None
        self.ticks = 0
        self._tick_listeners: list[Callable[[TickReport], None]] = []

    # --- lifecycle -----------------------------------------------------------------------
    def start(self) -> None:
        """Start the informers (idempotent)."""
        if not self._started:
            for informer in (self._scalers, self._isvcs, self._revisions):
                informer.start()
            start = getattr(self._endpoints, "start", None)
            if callable(start):  # a resolver that watches (PodEndpoints)
                start()
            self._started = True

    def wait_synced(self, timeout_s: float = 30.0) -> bool:
        return all(i.wait_synced(timeout_s) for i in (self._scalers, self._isvcs, self._revisions))

    def ready(self) -> bool:
        return all(i.has_synced() for i in (self._scalers, self._isvcs, self._revisions))

    def cached(self, resource: Resource, namespace: str, name: str) -> dict[str, Any] | None:
        """An object as this controller's informers see it (None: not seen yet)."""
        for informer in (self._scalers, self._isvcs, self._revisions):
            if informer.resource == resource:
                return informer.get(namespace, name)
        raise KeyError(f"no informer for {resource.plural}")

    def cached_list(self, resource: Resource) -> list[dict[str, Any]]:
        """Every object of ``resource`` this controller's informers hold (read-only view)."""
        for informer in (self._scalers, self._isvcs, self._revisions):
            if informer.resource == resource:
                return informer.list()
        raise KeyError(f"no informer for {resource.plural}")

    def add_tick_listener(self, listener: Callable[[TickReport], None]) -> None:
        """Call ``listener(report)`` on the event loop after every tick (it must not block)."""
        self._tick_listeners.append(listener)

    def is_leader(self) -> bool:
        return self._elector is None or self._elector.is_leader()

    async def run(self) -> None:
        """Tick every ``tick_period_s`` for ever (leader election runs beside it)."""
        self.start()
        await asyncio.to_thread(self.wait_synced, 60.0)
        self.start_election()
        while True:
            leading = True
            try:
                leading = (await self.tick()).leader
            except Exception:
                log.exception("tick failed")
                self.metrics.errors.labels("tick").inc()
            period = self.config.loop.tick_period_s
            if not leading and self._elector is not None:
                # A stand-by looks again soon, so it acts as soon as it wins the Lease.
                period = min(period, self._elector.config.retry_period_s)
            await self._wait_sampling(period if leading else 0.0, period)

    async def _wait_sampling(self, sampled_s: float, period_s: float) -> None:
        """Wait ``period_s``; over the first ``sampled_s`` of it, let the metric source sample
        the revisions of the last tick every ``sample_period_s``, with their replicas as listed
        at each round (its figures for the next tick). Only while leading."""
        every = self._source.sample_period_s
        end = self._clock.now() + period_s
        if every > 0:
            stop = self._clock.now() + sampled_s
            while stop - self._clock.now() > every:
                await self._clock.sleep(every)
                if not self._observed or not self.is_leader():
                    continue
                try:
                    refs = [
                        replace(r, replicas=await self._replicas(r.namespace, r.revision))
                        for r in self._observed
                    ]
                    await self._source.sample(refs, self._clock.wall())
                except Exception as exc:  # the next round tries again; the tick falls back
                    log.warning("metric sampling failed: %s", exc)
                    self.metrics.errors.labels("metrics").inc()
        await self._clock.sleep(end - self._clock.now())

    def start_election(self) -> None:
        """Try for the Lease every retry period, on this event loop (idempotent; no-op
        without an elector)."""
        if self._elector is not None and self._lead_task is None:
            self._lead_task = asyncio.get_running_loop().create_task(self._lead())

    async def _lead(self) -> None:
        assert self._elector is not None
        while True:
            try:
                await asyncio.to_thread(self._elector.try_acquire_or_renew)
            except Exception as exc:  # the API may be down: not leader until it answers
                log.info("leader election: %s", exc)
            self.metrics.leader.set(1 if self.is_leader() else 0)
            await self._clock.sleep(self._elector.config.retry_period_s)

    async def stop(self, release: bool = True) -> None:
        """Stop electing and watching; ``release=False`` leaves the Lease to expire (a crash)."""
        if self._lead_task is not None:
            self._lead_task.cancel()
            await asyncio.gather(self._lead_task, return_exceptions=True)
            self._lead_task = None
        if release and self._elector is not None:
            await asyncio.to_thread(self._elector.release)
        for informer in (self._scalers, self._isvcs, self._revisions):
            await asyncio.to_thread(informer.stop)
        stop = getattr(self._endpoints, "stop", None)
        if callable(stop):
            await asyncio.to_thread(stop)
        await self.notifier.close()
        if self._owns_source:
            await self._source.close()

    # --- one tick ------------------------------------------------------------------------
    async def tick(self, now_s: float | None = None) -> TickReport:
        """One pass over every ModelScaler at ``now_s`` (wall seconds; the clock's by default)."""
        started = self._clock.now()
        now = self._clock.wall() if now_s is None else now_s
        leading = self.is_leader()
        self.metrics.leader.set(1 if leading else 0)
        term = self._elector.transitions if self._elector is not None else 0
        if not leading or term != self._term:
            # Resume from the checkpoints when leading again, also when leadership was lost
            # and won back since the last tick: another leader may have learned and written
            # meanwhile, and this memory would overwrite its checkpoint.
            self._memory = None
            self._observed = []
        self._term = term
        if not leading:
            return self._reported(TickReport(now, False))
        if self._memory is None:
            self._memory = await asyncio.to_thread(self._load_memory)
        self.config = await asyncio.to_thread(self._read_config, self.config)
        plans = m.one_scaler_per_model(
            [self._plan(obj) for obj in sorted(self._scalers.list(), key=m.key_of)]
        )
        self._adopt_resumed(plans)
        observations, metrics_error = await self._observe(plans, now)
        reports: dict[m.ModelKey, ModelReport] = {}
        for plan in plans:
            mem = self._memory.get(plan.key)
            if mem is None:
                mem = self._memory[plan.key] = self._memory_from(plan.scaler)
            try:
                reports[plan.key] = await self._reconciler.reconcile(
                    plan, mem, self.config, observations, metrics_error, now,
                    no_data_reasons=getattr(self._source, "last_reasons", None),
                )  # fmt: skip
            except Exception as exc:  # one model's failure must not stop the others' ticks
                log.exception(
                    "reconciling %s/%s failed", *plan.key,
                    extra={"fields": {"error": repr(exc)}},
                )  # fmt: skip
                reports[plan.key] = await self._reconciler.failed(plan, mem, exc, now)
        for key in set(self._memory) - set(reports):
            del self._memory[key]  # the ModelScaler is gone
        self.metrics.tick_seconds.observe(max(0.0, self._clock.now() - started))
        return self._reported(TickReport(now, True, reports, metrics_error))

    def _adopt_resumed(self, plans: Sequence[m.ModelPlan]) -> None:
        """Revisions resumed from the checkpoint take the values their object carries as
        applied before anything reads them (``model.adopt``): the observations' target in force
        too. Where the tuner writes the PodAutoscaler, the reconciler does it on reading it."""
        assert self._memory is not None
        for plan in plans:
            mem = self._memory.get(plan.key)
            if mem is None or plan.spec is None or plan.spec.apply_method != "revision":
                continue
            for rev in plan.revisions:
                state = mem.known_state(rev) if rev.name in mem.resumed else None
                if state is not None:
                    mem.states[rev.name] = m.adopt(state, rev, rev.annotations)

    def _reported(self, report: TickReport) -> TickReport:
        self.last_report = report
        self.ticks += 1
        for listener in list(self._tick_listeners):
            try:
                listener(report)
            except Exception:  # an observer's failure must not stop the tuner
                log.exception("tick listener failed")
        return report

    def _load_memory(self) -> dict[m.ModelKey, m.ModelMemory]:
        """Resume from every ModelScaler's checkpoint (a fresh list: the cache may lag)."""
        try:
            ns = self.settings.watch_namespace
            r = MODELSCALERS
            if ns:
                listing = self._custom.list_namespaced_custom_object(
                    r.group,
                    r.version,
                    ns,
                    r.plural,
                    _request_timeout=self.settings.request_timeout_s,
                )
            else:
                listing = self._custom.list_cluster_custom_object(
                    r.group, r.version, r.plural, _request_timeout=self.settings.request_timeout_s
                )
            items = cast(dict[str, Any], listing).get("items") or []
        except Exception as exc:
            log.warning("listing ModelScalers failed, resuming from the cache: %s", exc)
            items = self._scalers.list()
        return {m.key_of(obj): self._memory_from(obj) for obj in items}

    def _memory_from(self, obj: Mapping[str, Any]) -> m.ModelMemory:
        status = dict(obj.get("status") or {})
        mem = m.ModelMemory(status=status or None)
        text = status.get("checkpoint")
        if text:
            try:
                mem.states = decode_checkpoint(text)
            except CheckpointError as exc:
                log.warning(
                    "ignoring a malformed checkpoint: starting from scratch",
                    extra={
                        "fields": {"modelscaler": "/".join(m.key_of(dict(obj))), "error": str(exc)}
                    },
                )
                self.metrics.errors.labels("checkpoint").inc()
        if mem.states:
            mem.live = max(mem.states, key=revision_order)
            mem.resumed = set(mem.states)
        return mem

    def _read_config(self, current: TunerConfig) -> TunerConfig:
        """The tuner ConfigMap, parsed; absent: defaults; invalid: the previous config kept."""
        s = self.settings
        try:
            cm = self._core.read_namespaced_config_map(
                s.config_map, s.namespace, _request_timeout=s.request_timeout_s
            )
        except ApiException as exc:
            if exc.status == 404:
                return TunerConfig()
            log.warning("reading ConfigMap %s/%s: %s", s.namespace, s.config_map, exc.reason)
            self.metrics.errors.labels("config").inc()
            return current
        except Exception as exc:
            log.warning("reading ConfigMap %s/%s: %s", s.namespace, s.config_map, exc)
            self.metrics.errors.labels("config").inc()
            return current
        try:
            return parse_tuner_config(cm.data or {})
        except SettingsError as exc:
            log.error("ConfigMap %s/%s is invalid, keeping the previous settings: %s",
                      s.namespace, s.config_map, exc)  # fmt: skip
            self.metrics.errors.labels("config").inc()
            return current

    def _plan(self, scaler: dict[str, Any]) -> m.ModelPlan:
        ns = m.key_of(scaler)[0]
        target = ((scaler.get("spec") or {}).get("targetRef") or {}).get("name")
        isvc = self._isvcs.get(ns, target) if isinstance(target, str) and target else None
        # filed by the label: a model's own revisions, not every one in the namespace
        labelled = self._revisions.indexed(ns, target) if isinstance(target, str) else []
        return m.plan_model(scaler, isvc, labelled)

    async def _observe(
        self, plans: Sequence[m.ModelPlan], now: float
    ) -> tuple[dict[RevisionKey, RevisionObservation | None], str | None]:
        refs: list[RevisionRef] = []
        for plan in plans:
            if plan.spec is None or plan.spec.update_mode == "Off":
                continue
            mem = self._memory.get(plan.key) if self._memory is not None else None
            for rev in plan.revisions:
                state = mem.known_state(rev) if mem else None
                live = m.in_force(rev, state, None)
                refs.append(
                    RevisionRef(
                        namespace=rev.namespace,
                        revision=rev.name,
                        configuration=rev.configuration,
                        service=rev.service,
                        applied_target=live.target,
                        target_utilization_percentage=live.utilization_percentage,
                        replicas=await self._replicas(rev.namespace, rev.name),
                        ready_replicas=rev.ready_replicas,
                        container_concurrency=rev.container_concurrency,
                    )
                )
        self._observed = refs
        if not refs:
            return {}, None
        try:
            return dict(await self._source.observe(refs, now)), None
        except Exception as exc:  # MetricsUnavailable, or a source's own failure: fail-static
            log.warning("metric source failed: %s", exc, extra={"fields": {"error": repr(exc)}})
            self.metrics.errors.labels("metrics").inc()
            return {}, f"{type(exc).__name__}: {exc}"

    async def _replicas(self, namespace: str, revision: str) -> tuple:
        if self._endpoints is None:
            return ()
        return await asyncio.to_thread(self._endpoints.replicas, namespace, revision)


def _isvc_of(revision: dict[str, Any]) -> str | None:
    """The InferenceService a Revision belongs to (its ``ISVC_LABEL``), the index of
    ``Controller._revisions``."""
    value = ((revision.get("metadata") or {}).get("labels") or {}).get(ISVC_LABEL)
    return str(value) if value is not None else None
