"""Where the dashboard's data comes from: one ``DashboardSource`` protocol, two implementations.

- ``ControllerSource``: the tuner controller's view, for a cluster: ModelScalers,
  InferenceServices and Revisions from its informer caches, replica counts from the Revisions'
  status, history from its tick reports.
- ``OneMachineSource``: the same, plus the data plane's live replica counts, looked at every
  ``sample_period_s`` while the page is read (within ``WATCHED_S`` of the last read) so replica
  charts do not wait for a tuner tick, and the activator's pokes, so a cold start is a request
  that waited on a revision with no ready replica (not a pre-warm). A look costs one read of the
  live counts; only when they changed (or a cold start waits to be recorded) does it read the
  objects, index them and record the models that changed. While nobody reads the page it only
  records the cold starts (the tuner's ticks still record replicas), so it costs next to nothing.
  It reads the API server directly when the machine runs no tuner.

``feed_tick`` turns one ``TickReport`` into recorder samples and decisions. Every pass indexes
the objects once (``World.index``), so its work is linear in the number of models.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Protocol, cast

from autoscaler.clock import Clock, SystemClock
from autoscaler.runtime.spec import RevisionKey
from autoscaler.tuner.percentile import percentile_from_counts

from . import view
from .recorder import Decision, ModelKey, Recorder, TickSample, finite
from .view import World

if TYPE_CHECKING:
    from autoscaler.kube.controller import Controller, TickReport
    from autoscaler.runtime.onemachine import OneMachine

log = logging.getLogger(__name__)

GROUPS = {
    "isvcs": ("serving.kserve.io", "v1beta1", "inferenceservices"),
    "scalers": ("modelscale.dev", "v1alpha1", "modelscalers"),
    "revisions": ("serving.knative.dev", "v1", "revisions"),
}


class DashboardSource(Protocol):
    """What the dashboard reads. ``world()`` is cheap enough to call per request."""

    recorder: Recorder
    sample_period_s: float  # 0: no periodic sampling

    async def world(self) -> World: ...

    async def sample(self) -> None:
        """Record what can be seen now (live replica counts) into the recorder."""
        ...


def _controller_lists(controller: Controller) -> dict[str, list[dict[str, Any]]]:
    from autoscaler.kube.controller import INFERENCESERVICES, REVISIONS
    from autoscaler.kube.reconciler import MODELSCALERS

    return {
        "isvcs": controller.cached_list(INFERENCESERVICES),
        "scalers": controller.cached_list(MODELSCALERS),
        "revisions": controller.cached_list(REVISIONS),
    }


def feed_tick(recorder: Recorder, report: TickReport, world: World) -> None:
    """Record one tick: per model, replicas (as read at ``world.now_s``), what was observed of
    the live revision and the decision on it (at the tick's time). A stand-by's report (not
    leader) carries nothing."""
    from autoscaler.tuner.explain import explain

    if not report.leader:
        return
    recorder.forget(world.index.keys)  # deleted models take their history with them
    scalers = {view._key(s): s for s in world.scalers}
    for scaler_key, model_report in report.models.items():
        scaler = scalers.get(scaler_key)
        target_name = (((scaler or {}).get("spec") or {}).get("targetRef") or {}).get("name")
        if not target_name or not model_report.recommendations:
            continue
        key: ModelKey = (scaler_key[0], str(target_name))
        desired, actual = view.model_replicas(world, key)
        recorder.record_replicas(key, world.now_s, desired, actual)
        revision, rec = list(model_report.recommendations.items())[-1]  # the live one is last
        objective_ms, percentile = view.objective(scaler)
        status_target = ((scaler or {}).get("status") or {}).get("target")
        obs = rec.observation
        if obs is not None:
            latency = percentile_from_counts(
                obs.latency_counts,
                min(percentile, 99.9),
                tail_sum=obs.tail_sum_ms,
                latency_sum=obs.exact_sum_ms,
            )
            sample = TickSample(
                report.now_s,
                revision,
                obs.avg_concurrency_per_replica,
                obs.applied_target if obs.applied_target is not None else status_target,
                obs.request_count / obs.interval_s,
                finite(latency),
                objective_ms,
            )
        else:
            sample = TickSample(
                report.now_s, revision, None, status_target, None, None, objective_ms
            )
        recorder.record_tick(key, sample)
        written = tuple(
            sorted(k for w in model_report.written if w.name == revision for k in w.new)
        )
        recorder.record_decision(
            key,
            Decision(
                t_s=report.now_s,
                first_t_s=report.now_s,
                revision=revision,
                mode=rec.mode,
                target=rec.target,
                keep_alive_s=rec.keep_alive_s,
                min_scale=rec.min_scale,
                confidence=rec.confidence,
                fail_static=rec.fail_static,
                warm_from_s=rec.windows.warm_from_s
                if rec.windows and rec.windows.prewarm
                else None,
                written=written,
                reasons=tuple(rec.reasons),
                explain=tuple(explain(rec)),
            ),
        )


class ControllerSource:
    """The tuner controller's view of a cluster; history from its tick reports."""

    sample_period_s = 0.0

    def __init__(
        self, controller: Controller, recorder: Recorder | None = None, clock: Clock | None = None
    ) -> None:
        self.controller = controller
        self.recorder = recorder or Recorder()
        self.clock: Clock = clock or SystemClock()
        controller.add_tick_listener(self._on_tick)

    def _world(self) -> World:
        ctl = self.controller
        lists = _controller_lists(ctl)
        return World(
            self.clock.wall(), lists["isvcs"], lists["scalers"], lists["revisions"], {},
            self.recorder, leading=ctl.is_leader(), tick_period_s=ctl.config.loop.tick_period_s,
        )  # fmt: skip

    def _on_tick(self, report: TickReport) -> None:
        # the replica counts are read now, after the tick: they are recorded at this time
        feed_tick(self.recorder, report, self._world())

    async def world(self) -> World:
        return self._world()

    async def sample(self) -> None:
        return None


WATCHED_S = 60.0  # the page counts as open this long after its last read


class OneMachineSource:
    """One-machine mode: the tuner's caches (or the API server when there is no tuner), the data
    plane's live replica counts and the activator's pokes."""

    def __init__(
        self, machine: OneMachine, recorder: Recorder | None = None, sample_period_s: float = 1.0
    ) -> None:
        self.machine = machine
        self.recorder = recorder or Recorder()
        self.sample_period_s = sample_period_s
        self._attached: Any = None
        self._api: Any = None
        self._last_live: dict[tuple[str, str], tuple[int, int]] = {}
        self._revision_model: Mapping[tuple[str, str], ModelKey] = {}
        # revisions at zero ready replicas whose cold start is counted (until one is ready)
        self._waiting: set[tuple[str, str]] = set()
        self._pending: list[tuple[tuple[str, str], float]] = []  # cold starts not yet recorded
        self._read_at: float | None = None  # monotonic time of the page's last read
        on_poke = getattr(getattr(machine, "dataplane", None), "on_poke", None)
        self.sees_waiting = callable(on_poke)
        if callable(on_poke):
            on_poke(self._on_poke)

    def _live(
        self, revisions: Iterable[RevisionKey] | None = None
    ) -> dict[tuple[str, str], tuple[int, int]]:
        """(desired, ready) of ``revisions`` (None: every revision of the data plane)."""
        dp = self.machine.dataplane
        out: dict[tuple[str, str], tuple[int, int]] = {}
        for key in dp.revisions() if revisions is None else revisions:
            try:
                st = dp.status(key)
            except KeyError:  # removed meanwhile
                continue
            out[(key.namespace, key.name)] = (st.desired, st.ready)
        return out

    def _on_poke(self, key: RevisionKey) -> None:
        """The activator holds a request for ``key`` with no ready replica to send it to: a cold
        start, counted once until the revision has a ready replica again."""
        rev = (key.namespace, key.name)
        if rev in self._waiting:
            return
        try:
            ready = self.machine.dataplane.status(key).ready
        except KeyError:
            return
        if ready == 0:
            self._waiting.add(rev)
            self._pending.append((rev, self.machine.clock.wall()))

    def _attach(self) -> Any:
        """The machine's tuner controller, hooked to the recorder once (None: no tuner)."""
        tuner = self.machine.tuner
        if tuner is not None and tuner is not self._attached:
            tuner.add_tick_listener(self._on_tick)
            self._attached = tuner
        return tuner

    def _on_tick(self, report: TickReport) -> None:
        tuner = self._attached
        lists = _controller_lists(tuner)
        feed_tick(self.recorder, report, self._make_world(tuner, lists, self._live()))

    def _list_api(self) -> dict[str, list[dict[str, Any]]]:
        from kubernetes import client

        if self._api is None:
            self._api = client.CustomObjectsApi(self.machine.api_client())
        out = {}
        for name, (group, version, plural) in GROUPS.items():
            listing = self._api.list_cluster_custom_object(group, version, plural)
            out[name] = list(cast(Mapping[str, Any], listing).get("items") or [])
        return out

    def _make_world(
        self,
        tuner: Any,
        lists: Mapping[str, list[dict[str, Any]]],
        live: Mapping[tuple[str, str], tuple[int, int]],
    ) -> World:
        return World(
            self.machine.clock.wall(), lists["isvcs"], lists["scalers"], lists["revisions"],
            live, self.recorder,
            leading=tuner is None or tuner.is_leader(),
            tick_period_s=(
                tuner.config.loop.tick_period_s if tuner is not None
                else view.DEFAULT_TICK_PERIOD_S
            ),
            sees_waiting=self.sees_waiting,
        )  # fmt: skip

    async def _world(self, live: Mapping[tuple[str, str], tuple[int, int]]) -> World:
        tuner = self._attach()
        if tuner is not None and tuner.ready():
            lists = _controller_lists(tuner)
        else:
            lists = await asyncio.to_thread(self._list_api)
        return self._make_world(tuner, lists, live)

    async def world(self) -> World:
        """The objects as a page read sees them (this also marks the page as being read)."""
        self._read_at = self.machine.clock.now()
        return await self._world(self._live())

    def _watched(self) -> bool:
        read_at = self._read_at
        return read_at is not None and self.machine.clock.now() - read_at <= WATCHED_S

    async def sample(self) -> None:
        """Record the cold starts the activator reported and, while the page is read, the models
        whose live replica counts changed since the last look; nothing else."""
        if not self._watched():
            self._last_live = {}  # the next look while watched records every model afresh
            if not self._pending and not self._waiting:
                return
            # only the revisions waiting: a few reads
            live = self._live([RevisionKey(*rev) for rev in self._waiting])
            self._release_ready(live)
            if self._pending:
                self._record_pending(await self._world(live), live)
            return
        live = self._live()
        self._release_ready(live)
        last = self._last_live
        changed = [r for r in live.keys() | last.keys() if live.get(r) != last.get(r)]
        if not changed and not self._pending:
            return
        world = await self._world(live)
        index = world.index
        self.recorder.forget(index.keys)  # deleted models take their history with them
        # a revision gone since the last look is found in that look's objects
        models = {index.revision_model.get(r) or self._revision_model.get(r) for r in changed}
        for key in sorted(k for k in models if k is not None):
            if key in index.isvcs:
                desired, actual = view.model_replicas(world, key)
                self.recorder.record_replicas(key, world.now_s, desired, actual)
        self._record_pending(world, live)
        self._revision_model = index.revision_model
        self._last_live = live

    def _release_ready(self, live: Mapping[tuple[str, str], tuple[int, int]]) -> None:
        """Revisions ready again (or gone) stop waiting: their next wait is a cold start."""
        self._waiting -= {r for r in self._waiting if live.get(r, (0, 1))[1] >= 1}

    def _record_pending(self, world: World, live: Mapping[tuple[str, str], Any]) -> None:
        pending = []
        for rev, t_s in self._pending:
            model = world.index.revision_model.get(rev)
            if model is not None:
                self.recorder.record_cold_start(model, t_s)
            elif rev in live:  # not in the objects read yet: the next look records it
                pending.append((rev, t_s))
        self._pending = pending
