"""A ModelScaler's spec as settings: parsing and the semantic checks the CRD schema cannot do.

The CRD (manifests/crds/modelscale.dev_modelscalers.yaml) validates types, enums and ranges
field by field; ``validate_spec`` checks fields against each other (``target.min`` <=
``target.max``, ``keepAlive.fixedSeconds`` present when the policy is ``fixed``, ...) and
returns messages that name both fields and their values. ``parse_spec`` turns a valid spec
dict into a frozen ``ModelScalerSpec`` or raises ``SpecError`` carrying every message.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

UpdateMode = Literal["Off", "Recommend", "Auto"]
KeepAlivePolicyName = Literal["learned", "fixed", "off"]
ApplyMethod = Literal["revision", "podautoscaler", "inferenceservice"]

UPDATE_MODES: tuple[str, ...] = ("Off", "Recommend", "Auto")
KEEP_ALIVE_POLICIES: tuple[str, ...] = ("learned", "fixed", "off")
APPLY_METHODS: tuple[str, ...] = ("revision", "podautoscaler", "inferenceservice")

# Knative's limits (pkg/apis/autoscaling): target >= 0.01, retention period <= 1 h.
MIN_TARGET = 0.01
MAX_RETENTION_S = 3600.0
# An hour: requests that run for minutes (batch inference) have objectives of minutes too.
MAX_OBJECTIVE_LATENCY_MS = 3_600_000.0
# Knative's first latency bucket is (0, 5] ms: an objective under its bound cannot be told
# apart from the bucket's top (every interval would read as a miss).
MIN_OBJECTIVE_LATENCY_MS = 5.0
# Knative parses min-scale and max-scale as int32 (strconv.ParseInt(v, 10, 32)).
MAX_SCALE_INT32 = 2_147_483_647


class SpecError(ValueError):
    """A ModelScaler spec is invalid; ``messages`` holds one line per problem."""

    def __init__(self, messages: list[str]) -> None:
        super().__init__("invalid ModelScaler spec: " + "; ".join(messages))
        self.messages = messages


@dataclass(frozen=True, slots=True)
class ModelScalerSpec:
    """The settings one ModelScaler gives the policy."""

    target_ref_name: str
    objective_latency_ms: float
    objective_percentile: float = 95.0
    update_mode: UpdateMode = "Auto"
    target_min: float = MIN_TARGET
    target_max: float | None = None
    replicas_min: int = 0
    replicas_max: int = 0  # 0: no limit, as Knative's max-scale
    keep_alive_policy: KeepAlivePolicyName = "learned"
    keep_alive_fixed_s: float | None = None
    prewarm_enabled: bool = True
    apply_method: ApplyMethod = "revision"
    # Not from the ModelScaler: the stable window the user set on the revision
    # (``autoscaling.knative.dev/window``, from the InferenceService). The tuner then leaves the
    # window alone and plans the retention on it (autoscaler.kube.model.user_window_on).
    user_window_s: float | None = None
    # Not from the ModelScaler either: the memory of one replica, MB (the revision's container
    # memory request, else its limit; None: not declared). It weighs the keep-alive's costs
    # (``KeepAliveSettings.reference_memory_mb``).
    replica_memory_mb: float | None = None


def _get(d: Mapping[str, Any], path: str) -> Any:
    cur: Any = d
    for part in path.split("."):
        if not isinstance(cur, Mapping) or part not in cur:
            return None
        cur = cur[part]
    return cur


def _number(d: Mapping[str, Any], path: str, msgs: list[str]) -> float | None:
    v = _get(d, path)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        msgs.append(f"spec.{path}: {v!r} is not a number")
        return None
    return float(v)


def _n(v: float) -> str:
    """A number as written: whole numbers in full (2147483647, not 2.14748e+09)."""
    return f"{v:.0f}" if v == int(v) and abs(v) < 1e15 else f"{v:g}"


def _check_range(path: str, v: float | None, lo: float, hi: float | None, msgs: list[str]) -> None:
    if v is None:
        return
    if v < lo or (hi is not None and v > hi):
        allowed = f"[{_n(lo)}, {_n(hi)}]" if hi is not None else f">= {_n(lo)}"
        msgs.append(f"spec.{path}: {_n(v)} is out of range, allowed {allowed}")


def validate_spec(spec: Mapping[str, Any]) -> list[str]:
    """Every problem with ``spec`` (a ModelScaler's ``spec`` dict); empty when valid.

    Checks the schema's own rules too (so a spec that bypassed the API server is still caught)
    and the rules between fields, naming both fields in each message.
    """
    msgs: list[str] = []
    if not isinstance(spec, Mapping):
        return [f"spec: expected an object, got {type(spec).__name__}"]
    name = _get(spec, "targetRef.name")
    if not isinstance(name, str) or not name:
        msgs.append("spec.targetRef.name: required (the InferenceService in this namespace)")
    latency = _number(spec, "objective.latencyMs", msgs)
    if latency is None and _get(spec, "objective.latencyMs") is None:
        msgs.append("spec.objective.latencyMs: required")
    _check_range("objective.latencyMs", latency, 1, MAX_OBJECTIVE_LATENCY_MS, msgs)
    if latency is not None and 1 <= latency < MIN_OBJECTIVE_LATENCY_MS:
        msgs.append(
            f"spec.objective.latencyMs: {latency:g} is under {MIN_OBJECTIVE_LATENCY_MS:g} ms, the "
            f"bound of Knative's first latency bucket (0, {MIN_OBJECTIVE_LATENCY_MS:g}] ms: "
            "latencies under it cannot be told apart, so every interval would read as a miss; "
            f"use at least {MIN_OBJECTIVE_LATENCY_MS:g}"
        )
    _check_range(
        "objective.percentile", _number(spec, "objective.percentile", msgs), 50, 99.9, msgs
    )
    for path, allowed in (
        ("updateMode", UPDATE_MODES),
        ("keepAlive.policy", KEEP_ALIVE_POLICIES),
        ("apply", APPLY_METHODS),
    ):
        v = _get(spec, path)
        if v is not None and v not in allowed:
            msgs.append(f"spec.{path}: {v!r} is not one of {', '.join(allowed)}")
    tmin = _number(spec, "target.min", msgs)
    tmax = _number(spec, "target.max", msgs)
    _check_range("target.min", tmin, MIN_TARGET, None, msgs)
    _check_range("target.max", tmax, MIN_TARGET, None, msgs)
    if tmin is not None and tmax is not None and tmin > tmax:
        msgs.append(f"spec.target.min ({tmin:g}) must be <= spec.target.max ({tmax:g})")
    rmin = _number(spec, "replicas.min", msgs)
    rmax = _number(spec, "replicas.max", msgs)
    for path, v in (("replicas.min", rmin), ("replicas.max", rmax)):
        if v is not None and v != int(v):
            msgs.append(f"spec.{path}: {v:g} is not an integer")
        # Knative's min-scale and max-scale are int32
        _check_range(path, v, 0, MAX_SCALE_INT32, msgs)
    if rmin is not None and rmax is not None and rmax > 0 and rmin > rmax:
        msgs.append(
            f"spec.replicas.min ({rmin:g}) must be <= spec.replicas.max ({rmax:g}) "
            "(Knative: min-scale <= max-scale)"
        )
    policy = _get(spec, "keepAlive.policy") or "learned"
    fixed = _number(spec, "keepAlive.fixedSeconds", msgs)
    if policy == "fixed" and fixed is None and _get(spec, "keepAlive.fixedSeconds") is None:
        msgs.append("spec.keepAlive.fixedSeconds: required when spec.keepAlive.policy is 'fixed'")
    if policy != "fixed" and fixed is not None:
        msgs.append(
            f"spec.keepAlive.fixedSeconds ({fixed:g}) is only used when spec.keepAlive.policy is "
            f"'fixed', not {policy!r}"
        )
    # Stays warm K s after the last request: Knative's 60 s stable window plus at most 1 h.
    _check_range("keepAlive.fixedSeconds", fixed, 0, 3660, msgs)
    prewarm = _get(spec, "preWarm.enabled")
    if prewarm is not None and not isinstance(prewarm, bool):
        msgs.append(f"spec.preWarm.enabled: {prewarm!r} is not a boolean")
    if prewarm is True and policy == "off":
        msgs.append("spec.preWarm.enabled (true) needs spec.keepAlive.policy 'learned', not 'off'")
    if rmin is not None and rmin >= 1 and prewarm is True:
        msgs.append(
            f"spec.preWarm.enabled (true) has no effect with spec.replicas.min ({rmin:g}) >= 1"
        )
    return msgs


def parse_spec(spec: Mapping[str, Any]) -> ModelScalerSpec:
    """A valid spec dict as ``ModelScalerSpec``; raises ``SpecError`` with every problem."""
    msgs = validate_spec(spec)
    if msgs:
        raise SpecError(msgs)
    tmax = _get(spec, "target.max")
    fixed = _get(spec, "keepAlive.fixedSeconds")
    prewarm = _get(spec, "preWarm.enabled")
    return ModelScalerSpec(
        target_ref_name=str(_get(spec, "targetRef.name")),
        objective_latency_ms=float(_get(spec, "objective.latencyMs")),
        objective_percentile=float(_get(spec, "objective.percentile") or 95.0),
        update_mode=_get(spec, "updateMode") or "Auto",
        target_min=float(_get(spec, "target.min") or MIN_TARGET),
        target_max=float(tmax) if tmax is not None else None,
        replicas_min=int(_get(spec, "replicas.min") or 0),
        replicas_max=int(_get(spec, "replicas.max") or 0),
        keep_alive_policy=_get(spec, "keepAlive.policy") or "learned",
        keep_alive_fixed_s=float(fixed) if fixed is not None else None,
        prewarm_enabled=True if prewarm is None else bool(prewarm),
        apply_method=_get(spec, "apply") or "revision",
    )
