"""What the dashboard and ``modelscale status`` show: pure renderings of a ``World`` (the objects
as the API shows them, live replica counts, the recorder's history) into JSON-ready dicts.

One overview computation serves the JSON API, the web page and the terminal table. The latency
light compares the last observed objective percentile with the objective: green below 90 % of
it, amber from 90 % up to the objective, red beyond it, grey when nothing was observed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from autoscaler.runtime.reconcile.names import ISVC_LABEL

from .recorder import ModelKey, Recorder, ReplicaSample, series

AMBER_FRACTION = 0.9


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


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def _key(obj: Mapping[str, Any]) -> ModelKey:
    meta = _meta(obj)
    return (meta.get("namespace") or "default", meta.get("name") or "")


def _predictor(isvc: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return (((isvc or {}).get("status") or {}).get("components") or {}).get("predictor") or {}


def scaler_for(world: World, key: ModelKey) -> Mapping[str, Any] | None:
    """The ModelScaler governing the InferenceService ``key`` (one of the same name first)."""
    ns, model = key
    governing = [
        s
        for s in world.scalers
        if _key(s)[0] == ns and ((s.get("spec") or {}).get("targetRef") or {}).get("name") == model
    ]
    governing.sort(key=lambda s: (_key(s)[1] != model, _key(s)[1]))
    return governing[0] if governing else None


def model_keys(world: World) -> list[ModelKey]:
    """Every InferenceService, and every model a ModelScaler names, sorted."""
    keys = {_key(i) for i in world.isvcs}
    for s in world.scalers:
        target = ((s.get("spec") or {}).get("targetRef") or {}).get("name")
        if target:
            keys.add((_key(s)[0], str(target)))
    return sorted(keys)


def isvc_for(world: World, key: ModelKey) -> Mapping[str, Any] | None:
    for i in world.isvcs:
        if _key(i) == key:
            return i
    return None


def revisions_of(world: World, key: ModelKey) -> list[Mapping[str, Any]]:
    ns, model = key
    return sorted(
        (
            r
            for r in world.revisions
            if _key(r)[0] == ns and (_meta(r).get("labels") or {}).get(ISVC_LABEL) == model
        ),
        key=lambda r: _key(r)[1],
    )


def revision_replicas(world: World, ns: str, rev: Mapping[str, Any]) -> tuple[int, int]:
    """(desired, actual) of one revision: the data plane's when it has them, else its status."""
    name = _key(rev)[1]
    if (ns, name) in world.live:
        return world.live[(ns, name)]
    status = rev.get("status") or {}
    return int(status.get("desiredReplicas") or 0), int(status.get("actualReplicas") or 0)


def model_replicas(world: World, key: ModelKey) -> tuple[int, int]:
    desired = actual = 0
    for rev in revisions_of(world, key):
        d, a = revision_replicas(world, key[0], rev)
        desired, actual = desired + d, actual + a
    return desired, actual


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


def overview_row(world: World, key: ModelKey) -> dict[str, Any]:
    ns, model = key
    isvc = isvc_for(world, key)
    scaler = scaler_for(world, key)
    status = (scaler or {}).get("status") or {}
    pred = _predictor(isvc)
    revision = pred.get("latestReadyRevision") or (status.get("recommendation") or {}).get(
        "revision"
    )
    desired, actual = model_replicas(world, key)
    last = world.recorder.last_tick(key)
    objective_ms, percentile = objective(scaler)
    latency = last.latency_ms if last else None
    mode = status.get("mode") or ("untuned" if scaler is None else "pending")
    target = status.get("target")
    return {
        "namespace": ns,
        "model": model,
        "revision": revision,
        "replicasDesired": desired,
        "replicasActual": actual,
        "requestRatePerS": last.request_rate_per_s if last else None,
        "latencyMs": latency,
        "latencyPercentile": percentile,
        "objectiveMs": objective_ms,
        "latencyState": latency_state(latency, objective_ms),
        "coldStartsLastHour": world.recorder.cold_starts(key, world.now_s),
        "mode": mode,
        "modelScaler": _key(scaler)[1] if scaler else None,
        "hasInferenceService": isvc is not None,
        "target": float(target) if isinstance(target, int | float) else None,
        "keepAlive": status.get("keepAlive"),
        "lastChange": (status.get("applied") or {}).get("time"),
        "url": ((isvc or {}).get("status") or {}).get("url"),
    }


def overview(world: World) -> dict[str, Any]:
    return {"now": world.now_s, "models": [overview_row(world, k) for k in model_keys(world)]}


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
            {"concurrency": p[0], "latencyMs": p[1] if p[1] < 1e6 else None, "requests": p[2]}
            for p in entry.get("points") or []
        ],
        "kneeConcurrency": entry.get("kneeConcurrency"),
        "target": rec.get("target", status.get("target")),
        "objectiveMs": objective_ms,
        "percentile": percentile,
    }


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
        "bins": [{"fromS": b[0], "share": b[1]} for b in hist.get("bins") or []],
        "keepAliveS": rec.get("keepAliveSeconds"),
        "prewarmFromS": decisions[0].warm_from_s if decisions else None,
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
    return [{
        "time": rec.get("time"), "revision": rec.get("revision"), "mode": status.get("mode"),
        "target": rec.get("target"), "keep_alive_s": rec.get("keepAliveSeconds"),
        "min_scale": rec.get("minScale"), "confidence": rec.get("confidence"),
        "fail_static": rec.get("failStatic"), "reasons": list(rec.get("reasons") or []),
    }]  # fmt: skip


def detail(world: World, key: ModelKey) -> dict[str, Any] | None:
    """Everything the model page shows; None when the model is unknown."""
    if key not in set(model_keys(world)):
        return None
    from autoscaler.kube.explain import render

    scaler = scaler_for(world, key)
    status = (scaler or {}).get("status") or {}
    explain = render(key[1], key[0], scaler, isvc_for(world, key)) if scaler and status else []
    recent = decisions(world, key)
    return {
        "now": world.now_s,
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
