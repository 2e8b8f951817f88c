"""One ModelScaler for one tick: what it governs, what the controller remembers of it, and the
pure renderings of a tick's outcome into conditions and summary fields. No I/O here.

ObjectiveMet renders the target stage's own judgement of each serving revision's latest
interval (``autoscaler.tuner.target.Judgement``): True ``Met``; False ``Missed`` where the
target controls the concurrency (the tuner backs off) and ``Unattainable`` where requests did
not share a replica (the model's own latency is over the objective: no target meets it);
Unknown ``NoData``, ``Settling``, ``Off`` when there is nothing to judge.
"""

from __future__ import annotations

import json
import math
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from autoscaler.kpa.settings import WINDOW_MAX_S, WINDOW_MIN_S
from autoscaler.runtime.reconcile.names import revision_order
from autoscaler.tuner import (
    ModelScalerSpec,
    Recommendation,
    RevisionState,
    SpecError,
    TunerConfig,
    inherit_state,
    new_state,
    parse_spec,
    validate_spec,
)
from autoscaler.tuner.policy import format_annotations, format_target
from autoscaler.tuner.state import AppliedValues

from .apply import FIELD_MANAGER, Written, within_knative_ranges
from .scaler_status import Condition
from .world import (
    PAUSED_ANNOTATION,
    WINDOW_ANNOTATION,
    ServingRevision,
    is_paused,
    serving_revisions,
)

ModelKey = tuple[str, str]  # (namespace, ModelScaler name)


@dataclass(frozen=True, slots=True)
class ModelPlan:
    """What a ModelScaler governs this tick, read from the informers' caches."""

    key: ModelKey
    scaler: Mapping[str, Any]
    spec: ModelScalerSpec | None
    spec_errors: tuple[str, ...]
    isvc: Mapping[str, Any] | None
    revisions: tuple[ServingRevision, ...]  # oldest first; the live one is last
    paused: bool

    @property
    def namespace(self) -> str:
        return self.key[0]

    @property
    def model(self) -> str:
        return self.spec.target_ref_name if self.spec else ""

    @property
    def generation(self) -> int:
        return int((self.scaler.get("metadata") or {}).get("generation") or 0)


def plan_model(
    scaler: Mapping[str, Any],
    isvc: Mapping[str, Any] | None,
    labelled_revisions: Sequence[Mapping[str, Any]],
) -> ModelPlan:
    """What ``scaler`` governs: its parsed spec (or every problem with it), its InferenceService
    (None: not found) and the serving revisions among ``labelled_revisions``."""
    key = key_of(scaler)
    raw_spec = scaler.get("spec") or {}
    spec, errors = SPECS.parsed(raw_spec)
    if spec is None:
        return ModelPlan(key, scaler, None, errors, None, (), False)
    revisions: tuple[ServingRevision, ...] = ()
    if isvc is not None:
        revisions = tuple(serving_revisions(isvc, labelled_revisions))
    paused = isvc is not None and is_paused(isvc)
    floor = user_min_replicas(raw_spec, isvc, spec.apply_method)
    if floor > spec.replicas_min:
        spec = replace(spec, replicas_min=floor)
    return ModelPlan(key, scaler, spec, (), isvc, revisions, paused)


def one_scaler_per_model(plans: Sequence[ModelPlan]) -> list[ModelPlan]:
    """``plans`` with at most one valid ModelScaler per InferenceService: the oldest naming it
    (creation time, then name) governs it, and every other is invalid, its ``spec.targetRef.name``
    named with the one that governs. Two would read the same revisions' metrics within one tick
    and write over each other's values."""
    governing: dict[tuple[str, str], ModelPlan] = {}
    for plan in sorted(plans, key=lambda p: scaler_age(p.scaler)):
        if plan.spec is not None:
            governing.setdefault((plan.namespace, plan.spec.target_ref_name), plan)
    out = []
    for plan in plans:
        first = governing.get((plan.namespace, plan.model)) if plan.spec is not None else None
        if first is None or first is plan:
            out.append(plan)
            continue
        error = (
            f"spec.targetRef.name: InferenceService {plan.namespace}/{plan.model} is governed by "
            f"ModelScaler {first.key[1]}, the oldest naming it; one ModelScaler per model "
            "(delete this one, or that one to hand the model over)"
        )
        out.append(replace(plan, spec=None, spec_errors=(error,)))
    return out


def scaler_age(scaler: Mapping[str, Any]) -> tuple[str, str]:
    """The order in which ModelScalers naming one model are taken: oldest first (RFC 3339 times
    in UTC sort as text), then by name."""
    meta = scaler.get("metadata") or {}
    return (str(meta.get("creationTimestamp") or ""), str(meta.get("name") or ""))


def _parse(raw_spec: Mapping[str, Any]) -> tuple[ModelScalerSpec | None, tuple[str, ...]]:
    """The spec parsed, or every problem with it."""
    errors = validate_spec(raw_spec)
    if errors:
        return None, tuple(errors)
    try:
        return parse_spec(raw_spec), ()
    except SpecError as exc:
        return None, tuple(exc.messages)


class SpecCache:
    """Parsed specs by the spec's JSON text, the ``maxsize`` most recently used.

    A spec is a JSON document (the API's): its text is its content, so a changed spec, changed
    in place or not, is another key, and an unchanged one parses once however often the object
    around it (its status, every tick) is written. The text tells apart what the checks tell
    apart (``true`` from ``1``, ``1.0`` from ``1``, ``-0.0`` from ``0.0``). A spec that is not
    JSON (not a dict, or holding other types) is parsed each time; one built in code with a
    tuple shares the text of the same spec with a list (the API's specs hold no tuples)."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._entries: OrderedDict[str, tuple[ModelScalerSpec | None, tuple[str, ...]]] = (
            OrderedDict()
        )
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def parsed(self, raw_spec: Mapping[str, Any]) -> tuple[ModelScalerSpec | None, tuple[str, ...]]:
        """``_parse(raw_spec)``, from the cache when the same text was parsed before."""
        if type(raw_spec) is not dict:
            return _parse(raw_spec)
        try:
            text = json.dumps(raw_spec)
        except (TypeError, ValueError):  # not JSON
            return _parse(raw_spec)
        with self._lock:
            hit = self._entries.get(text)
            if hit is not None:
                self._entries.move_to_end(text)
                return hit
        result = _parse(raw_spec)
        with self._lock:
            self._entries[text] = result
            while len(self._entries) > self.maxsize:
                self._entries.popitem(last=False)
        return result


# One entry per distinct spec: room for every ModelScaler of a large cluster (an entry is a few
# hundred bytes); past it, the least recently used are parsed again.
SPECS = SpecCache(maxsize=16_384)


def user_min_replicas(
    raw_spec: Mapping[str, Any], isvc: Mapping[str, Any] | None, apply_method: str
) -> int:
    """The InferenceService's ``minReplicas`` as a floor for min-scale, unless the ModelScaler sets
    ``replicas.min`` itself (its word wins). Without this, a model the user keeps warm with
    ``minReplicas: 1`` would be let down to zero by the tuner's first write.

    With ``apply: inferenceservice`` the tuner writes ``minReplicas`` itself: there the value is
    a floor only while another manager owns the field (``metadata.managedFields``: a manifest
    applied, an edit), and the tuner's own value is none. The tuner then never writes below it,
    so the field stays the user's."""
    if isvc is None:
        return 0
    if ((raw_spec.get("replicas") or {}).get("min")) is not None:
        return 0
    if apply_method == "inferenceservice":
        owners = field_managers(isvc, ("spec", "predictor", "minReplicas"))
        if not owners - {FIELD_MANAGER}:
            return 0
    predictor = (isvc.get("spec") or {}).get("predictor") or {}
    try:
        return max(0, int(predictor.get("minReplicas") or 0))
    except (TypeError, ValueError):
        return 0


def field_managers(obj: Mapping[str, Any], path: Sequence[str]) -> set[str]:
    """The managers that own the field at ``path`` in ``obj``'s ``metadata.managedFields``."""
    owners: set[str] = set()
    for entry in (obj.get("metadata") or {}).get("managedFields") or ():
        node: Any = (entry or {}).get("fieldsV1") or {}
        for key in path:
            node = node.get(f"f:{key}") if isinstance(node, dict) else None
            if node is None:
                break
        else:
            owners.add(str(entry.get("manager") or ""))
    return owners


def key_of(obj: Mapping[str, Any]) -> ModelKey:
    meta = obj.get("metadata") or {}
    return (meta.get("namespace") or "default", meta.get("name") or "")


# Revisions kept per model after they stop serving (their state, in memory and the checkpoint)
RETIRED_KEPT = 2


@dataclass
class ModelMemory:
    """What the controller keeps between ticks for one ModelScaler."""

    states: dict[str, RevisionState] = field(default_factory=dict)
    live: str | None = None  # the live revision last tick
    status: dict[str, Any] | None = None  # the status last written (or read)
    # Revisions whose state came from the checkpoint and has not ticked since: the object may
    # carry values written after the checkpoint (a leader stopped between its annotation write
    # and its status write), so their first tick takes the live values as applied (``adopt``).
    resumed: set[str] = field(default_factory=set)

    def state_for(
        self, rev: ServingRevision, config: TunerConfig, seed_applied: bool, now_s: float
    ) -> RevisionState:
        """The revision's state; a revision seen for the first time inherits from the model's
        previous live revision (``inherit_state``, with the request rate times the share of the
        traffic the new revision is routed), or starts new.

        ``seed_applied``: the revision was rolled out by our own InferenceService write, so the
        values on it are ours; counting them as applied keeps the tuner from writing again (and
        rolling out again) only because the revision is new.
        """
        state = self.states.get(rev.name)
        if state is not None and not _replaced(state, rev):
            if state.uid is None and rev.uid:  # a checkpoint from before uids were kept
                state = self.states[rev.name] = replace(state, uid=rev.uid)
            return state
        # New, or another object under a known name (deleted and created again): a new
        # revision, which inherits what the old one learned but not what was applied to it.
        previous = state if state is not None else self._previous()
        if previous is None:
            state = new_state(rev.name, config.target.bin_ratio)
        else:
            share = 1.0 if rev.percent is None else min(100, rev.percent) / 100.0
            state = inherit_state(
                previous, rev.name, config.target.inherit_evidence_fraction, share
            )
        if seed_applied and rev.target is not None:
            applied = AppliedValues(rev.target, rev.retention_s, rev.min_scale or 0, now_s)
            state = _with_applied(state, applied)
        state = replace(state, uid=rev.uid or None)
        self.states[rev.name] = state
        return state

    def known_state(self, rev: ServingRevision) -> RevisionState | None:
        """The revision's state, None when unknown or kept for another object of its name."""
        state = self.states.get(rev.name)
        return None if state is None or _replaced(state, rev) else state

    def _previous(self) -> RevisionState | None:
        if self.live is not None and self.live in self.states:
            return self.states[self.live]
        if not self.states:
            return None
        return self.states[max(self.states, key=revision_order)]

    def prune(self, serving: Sequence[str]) -> None:
        """Forget revisions that no longer serve, but the ``RETIRED_KEPT`` newest of them: a
        rollback routes traffic to one again, which then goes on from what it learned itself
        rather than starting over as a new revision from the one rolled back."""
        keep = set(serving)
        retired = sorted((k for k in self.states if k not in keep), key=revision_order)
        keep.update(retired[-RETIRED_KEPT:])
        self.states = {k: v for k, v in self.states.items() if k in keep}
        if serving:
            self.live = serving[-1]


def adopt(
    state: RevisionState, rev: ServingRevision, live: Mapping[str, str] | None
) -> RevisionState:
    """``state`` resumed from the checkpoint, with the tuner's values as the object carries
    them counted as applied: what was written after the checkpoint is neither written again nor
    taken for an edit to set back."""
    if state.applied is None or live is None:
        return state
    found = replace(rev, annotations={**rev.annotations, **live})
    if found.target is None:
        return state
    return replace(
        state,
        applied=replace(
            state.applied,
            target=found.target,
            retention_s=found.retention_s,
            min_scale=found.min_scale or 0,
        ),
    )


def _replaced(state: RevisionState, rev: ServingRevision) -> bool:
    """Whether ``state`` was kept for another object than ``rev`` (same name, other uid)."""
    return bool(state.uid and rev.uid and state.uid != rev.uid)


def _with_applied(state: RevisionState, applied: AppliedValues) -> RevisionState:
    return replace(state, applied=applied)


def user_window_on(
    rev: ServingRevision,
    state: RevisionState | None,
    apply_method: str,
    now_s: float = 0.0,
    settle_s: float = 0.0,
) -> float | None:
    """The stable window the user set on this revision (KServe copies the InferenceService's
    annotations to each revision; one may be set on the revision itself), None when unset,
    unreadable or out of Knative's range (6 s to 1 h: Knative refuses it).

    Read per revision: in a rollout the older revision keeps the window it was made with.
    With ``apply: revision`` the tuner writes its own window onto the revision, and only where
    none of the user's was, with its mark (``WINDOW_MARK_ANNOTATION``) in the same patch: the
    window there is the tuner's while it equals the mark, and a user's edit once it differs.
    On a revision written before the mark existed, the window is the tuner's while it is what
    the checkpoint says the tuner wrote, and the user's once it differs ``settle_s`` after the
    tuner's last write (the informer's cache has followed the write by then)."""
    window = rev.window_s
    if window is None or not WINDOW_MIN_S <= window <= WINDOW_MAX_S:
        return None
    if apply_method != "revision":
        return window
    mark = rev.window_mark_s
    if mark is not None:
        return None if window == mark else window
    applied = state.applied if state is not None else None
    if (
        applied is not None
        and applied.window_s is not None
        and (window == applied.window_s or now_s - applied.at_s < settle_s)
    ):
        return None  # the tuner's own, or not yet seen as written
    return window


def tuner_window_on(
    rev: ServingRevision, state: RevisionState, apply_method: str, now_s: float, settle_s: float
) -> RevisionState:
    """``state`` with the window the tuner has on this revision as the revision's mark says.

    With ``apply: revision`` the mark is written with the window (``user_window_on``). The
    window is the tuner's own while it equals the mark, so a checkpoint lost or written before
    the window (a crash between the two) learns it back and the tuner can still withdraw it. A
    checkpoint lost whole learns it from the tick after the tuner's first write (which holds
    no window while the model's rate is not yet known).
    A mark with no window is a user's removal: the tuner claims none and writes its window
    again when it wants one (to keep the tuner's windows off, turn the busy window off; to have
    another, set one). Not before ``settle_s`` after the tuner's last write: the cache may still
    show the revision from before it."""
    mark = rev.window_mark_s
    applied = state.applied
    if apply_method != "revision" or mark is None or applied is None:
        return state
    if now_s - applied.at_s < settle_s:
        return state
    if rev.window_s == mark:
        own: float | None = mark
    elif rev.window_s is None:
        own = None
    else:
        return state  # a user's edit: user_window_on reads it, recommend gives the window back
    if own == applied.window_s:
        return state
    return replace(state, applied=replace(applied, window_s=own))


def applied_annotations(applied: AppliedValues) -> dict[str, str]:
    return format_annotations(
        applied.target, applied.retention_s, applied.min_scale, applied.window_s
    )


def in_force(
    rev: ServingRevision,
    state: RevisionState | None,
    written: Written | None,
    live: Mapping[str, str] | None = None,
) -> ServingRevision:
    """The revision with the autoscaling values in force: its annotations, the tuner's as read
    on the object it writes (``live``: the revision's own, or the PodAutoscaler's), and what
    this tick's write left there. Where that object is not read (``live`` None), what the
    tuner last applied stands in for it."""
    annotations = dict(rev.annotations)
    if live is not None:
        annotations.update(live)
    elif state is not None and state.applied is not None:
        annotations.update(applied_annotations(state.applied))
    if written is not None:
        annotations.update(confirmed(written))
    return replace(rev, annotations=annotations)


def confirmed(written: Written) -> dict[str, str]:
    """The tuner's values a write left on the object: those it changed and those it found
    there already (read fresh by the write, not from a cache)."""
    if written.method == "inferenceservice":  # old and new there are the spec's fields
        return dict(written.new)
    out = {k: v for k, v in written.old.items() if v is not None}
    out.update(written.new)
    return out


def drifted(
    rec: Recommendation, live: Mapping[str, str], user_window: bool = False
) -> tuple[str, ...]:
    """The tuner's annotations that the live object does not carry as the tuner means them,
    beyond those the recommendation changes anyway: removed or edited outside the tuner, or the
    object is another than the one they were written to. The window only when the tuner
    claims one and the user set none (``user_window``: the user's word wins, see
    ``user_window_on``; a fail-static recommendation still holds the tuner's last window)."""
    want = within_knative_ranges(rec.annotations())
    if user_window:
        want.pop(WINDOW_ANNOTATION, None)
    return tuple(k for k, v in want.items() if k not in rec.changed and live.get(k) != v)


def summary(live: ServingRevision, config: TunerConfig) -> dict[str, Any]:
    """The printer columns' fields: target, keep-alive, ready replicas. Keep-alive is how long
    Knative keeps the last replica after the last request: the stable window in force, then the
    longer of the grace period and the retention."""
    ks = config.keep_alive
    window = live.window_s if live.window_s is not None else ks.stable_window_s
    keep_alive = window + max(ks.scale_to_zero_grace_period_s, live.retention_s)
    return {
        "target": float(format_target(live.effective_target)),
        "keepAlive": f"{round(keep_alive)}s",
        "replicas": live.ready_replicas,
    }


def metrics_condition(
    metrics_error: str | None,
    recs: Mapping[str, Recommendation],
    mode: str,
    why: Mapping[str, str] | None = None,
) -> Condition:
    """``why``: the metric source's reason for a revision (by name) it gave no data for."""
    if mode == "Off":
        return Condition("MetricsAvailable", None, "Off", "updateMode Off: metrics not read")
    if metrics_error is not None:
        return Condition("MetricsAvailable", False, "MetricsUnavailable", metrics_error)
    missing = sorted(name for name, r in recs.items() if r.observation is None)
    if missing:
        message = "no metrics for revision(s) " + ", ".join(missing)
        said = [f"{name}: {why[name]}" for name in missing if why and why.get(name)]
        if said:
            message += " (" + "; ".join(said) + ")"
        return Condition("MetricsAvailable", False, "NoData", message)
    stale = [r for r in recs.values() if r.fail_static]
    if stale:
        return Condition("MetricsAvailable", False, "Stale", stale[0].reasons[0])
    return Condition("MetricsAvailable", True, "Observed", "every serving revision reported")


def recommendation_condition(rec: Recommendation) -> Condition:
    if rec.mode == "Off":
        return Condition("RecommendationReady", False, "Off", "updateMode Off: nothing recommended")
    if rec.fail_static:
        return Condition("RecommendationReady", False, "FailStatic", rec.reasons[0])
    return Condition(
        "RecommendationReady",
        True,
        "Recommended",
        f"revision {rec.revision}: target {format_target(rec.target)}, keep-alive "
        f"{rec.keep_alive_s:.0f}s, min-scale {rec.min_scale}",
    )


def applied_condition(
    mode: str, paused: bool, write_errors: Sequence[str], live: ServingRevision
) -> Condition:
    if mode == "Off":
        return Condition("Applied", False, "Off", "updateMode Off: nothing is written")
    if paused:
        return Condition(
            "Applied",
            False,
            "Paused",
            f"the InferenceService has {PAUSED_ANNOTATION}=true: nothing is written",
        )
    if mode == "Recommend":
        return Condition("Applied", False, "RecommendOnly", "updateMode Recommend: status only")
    if write_errors:
        return Condition("Applied", False, "WriteFailed", "; ".join(write_errors))
    values = ", ".join(f"{k.rsplit('/', 1)[-1]}={v}" for k, v in sorted(live.annotations.items()))
    return Condition("Applied", True, "InForce", f"revision {live.name}: {values or 'defaults'}")


OBJECTIVE_MET = "ObjectiveMet"


def _ms(value: float | None) -> str:
    if value is None:
        return "?"
    return "beyond 100 s" if math.isinf(value) else f"{value:.0f} ms"


def objective_condition(rec: Recommendation, spec: ModelScalerSpec, paused: bool) -> Condition:
    """ObjectiveMet for one revision, from the target stage's judgement of its latest interval
    (``rec.judgement``). The message names the revision first ("revision NAME: ..."), as the
    other conditions do, so a canary's can carry each revision's share."""
    head = f"revision {rec.revision}"
    if rec.mode == "Off":
        return Condition(OBJECTIVE_MET, None, "Off", "updateMode Off: latency not judged")
    j = rec.judgement
    if rec.fail_static:
        return Condition(OBJECTIVE_MET, None, "NoData", f"{head}: {rec.reasons[0]}")
    if j is None:  # a new revision's first tick: its predecessor's target, nothing judged
        return Condition(
            OBJECTIVE_MET,
            None,
            "Settling",
            f"{head}: a new revision, starting from its predecessor's target: not judged yet",
        )
    if j.outcome == "no_requests":
        return Condition(
            OBJECTIVE_MET, None, "NoData", f"{head}: no requests in the interval: nothing to judge"
        )
    if j.outcome == "too_few":
        n = rec.observation.request_count if rec.observation is not None else 0
        return Condition(
            OBJECTIVE_MET,
            None,
            "NoData",
            f"{head}: {n} requests in the interval, too few to judge (and none learned at "
            "their concurrency)",
        )
    pname = f"p{spec.objective_percentile:g}"
    objective = _ms(spec.objective_latency_ms)
    seen = f"{pname} {_ms(j.latency_ms)} at {j.concurrency or 0:.3g} conc/replica ({j.source})"
    if j.outcome == "settling":
        return Condition(
            OBJECTIVE_MET,
            None,
            "Settling",
            f"{head}: the interval is a change taking effect (a new target, or the revision "
            f"coming up from zero): its {seen} is not the target's; judged again from the next "
            f"full interval at target {format_target(j.from_target)}",
        )
    if j.outcome == "meets":
        return Condition(
            OBJECTIVE_MET, True, "Met", f"{head}: {seen} meets the {objective} objective"
        )
    if j.outcome == "misses_unshared":
        return Condition(
            OBJECTIVE_MET,
            False,
            "Unattainable",
            f"{head}: {seen}, with requests not sharing a replica: the {objective} objective "
            f"is below the model's own {pname} of {_ms(j.latency_ms)}, so no target meets it; "
            "relax spec.objective.latencyMs or make the model faster",
        )
    return Condition(
        OBJECTIVE_MET,
        False,
        "Missed",
        f"{head}: {seen} misses the {objective} objective at a concurrency the target "
        f"controls: {_backing_off(rec, j.from_target, paused)}",
    )


def _backing_off(rec: Recommendation, from_target: float, paused: bool) -> str:
    """What the tuner does about a miss: lowers the target (applied, recommended, or not while
    paused), or holds it where going lower would not help now (see its reasons)."""
    before, after = format_target(from_target), format_target(rec.target)
    if rec.target >= from_target or before == after:
        return f"target {before} held, no lower for now (the recommendation's reasons say why)"
    if paused:
        return f"the tuner would back off, target {before} -> {after}, but the model is paused"
    if rec.mode == "Recommend":
        return f"the tuner recommends backing off, target {before} -> {after} (not applied)"
    return f"the tuner is backing off, target {before} -> {after}"


def not_ready_conditions(reason: str, message: str) -> list[Condition]:
    """The spec is fine but there is nothing to tune (no InferenceService, no revision)."""
    return [
        Condition("Invalid", False, "Valid"),
        Condition("MetricsAvailable", None, reason, message),
        Condition("RecommendationReady", False, reason, message),
        Condition("Applied", False, reason, message),
        Condition(OBJECTIVE_MET, None, reason, message),
    ]


def failed_conditions(error: str) -> list[Condition]:
    """The tuner raised for this model: nothing recommended or applied this tick."""
    message = f"the tuner failed for this model, values in force left as they are: {error}"
    return [
        Condition("Invalid", False, "Valid"),
        Condition("MetricsAvailable", None, "TunerError", "not judged: the tuner failed"),
        Condition("RecommendationReady", False, "TunerError", message),
        Condition("Applied", False, "TunerError", message),
        Condition(OBJECTIVE_MET, None, "TunerError", "not judged: the tuner failed"),
    ]


def invalid_conditions(errors: Sequence[str]) -> list[Condition]:
    message = "; ".join(errors)
    return [
        Condition("Invalid", True, "InvalidSpec", message),
        Condition("MetricsAvailable", None, "InvalidSpec", "not read: the spec is invalid"),
        Condition("RecommendationReady", False, "InvalidSpec", message),
        Condition("Applied", False, "InvalidSpec", "nothing is applied while the spec is invalid"),
        Condition(OBJECTIVE_MET, None, "InvalidSpec", "not judged: the spec is invalid"),
    ]
