"""What the tuner puts in a ModelScaler's status: pure renderings of state and recommendation.

The field names and shapes are those of the CRD's status schema
(manifests/crds/modelscale.dev_modelscalers.yaml). Times are left to the controller, which
owns the wall clock: it adds RFC 3339 timestamps and the conditions.
"""

from __future__ import annotations

import math
from typing import Any

from autoscaler.tuner.idle import idle_edges_s
from autoscaler.tuner.policy import Recommendation
from autoscaler.tuner.settings import TunerConfig
from autoscaler.tuner.spec import ModelScalerSpec
from autoscaler.tuner.state import RevisionState

# A percentile beyond the last bucket (100 s) is written as this, JSON having no infinity.
BEYOND_LAST_BUCKET_MS = 1e6


def _r(x: float, digits: int = 4) -> float:
    spec = _G.get(digits)
    return float(format(x, spec if spec is not None else f".{digits}g"))


_G = {d: f".{d}g" for d in range(1, 7)}  # format specs, built once


def learned_status(
    state: RevisionState, spec: ModelScalerSpec, config: TunerConfig, now_s: float
) -> dict[str, Any]:
    """One entry of ``status.revisions``: the learned curve, the idle histogram, the knee."""
    ts = config.target
    points = state.latency.points(spec.objective_percentile, now_s, ts.latency_half_life_s)
    shares = state.idle.probabilities()
    edges = idle_edges_s()
    out: dict[str, Any] = {
        "name": state.revision,
        "points": [
            [
                _r(p.concurrency),
                _r(p.latency_ms) if math.isfinite(p.latency_ms) else BEYOND_LAST_BUCKET_MS,
                _r(p.requests, 3),
            ]
            for p in points
        ],
        "idleHistogram": {
            "samples": state.idle.count,
            "bins": [[edges[i], _r(w, 3)] for i, w in enumerate(shares) if w > 0],
        },
    }
    if state.knee is not None:
        out["kneeConcurrency"] = _r(state.knee.concurrency)
    if state.inherited_from is not None:
        out["inheritedFrom"] = state.inherited_from
    return out


def recommendation_status(rec: Recommendation) -> dict[str, Any]:
    """``status.recommendation`` (without its timestamp)."""
    out: dict[str, Any] = {
        "revision": rec.revision,
        "target": _r(rec.target, 3),
        "keepAliveSeconds": round(rec.keep_alive_s),
        "retentionSeconds": round(rec.retention_s),
        "minScale": rec.min_scale,
        "confidence": _r(rec.confidence, 2),
        "failStatic": rec.fail_static,
        "reasons": list(rec.reasons),
    }
    if rec.windows is not None:
        out["windowKind"] = rec.windows.kind
        if rec.windows.prewarm:  # how long after the last request min-scale goes up
            out["warmFromSeconds"] = round(rec.windows.warm_from_s)
    if rec.window_s is not None:  # the stable window the tuner has on the revision
        out["stableWindowSeconds"] = round(rec.window_s)
    if rec.latency_ms is not None:
        out["observedLatencyMs"] = (
            _r(rec.latency_ms) if math.isfinite(rec.latency_ms) else BEYOND_LAST_BUCKET_MS
        )
    return out
