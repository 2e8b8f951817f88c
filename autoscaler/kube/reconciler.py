"""One ModelScaler, one tick: decide per serving revision, apply per ``updateMode``, announce
each applied change and write the status when it changed.

Auto writes only what the policy marks changed (``Recommendation.changed_annotations``) and
what the live object does not carry as the tuner applied it (``model.drifted``: removed or
edited outside the tuner, or the object created again under its name), at most once per
revision and tick, and keeps the policy's new state only if the write succeeded, so a failed
write is tried again next tick. The live object is the revision as the informer has it (with
``apply: podautoscaler``, its PodAutoscaler, read each tick); status describes it as read. Recommend and a paused model learn and recommend and write
nothing but status; Off writes only the mode. Every write, the status included, is fenced by the
leader check right before it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from kubernetes import client
from kubernetes.client.rest import ApiException

from autoscaler.metrics.source import RevisionKey
from autoscaler.tuner import (
    ModelScalerSpec,
    Recommendation,
    TunerConfig,
    encode_checkpoint,
    learned_status,
    recommend,
    recommendation_status,
)
from autoscaler.tuner.observation import RevisionObservation
from autoscaler.tuner.policy import ANNOTATION_TARGET as TARGET
from autoscaler.tuner.state import RevisionState

from . import model as m
from .apply import NotLeader, Writer, Written
from .informer import Resource
from .notify import Notifier, change_data, event_reason
from .retry import call_with_retry
from .scaler_status import build_status, iso, same_status, status_patch
from .settings import ControllerSettings
from .telemetry import ControllerMetrics
from .world import WINDOW_ANNOTATION, ServingRevision

log = logging.getLogger(__name__)

# Metric children kept by label values: four per model (three gauges and its decisions' outcome).
CHILDREN_KEPT = 65_536

MODELSCALERS = Resource("modelscale.dev", "v1alpha1", "modelscalers", "ModelScaler")


@dataclass(frozen=True, slots=True)
class ModelReport:
    """What one tick did for one ModelScaler (for tests, logs and the status)."""

    mode: str
    recommendations: Mapping[str, Recommendation] = field(default_factory=dict)
    written: tuple[Written, ...] = ()
    errors: tuple[str, ...] = ()
    status_written: bool = False


class ModelReconciler:
    """Applies the policy's decisions for one model at a time (blocking I/O in worker threads)."""

    def __init__(
        self,
        api_client: client.ApiClient,
        settings: ControllerSettings,
        metrics: ControllerMetrics,
        notifier: Notifier,
        is_leader: Callable[[], bool],
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.notifier = notifier
        self.is_leader = is_leader
        self.config = TunerConfig()
        self._children: dict[tuple[Any, ...], Any] = {}  # see _child
        self._custom = client.CustomObjectsApi(api_client)
        self._writer = Writer(
            api_client,
            is_leader,
            backoff=settings.write_backoff,
            request_timeout_s=settings.request_timeout_s,
        )

    async def reconcile(
        self,
        plan: m.ModelPlan,
        mem: m.ModelMemory,
        config: TunerConfig,
        observations: Mapping[RevisionKey, RevisionObservation | None],
        metrics_error: str | None,
        now: float,
        no_data_reasons: Mapping[RevisionKey, str] | None = None,
    ) -> ModelReport:
        """Decide and apply for one model at ``now``; ``mem`` is updated in place.
        ``no_data_reasons``: the metric source's reasons, for the MetricsAvailable condition."""
        self.config = config
        spec = plan.spec
        if spec is None:
            self._count(plan, "invalid")
            status = build_status(
                previous=self._previous_status(plan, mem),
                generation=plan.generation,
                mode="Invalid",
                conditions=m.invalid_conditions(plan.spec_errors),
                now_wall_s=now,
            )
            wrote = await self._write_status(plan, mem, status)
            return ModelReport("Invalid", status_written=wrote)
        if plan.isvc is None or not plan.revisions:
            reason, message = (
                ("TargetNotFound", f"InferenceService {plan.namespace}/{spec.target_ref_name} not found")
                if plan.isvc is None
                else ("NoServingRevision", f"InferenceService {plan.namespace}/{spec.target_ref_name} has no ready revision yet")
            )  # fmt: skip
            self._count(plan, "no_target")
            status = build_status(
                previous=self._previous_status(plan, mem),
                generation=plan.generation,
                mode=spec.update_mode,
                conditions=m.not_ready_conditions(reason, message),
                now_wall_s=now,
            )
            wrote = await self._write_status(plan, mem, status)
            return ModelReport(spec.update_mode, status_written=wrote)

        live_name = plan.revisions[-1].name
        recs: dict[str, Recommendation] = {}
        live: dict[str, Mapping[str, str] | None] = {}  # the tuner's annotations as read
        writes: dict[str, Written] = {}
        errors: list[str] = []
        for rev in plan.revisions:
            mode_spec = spec
            # Paused, or an older revision while the InferenceService is what gets written:
            # learn and recommend, write nothing.
            if spec.update_mode == "Auto" and (
                plan.paused or (spec.apply_method == "inferenceservice" and rev.name != live_name)
            ):
                mode_spec = replace(spec, update_mode="Recommend")
            seed = spec.apply_method == "inferenceservice"
            state = mem.state_for(rev, self.config, seed, now)
            settle = 2 * self.config.loop.tick_period_s
            state = m.tuner_window_on(rev, state, spec.apply_method, now, settle)
            user_window = m.user_window_on(rev, state, spec.apply_method, now, settle)
            if user_window != mode_spec.user_window_s:
                mode_spec = replace(mode_spec, user_window_s=user_window)
            if rev.memory_mb != mode_spec.replica_memory_mb:
                mode_spec = replace(mode_spec, replica_memory_mb=rev.memory_mb)
            live[rev.name] = await self._live(spec.apply_method, spec.update_mode, plan, rev)
            resuming = rev.name in mem.resumed
            if resuming:
                mem.resumed.discard(rev.name)
                state = m.adopt(state, rev, live[rev.name])
            obs = observations.get(RevisionKey(rev.namespace, rev.name))
            rec, next_state = recommend(obs, mode_spec, self.config, state, now)
            if plan.paused:
                rec = replace(rec, reasons=_paused_reasons(rec.reasons))
            recs[rev.name] = rec
            drift: tuple[str, ...] = ()
            if mode_spec.update_mode == "Auto" and state.applied is not None and not resuming:
                found = live[rev.name]
                drift = m.drifted(rec, found, user_window is not None) if found is not None else ()
            if not rec.should_apply and not drift:
                mem.states[rev.name] = next_state
                self._count(plan, _outcome(rec, plan.paused))
                continue
            values = replace(rec, changed=(*rec.changed, *drift)).changed_annotations()
            try:
                written = await asyncio.to_thread(
                    self._writer.write,
                    spec.apply_method,
                    plan.namespace,
                    spec.target_ref_name,
                    rev.name,
                    values,
                )
            except NotLeader as exc:
                errors.append(str(exc))
                return ModelReport(spec.update_mode, recs, tuple(writes.values()), tuple(errors))
            except Exception as exc:
                errors.append(f"writing {rev.name}: {_short(exc)}")
                self.metrics.errors.labels("write").inc()
                self._count(plan, "write_failed")
                log.warning(
                    "write failed", extra={"fields": _fields(plan, rev.name, error=_short(exc))}
                )
                if not rec.should_apply:  # only values written again: the learning is kept
                    mem.states[rev.name] = next_state
                continue  # the old applied values stay: the policy tries again next tick
            restored = tuple(k for k in drift if k in written.new)
            if restored:
                next_state = _reapplied(next_state, restored, now)
                rec = replace(
                    rec,
                    changed=(*rec.changed, *restored),
                    should_apply=True,
                    reasons=(*rec.reasons, _restored_reason(written, restored)),
                )
                recs[rev.name] = rec
            mem.states[rev.name] = next_state
            writes[rev.name] = written
            self._count(plan, "applied" if written.new else "unchanged")
            if written.new:
                self.metrics.writes.inc()
                await self._announce(plan, rev.name, rec, written, now, restored)

        mem.prune([r.name for r in plan.revisions])
        forces = {  # each serving revision with the values in force on it, oldest first
            r.name: m.in_force(r, mem.states.get(r.name), writes.get(r.name), live.get(r.name))
            for r in plan.revisions
        }
        in_force = forces[live_name]
        self._set_gauges(plan, in_force)
        why = {
            r.name: no_data_reasons[key]
            for r in plan.revisions
            if no_data_reasons and (key := RevisionKey(r.namespace, r.name)) in no_data_reasons
        }
        status = self._status(plan, mem, recs, writes, errors, metrics_error, forces, now, why)
        status_written = await self._write_status(plan, mem, status)
        return ModelReport(
            spec.update_mode, recs, tuple(writes.values()), tuple(errors), status_written
        )

    async def failed(
        self, plan: m.ModelPlan, mem: m.ModelMemory, error: BaseException, now: float
    ) -> ModelReport:
        """``reconcile`` raised for this model: its status says so (the checkpoint and what
        was applied stay as they were), and the other models' ticks go on."""
        text = _short(error)
        self.metrics.errors.labels("reconcile").inc()
        self._count(plan, "failed")
        mode = plan.spec.update_mode if plan.spec is not None else "Invalid"
        status = build_status(
            previous=self._previous_status(plan, mem),
            generation=plan.generation,
            mode=mode,
            conditions=m.failed_conditions(text),
            now_wall_s=now,
        )
        try:
            wrote = await self._write_status(plan, mem, status)
        except Exception as exc:  # reported, and the tick goes on
            log.warning("writing the failure status failed: %s", _short(exc))
            wrote = False
        return ModelReport(mode, errors=(text,), status_written=wrote)

    def _status(
        self,
        plan: m.ModelPlan,
        mem: m.ModelMemory,
        recs: Mapping[str, Recommendation],
        writes: Mapping[str, Written],
        errors: Sequence[str],
        metrics_error: str | None,
        forces: Mapping[str, ServingRevision],
        now: float,
        why: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """The status of a tick that decided for every serving revision. ``forces``: each
        serving revision (oldest first, the live one last) with the values in force on it.

        The top-level summary and ``recommendation`` describe the live revision; each entry of
        ``revisions`` describes its own (traffic, ready replicas, values in force, the
        recommendation with its reasons and what was applied); ``applied`` is the last write,
        to whichever revision; the Applied condition names every serving revision."""
        assert plan.spec is not None
        spec = plan.spec
        live = list(forces.values())[-1]
        # each revision's recommendation rendered once: its entry's and, the live one's, the top
        # level's (build_status copies it)
        rendered = (
            {name: _recommendation_status(r) for name, r in recs.items()}
            if spec.update_mode != "Off"
            else {}
        )
        applied = None
        changed = [(name, w) for name, w in writes.items() if w.new]
        if changed:
            name, _ = changed[-1]
            state = mem.states.get(name)
            annotations = m.applied_annotations(state.applied) if state and state.applied else {}
            annotations.update(changed[-1][1].new)
            applied = {"revision": name, "annotations": annotations}
        decided = [(recs[r.name], r) for r in forces.values() if r.name in recs]
        conditions = [
            m.Condition("Invalid", False, "Valid"),
            m.metrics_condition(metrics_error, recs, spec.update_mode, why),
            _recommendation_condition(decided),
            _applied_condition(spec.update_mode, plan.paused, errors, list(forces.values())),
            _objective_condition(decided, spec, plan.paused),
        ]
        learned = [
            _revision_status(
                learned_status(mem.states[r.name], spec, self.config, now),
                forces[r.name],
                rendered.get(r.name),
                mem.states[r.name],
                self.config,
                sole=len(plan.revisions) == 1,
            )
            for r in plan.revisions
            if r.name in mem.states
        ]
        return build_status(
            previous=self._previous_status(plan, mem),
            generation=plan.generation,
            mode=spec.update_mode,
            conditions=conditions,
            now_wall_s=now,
            summary=m.summary(live, self.config),
            recommendation=rendered.get(live.name),
            applied=applied,
            revisions=learned if spec.update_mode != "Off" else None,
            checkpoint=encode_checkpoint(mem.states) if mem.states else None,
        )

    async def _live(
        self, method: str, mode: str, plan: m.ModelPlan, rev: ServingRevision
    ) -> Mapping[str, str] | None:
        """The autoscaling annotations on the object the tuner writes for ``rev`` (None: not
        read). With ``apply: inferenceservice`` each write rolls out a new revision, whose
        annotations KServe copies from the InferenceService: none is read (re-writing there
        would fight a user's edit of the InferenceService with rollouts)."""
        if method == "revision":
            return rev.annotations
        if method != "podautoscaler" or mode == "Off":
            return None
        try:
            return await asyncio.to_thread(
                self._writer.read_annotations, method, plan.namespace, rev.name
            )
        except Exception as exc:  # not there yet, or the API: what was applied stands in
            log.info(
                "reading the PodAutoscaler failed",
                extra={"fields": _fields(plan, rev.name, error=_short(exc))},
            )
            return None

    def _previous_status(self, plan: m.ModelPlan, mem: m.ModelMemory) -> dict[str, Any] | None:
        if mem.status is not None:
            return mem.status
        return dict(plan.scaler.get("status") or {}) or None

    async def _write_status(
        self, plan: m.ModelPlan, mem: m.ModelMemory, status: dict[str, Any]
    ) -> bool:
        previous = self._previous_status(plan, mem)
        if same_status(previous, status):
            return False
        body = status_patch(previous, status)
        ns, name = plan.key
        r = MODELSCALERS

        def write() -> None:
            if not self.is_leader():
                raise NotLeader(f"not the leader: status of {ns}/{name} left as it is")
            self._custom.patch_namespaced_custom_object_status(
                r.group, r.version, ns, r.plural, name, body,
                _request_timeout=self.settings.request_timeout_s,
            )  # fmt: skip

        try:
            await asyncio.to_thread(call_with_retry, write, backoff=self.settings.write_backoff)
        except Exception as exc:
            log.warning(
                "status write failed", extra={"fields": _fields(plan, "", error=_short(exc))}
            )
            self.metrics.errors.labels("status").inc()
            return False
        mem.status = status
        return True

    async def _announce(
        self,
        plan: m.ModelPlan,
        revision: str,
        rec: Recommendation,
        written: Written,
        now: float,
        restored: Sequence[str] = (),
    ) -> None:
        assert plan.spec is not None
        why = rec.reasons[0] if rec.reasons else ""
        log.info(
            "applied",
            extra={"fields": _fields(plan, revision, old=dict(written.old), new=dict(written.new))},
        )
        for annotation, value in written.new.items():
            old = written.old.get(annotation)
            because = rec.window_reason or why if annotation == WINDOW_ANNOTATION else why
            if annotation in restored:
                because = _restored_reason(written, restored)
            message = (
                f"{written.kind} {written.name}: {annotation} {old if old is not None else 'unset'}"
                f" -> {value}. {because}"
            )
            await asyncio.to_thread(
                self.notifier.kube_event, plan.scaler, event_reason(annotation), message, now
            )
        self.notifier.cloud_event(
            change_data(
                plan.namespace, plan.model, revision, written.old, written.new, rec.reasons,
                plan.spec.apply_method,
            )
        )  # fmt: skip

    def _count(self, plan: m.ModelPlan, outcome: str) -> None:
        model = plan.model or plan.key[1]
        self._child(self.metrics.decisions, plan.namespace, model, outcome).inc()

    def _set_gauges(self, plan: m.ModelPlan, live: Any) -> None:
        labels = (plan.namespace, plan.model)
        self._child(self.metrics.applied_target, *labels).set(live.effective_target)
        self._child(self.metrics.applied_retention_seconds, *labels).set(live.retention_s)
        self._child(self.metrics.applied_min_scale, *labels).set(live.min_scale or 0)

    def _child(self, metric: Any, *labels: str) -> Any:
        """``metric.labels(*labels)``, looked up once (the metrics' children are never
        removed); at most ``CHILDREN_KEPT`` kept, then looked up afresh."""
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            if len(self._children) >= CHILDREN_KEPT:
                self._children.clear()
            child = self._children[key] = metric.labels(*labels)
        return child


def _applied_condition(
    mode: str, paused: bool, errors: Sequence[str], forces: Sequence[ServingRevision]
) -> m.Condition:
    """The Applied condition, naming every serving revision (oldest first) with its traffic
    share and the values in force on it; one revision alone is named as before, without."""
    cond = m.applied_condition(mode, paused, errors, forces[-1])
    if cond.status is not True or len(forces) == 1:
        return cond
    parts = [_with_share(m.applied_condition(mode, paused, errors, r).message, r) for r in forces]
    return replace(cond, message="; ".join(parts))


def _recommendation_condition(
    recs: Sequence[tuple[Recommendation, ServingRevision]],
) -> m.Condition:
    """RecommendationReady for every serving revision (oldest first, the live one last): True
    naming each with its traffic share when all are ready, else the first that is not."""
    conditions = [(m.recommendation_condition(rec), rev) for rec, rev in recs]
    if len(conditions) == 1:
        return conditions[0][0]
    for cond, _ in conditions:
        if cond.status is not True:
            return cond
    parts = [_with_share(cond.message, rev) for cond, rev in conditions]
    return replace(conditions[-1][0], message="; ".join(parts))


def _objective_condition(
    recs: Sequence[tuple[Recommendation, ServingRevision]], spec: ModelScalerSpec, paused: bool
) -> m.Condition:
    """ObjectiveMet for every serving revision (oldest first, the live one last), each named
    with its traffic share: False when any misses (``Missed`` when any misses where the target
    controls the concurrency, else ``Unattainable``), else Unknown when any was not judged
    (the first such one's reason), else True."""
    conditions = [(m.objective_condition(rec, spec, paused), rev) for rec, rev in recs]
    if not conditions:
        return m.Condition(m.OBJECTIVE_MET, None, "NoData", "no serving revision was judged")
    if len(conditions) == 1 or spec.update_mode == "Off":
        return conditions[-1][0]
    message = "; ".join(_with_share(cond.message, rev) for cond, rev in conditions)
    missed = [cond for cond, _ in conditions if cond.status is False]
    unknown = [cond for cond, _ in conditions if cond.status is None]
    if missed:
        reasons = {cond.reason for cond in missed}
        reason = "Missed" if "Missed" in reasons else missed[0].reason
        return m.Condition(m.OBJECTIVE_MET, False, reason, message)
    if unknown:
        return m.Condition(m.OBJECTIVE_MET, None, unknown[0].reason, message)
    return m.Condition(m.OBJECTIVE_MET, True, "Met", message)


def _with_share(message: str, rev: ServingRevision) -> str:
    """``message`` ("revision NAME: ...") with the revision's traffic share after its name."""
    head = f"revision {rev.name}"
    if rev.percent is None or not message.startswith(head):
        return message
    return f"{head} ({rev.percent}% of traffic){message[len(head) :]}"


def _recommendation_status(rec: Recommendation) -> dict[str, Any]:
    """A recommendation as status shows it, with when a pre-warm is due."""
    out = recommendation_status(rec)
    if rec.prewarm_at_s is not None:
        out["prewarmAt"] = iso(rec.prewarm_at_s)
    return out


def _revision_status(
    learned: dict[str, Any],
    rev: ServingRevision,
    recommendation: dict[str, Any] | None,
    state: RevisionState,
    config: TunerConfig,
    sole: bool,
) -> dict[str, Any]:
    """One entry of ``status.revisions``: what was learned (``learned``), with the revision's
    traffic percent (100 for a sole revision the InferenceService gives no split for), its
    ready replicas, the values in force on it (``target``, ``keepAlive``), the tuner's
    recommendation for it and what the tuner last applied to it (``applied``: annotations and
    time). Timeless but for the time of the last write, so an idle model costs no writes."""
    out = dict(learned)
    percent = 100 if rev.percent is None and sole else rev.percent
    if percent is not None:
        out["percent"] = percent
    summary = m.summary(rev, config)
    out["readyReplicas"] = summary["replicas"]
    out["target"] = summary["target"]
    out["keepAlive"] = summary["keepAlive"]
    if recommendation is not None:
        out["recommendation"] = recommendation
    if state.applied is not None:
        out["applied"] = {
            "annotations": m.applied_annotations(state.applied),
            "time": iso(state.applied.at_s),
        }
    return out


def _reapplied(state: RevisionState, restored: Sequence[str], now: float) -> RevisionState:
    """``state`` after writing its applied values again: written now, and a target written
    again changes the concurrency as a new one does (its latencies settle first)."""
    if state.applied is None:
        return state
    last_change = now if TARGET in restored else state.last_target_change_s
    return replace(
        state, applied=replace(state.applied, at_s=now), last_target_change_s=last_change
    )


def _restored_reason(written: Written, restored: Sequence[str]) -> str:
    names = ", ".join(k.rsplit("/", 1)[-1] for k in restored)
    return (
        f"{names} on {written.kind} {written.name} differed from what the tuner applied "
        "(removed or edited outside the tuner, or the object was created again): written again"
    )


def _paused_reasons(reasons: tuple[str, ...]) -> tuple[str, ...]:
    kept = tuple(r for r in reasons if not r.startswith("updateMode Recommend"))
    return (*kept, "paused by the InferenceService annotation modelscale.dev/paused: not applied")


def _outcome(rec: Recommendation, paused: bool) -> str:
    if rec.mode == "Off":
        return "off"
    if rec.fail_static:
        return "fail_static"
    if paused:
        return "paused"
    if rec.mode == "Recommend":
        return "recommended"
    return "unchanged"


def _short(exc: BaseException) -> str:
    if isinstance(exc, ApiException):
        return f"{exc.status} {exc.reason}"
    return f"{type(exc).__name__}: {exc}"[:300]


def _fields(plan: m.ModelPlan, revision: str, **extra: Any) -> dict[str, Any]:
    return {"namespace": plan.namespace, "model": plan.model, "revision": revision, **extra}
