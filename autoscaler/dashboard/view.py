"""What the dashboard and ``modelscale status`` show: pure renderings of a ``World`` (the objects
as the API shows them, live replica counts, the recorder's history) into JSON-ready dicts.

One overview computation serves the JSON API, the web page and the terminal table. The latency
light compares the last observed objective percentile with the objective: green below 90 % of
it, amber from 90 % up to the objective, red beyond it, grey when nothing was observed.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any

from autoscaler.kube.model import scaler_age
from autoscaler.runtime.reconcile.names import ISVC_LABEL, revision_order
from autoscaler.tuner.idle import idle_edges_s
from autoscaler.tuner.status import BEYOND_LAST_BUCKET_MS

from .recorder import ModelKey, Recorder, ReplicaSample, TickSample, series

AMBER_FRACTION = 0.9


# Figures (request rate, latency) from a tick older than this many tick periods are not shown:
# the tuner stopped observing the model (it is gone, or this process stands by).
STALE_AFTER_TICKS = 2.5
DEFAULT_TICK_PERIOD_S = 30.0
# What ``coldStartsLastHour`` counts: requests that waited on a revision with no ready replica
# (the source sees the activator), or only 0 -> 1 transitions of ready replicas (it does not).
COLD_STARTS_WAITED = "waited"
COLD_STARTS_FROM_ZERO = "scaleUpsFromZero"


@dataclass(frozen=True)
class Index:
    """A ``World``'s objects by model, built once (linear) so every view is linear too."""

    keys: tuple[ModelKey, ...]  # every InferenceService and every model a ModelScaler names
    isvcs: Mapping[ModelKey, Mapping[str, Any]]
    scalers: Mapping[ModelKey, Mapping[str, Any]]  # the governing ModelScaler per model
    revisions: Mapping[ModelKey, list[Mapping[str, Any]]]  # by name, per model
    revision_model: Mapping[tuple[str, str], ModelKey]  # (namespace, revision) -> model

    @cached_property
    def keys_set(self) -> frozenset[ModelKey]:
        return frozenset(self.keys)

    @classmethod
    def of(cls, world: World) -> Index:
        isvcs: dict[ModelKey, Mapping[str, Any]] = {}
        for i in world.isvcs:
            isvcs.setdefault(_key(i), i)
        scalers: dict[ModelKey, Mapping[str, Any]] = {}
        for s in world.scalers:
            target = _target(s)
            if not target:
                continue
            key = (_key(s)[0], target)
            held = scalers.get(key)
            # the one the tuner takes: the oldest naming the model (the others are invalid)
            if held is None or scaler_age(s) < scaler_age(held):
                scalers[key] = s
        revisions: dict[ModelKey, list[Mapping[str, Any]]] = {}
        revision_model: dict[tuple[str, str], ModelKey] = {}
        for r in world.revisions:
            model = (_meta(r).get("labels") or {}).get(ISVC_LABEL)
            if not model:
                continue
            ns, name = _key(r)
            revisions.setdefault((ns, str(model)), []).append(r)
            revision_model[(ns, name)] = (ns, str(model))
        for revs in revisions.values():
            revs.sort(key=lambda r: _key(r)[1])
        keys = tuple(sorted(set(isvcs) | set(scalers)))
        return cls(keys, isvcs, scalers, revisions, revision_model)


@dataclass(frozen=True)
class World:
    """Everything one read of the dashboard needs, taken at ``now_s`` (wall seconds)."""

    now_s: float
    isvcs: Sequence[Mapping[str, Any]] = ()
    scalers: Sequence[Mapping[str, Any]] = ()
    revisions: Sequence[Mapping[str, Any]] = ()
    # (namespace, revision) -> (desired, actual) from the data plane (one-machine mode)
    live: Mapping[tuple[str, str], tuple[int, int]] = field(default_factory=dict)
    recorder: Recorder = field(default_factory=Recorder)
    # False: this process's tuner stands by (another holds the Lease), so it records no history
    leading: bool = True
    tick_period_s: float = DEFAULT_TICK_PERIOD_S
    # the source sees requests wait on a revision at zero (one-machine mode's activator)
    sees_waiting: bool = False

    @cached_property
    def index(self) -> Index:
        """The objects by model, built on first use and kept for this World's life."""
        return Index.of(self)


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def _key(obj: Mapping[str, Any]) -> ModelKey:
    meta = _meta(obj)
    return (meta.get("namespace") or "default", meta.get("name") or "")


def _target(scaler: Mapping[str, Any]) -> str:
    target = ((scaler.get("spec") or {}).get("targetRef") or {}).get("name")
    return str(target) if target else ""


def _predictor(isvc: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return (((isvc or {}).get("status") or {}).get("components") or {}).get("predictor") or {}


def scaler_for(world: World, key: ModelKey) -> Mapping[str, Any] | None:
    """The ModelScaler governing the InferenceService ``key`` (the oldest naming it)."""
    return world.index.scalers.get(key)


def model_keys(world: World) -> list[ModelKey]:
    """Every InferenceService, and every model a ModelScaler names, sorted."""
    return list(world.index.keys)


def isvc_for(world: World, key: ModelKey) -> Mapping[str, Any] | None:
    return world.index.isvcs.get(key)


def revisions_of(world: World, key: ModelKey) -> list[Mapping[str, Any]]:
    return list(world.index.revisions.get(key, ()))


def revision_replicas(world: World, ns: str, rev: Mapping[str, Any]) -> tuple[int, int]:
    """(desired, actual) of one revision: the data plane's when it has them, else its status."""
    name = _key(rev)[1]
    if (ns, name) in world.live:
        return world.live[(ns, name)]
    status = rev.get("status") or {}
    return int(status.get("desiredReplicas") or 0), int(status.get("actualReplicas") or 0)


def model_replicas(
    world: World, key: ModelKey, serving_now: Sequence[Mapping[str, Any]] | None = None
) -> tuple[int, int]:
    """(desired, actual) summed over the revisions that serve (``serving``, or the rows of it
    the caller has): a revision that takes no traffic (one that failed to become ready, one
    retired) is not counted. Over every revision of the model only while the InferenceService
    names none that serves."""
    if serving_now is None:
        serving_now = serving(world, key)
    if serving_now:
        return (
            sum(r["replicasDesired"] for r in serving_now),
            sum(r["replicasActual"] for r in serving_now),
        )
    desired = actual = 0
    for rev in world.index.revisions.get(key, ()):
        d, a = revision_replicas(world, key[0], rev)
        desired, actual = desired + d, actual + a
    return desired, actual


def serving(world: World, key: ModelKey) -> list[dict[str, Any]]:
    """The revisions that take traffic (``traffic`` without those routed 0 %, as the tuner
    counts them), oldest first, with their replicas."""
    out: dict[str, dict[str, Any]] = {}
    for t in traffic(world, key):
        percent = t.get("percent")
        if percent is not None and percent <= 0:
            continue
        held = out.get(t["revision"])
        if held is None:
            out[t["revision"]] = t
        elif held["percent"] is not None and percent is not None:  # routed twice (a tag)
            held["percent"] += percent
    return sorted(out.values(), key=lambda t: revision_order(str(t["revision"])))


def _revision_rows(world: World, key: ModelKey, status: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each serving revision with its traffic share, replicas, and the values in force on it
    and when the tuner last wrote to it (from the ModelScaler's ``status.revisions``; a status
    without them describes the live revision only, or a sole one)."""
    rows = serving(world, key)
    learned = {
        str(e.get("name")): e for e in status.get("revisions") or [] if isinstance(e, Mapping)
    }
    described = (status.get("recommendation") or {}).get("revision")
    for row in rows:
        entry = learned.get(str(row["revision"])) or {}
        sole = len(rows) == 1 or row["revision"] == described
        target = entry.get("target", status.get("target") if sole else None)
        row["target"] = float(target) if isinstance(target, int | float) else None
        row["keepAlive"] = entry.get("keepAlive", status.get("keepAlive") if sole else None)
        if entry:  # the tuner's own word on the revision: no time while nothing was applied
            row["lastChange"] = (entry.get("applied") or {}).get("time")
        else:
            last = status.get("applied") or {}
            named = len(rows) == 1 or last.get("revision") == row["revision"]
            row["lastChange"] = last.get("time") if named else None
        if row.get("percent") is None and len(rows) == 1:
            row["percent"] = 100
    return rows


def objective(scaler: Mapping[str, Any] | None) -> tuple[float | None, float]:
    """(latency ms, percentile) of the ModelScaler's objective."""
    obj = ((scaler or {}).get("spec") or {}).get("objective") or {}
    ms = obj.get("latencyMs")
    return (float(ms) if isinstance(ms, int | float) else None), float(obj.get("percentile") or 95)


def latency_state(latency_ms: float | None, objective_ms: float | None) -> str:
    if latency_ms is None or objective_ms is None:
        return "unknown"
    if latency_ms > objective_ms:
        return "red"
    return "amber" if latency_ms >= AMBER_FRACTION * objective_ms else "green"


def fresh_tick(world: World, key: ModelKey, has_isvc: bool = True) -> TickSample | None:
    """The model's last tick, if its figures are still current: None when the InferenceService
    is gone, when this process stands by, or when the tick is older than ``STALE_AFTER_TICKS``
    tick periods (the tuner no longer observes the model)."""
    last = world.recorder.last_tick(key)
    if last is None or not has_isvc or not world.leading:
        return None
    return last if world.now_s - last.t_s <= STALE_AFTER_TICKS * world.tick_period_s else None


def overview_row(world: World, key: ModelKey) -> dict[str, Any]:
    ns, model = key
    isvc = isvc_for(world, key)
    scaler = scaler_for(world, key)
    status = (scaler or {}).get("status") or {}
    pred = _predictor(isvc)
    revision = pred.get("latestReadyRevision") or (status.get("recommendation") or {}).get(
        "revision"
    )
    revisions = _revision_rows(world, key, status)
    desired, actual = model_replicas(world, key, revisions)
    last = fresh_tick(world, key, isvc is not None)
    objective_ms, percentile = objective(scaler)
    latency = last.latency_ms if last else None
    mode = status.get("mode") or ("untuned" if scaler is None else "pending")
    scale_ups = world.recorder.scale_ups_from_zero(key, world.now_s)
    cold_starts = world.recorder.cold_starts(key, world.now_s) if world.sees_waiting else scale_ups
    target = status.get("target")
    return {
        "namespace": ns,
        "model": model,
        "revision": revision,
        "revisions": revisions,
        "replicasDesired": desired,
        "replicasActual": actual,
        "requestRatePerS": last.request_rate_per_s if last else None,
        "latencyMs": latency,
        "latencyPercentile": percentile,
        "objectiveMs": objective_ms,
        "latencyState": latency_state(latency, objective_ms),
        "coldStartsLastHour": cold_starts,
        "coldStartsCount": COLD_STARTS_WAITED if world.sees_waiting else COLD_STARTS_FROM_ZERO,
        "scaleUpsFromZeroLastHour": scale_ups,
        "mode": mode,
        "modelScaler": _key(scaler)[1] if scaler else None,
        "hasInferenceService": isvc is not None,
        "target": float(target) if isinstance(target, int | float) else None,
        "keepAlive": status.get("keepAlive"),
        "lastChange": (status.get("applied") or {}).get("time"),
        "objective": objective_met(status),
        "url": ((isvc or {}).get("status") or {}).get("url"),
    }


def objective_met(status: Mapping[str, Any]) -> dict[str, Any] | None:
    """The ObjectiveMet condition as the tuner last wrote it (status "True", "False" or
    "Unknown", its reason and message), None while the status has none."""
    for c in status.get("conditions") or []:
        if isinstance(c, Mapping) and c.get("type") == "ObjectiveMet":
            return {k: c.get(k) for k in ("status", "reason", "message")}
    return None


def overview(world: World) -> dict[str, Any]:
    return {
        "now": world.now_s,
        "leading": world.leading,
        "models": [overview_row(world, k) for k in world.index.keys],
    }


def traffic(world: World, key: ModelKey) -> list[dict[str, Any]]:
    """The traffic split across revisions, with each revision's replicas."""
    ns = key[0]
    revs = {_key(r)[1]: r for r in revisions_of(world, key)}
    pred = _predictor(isvc_for(world, key))
    latest = pred.get("latestReadyRevision")
    out: list[dict[str, Any]] = []
    for entry in pred.get("traffic") or []:
        name = entry.get("revisionName") or (latest if entry.get("latestRevision") else None)
        if not name:
            continue
        rev = revs.get(name)
        desired, actual = revision_replicas(world, ns, rev) if rev is not None else (0, 0)
        out.append({
            "revision": name,
            "percent": entry.get("percent"),
            "latest": bool(entry.get("latestRevision")) or name == latest,
            "tag": entry.get("tag"),
            "replicasDesired": desired,
            "replicasActual": actual,
        })  # fmt: skip
    if not out and latest in revs:
        desired, actual = revision_replicas(world, ns, revs[latest])
        out.append({"revision": latest, "percent": 100, "latest": True, "tag": None,
                    "replicasDesired": desired, "replicasActual": actual})  # fmt: skip
    return out


def timeseries(world: World, key: ModelKey) -> dict[str, Any]:
    """The recorded history; the replica series ends with the counts as they are now, so the
    chart agrees with the overview between samples."""
    rec = world.recorder
    replicas = rec.replicas(key)
    if replicas and world.now_s > replicas[-1].t_s:
        desired, actual = model_replicas(world, key)
        replicas.append(ReplicaSample(world.now_s, desired, actual))
    return {
        "replicas": series(replicas, {"t": "t_s", "desired": "desired", "actual": "actual"}),
        "ticks": series(
            rec.ticks(key),
            {
                "t": "t_s",
                "revision": "revision",
                "concurrencyPerReplica": "concurrency_per_replica",
                "target": "target",
                "requestRatePerS": "request_rate_per_s",
                "latencyMs": "latency_ms",
                "objectiveMs": "objective_latency_ms",
            },
        ),
    }


def _learned(status: Mapping[str, Any], revision: str | None) -> Mapping[str, Any]:
    learned = list(status.get("revisions") or [])
    for entry in learned:
        if entry.get("name") == revision:
            return entry
    return learned[-1] if learned else {}


def capacity(world: World, key: ModelKey) -> dict[str, Any]:
    """The learned curve (latency against per-replica concurrency) with the chosen target."""
    scaler = scaler_for(world, key)
    status = (scaler or {}).get("status") or {}
    rec = status.get("recommendation") or {}
    entry = _learned(status, rec.get("revision"))
    objective_ms, percentile = objective(scaler)
    return {
        "revision": entry.get("name"),
        "points": [
            {
                "concurrency": p[0],
                "latencyMs": p[1] if p[1] < BEYOND_LAST_BUCKET_MS else None,
                "requests": p[2],
                # the percentile lies beyond the last latency bucket (over 100 s): overload
                "beyondLastBucket": p[1] >= BEYOND_LAST_BUCKET_MS,
            }
            for p in entry.get("points") or []
        ],
        "kneeConcurrency": entry.get("kneeConcurrency"),
        "target": rec.get("target", status.get("target")),
        "objectiveMs": objective_ms,
        "percentile": percentile,
    }


def _bin_end(from_s: float) -> float | None:
    """The upper edge of the idle-time bin starting at ``from_s`` (None: the last, open bin)."""
    edges = idle_edges_s()
    i = bisect.bisect_right(edges, from_s)
    return edges[i] if i < len(edges) else None


def idle(world: World, key: ModelKey) -> dict[str, Any]:
    """The idle-time histogram with the keep-alive and pre-warm marks (seconds after the last
    request)."""
    scaler = scaler_for(world, key)
    status = (scaler or {}).get("status") or {}
    rec = status.get("recommendation") or {}
    entry = _learned(status, rec.get("revision"))
    hist = entry.get("idleHistogram") or {}
    decisions = world.recorder.decisions(key)
    return {
        "revision": entry.get("name"),
        "samples": hist.get("samples", 0),
        "bins": [
            {"fromS": b[0], "toS": _bin_end(b[0]), "share": b[1]} for b in hist.get("bins") or []
        ],
        "keepAliveS": rec.get("keepAliveSeconds"),
        "prewarmFromS": decisions[0].warm_from_s if decisions else rec.get("warmFromSeconds"),
        "prewarmAt": rec.get("prewarmAt"),
        "windowKind": rec.get("windowKind"),
    }


def decisions(world: World, key: ModelKey) -> list[dict[str, Any]]:
    """Recent decisions, newest first; without history, the one in the ModelScaler's status."""
    seen = world.recorder.decisions(key)
    if seen:
        return [d.as_json() for d in seen]
    status = (scaler_for(world, key) or {}).get("status") or {}
    rec = status.get("recommendation")
    if not rec:
        return []
    t_s = _unix(rec.get("time"))
    return [{
        "t_s": t_s, "first_t_s": t_s, "revision": rec.get("revision"), "mode": status.get("mode"),
        "target": rec.get("target"), "keep_alive_s": rec.get("keepAliveSeconds"),
        "min_scale": rec.get("minScale"), "confidence": rec.get("confidence"),
        "fail_static": rec.get("failStatic"), "warm_from_s": rec.get("warmFromSeconds"),
        "written": [], "reasons": list(rec.get("reasons") or []), "explain": [], "repeats": 1,
        "time": rec.get("time"),
    }]  # fmt: skip


def _unix(stamp: object) -> float | None:
    """An RFC 3339 time from a status as Unix seconds (None when absent or unreadable)."""
    if not isinstance(stamp, str) or not stamp:
        return None
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def detail(world: World, key: ModelKey) -> dict[str, Any] | None:
    """Everything the model page shows; None when the model is unknown."""
    if key not in world.index.keys_set:
        return None
    from autoscaler.kube.explain import render

    scaler = scaler_for(world, key)
    status = (scaler or {}).get("status") or {}
    explain = render(key[1], key[0], scaler, isvc_for(world, key)) if scaler and status else []
    recent = decisions(world, key)
    return {
        "now": world.now_s,
        "leading": world.leading,
        "overview": overview_row(world, key),
        "conditions": [
            {k: c.get(k) for k in ("type", "status", "reason", "message")}
            for c in status.get("conditions") or []
        ],
        "recommendation": status.get("recommendation"),
        "applied": status.get("applied"),
        "lastReasons": list((status.get("recommendation") or {}).get("reasons") or [])
        or (recent[0]["reasons"] if recent else []),
        "explain": explain,
        "traffic": traffic(world, key),
    }
