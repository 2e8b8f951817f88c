"""A ModelScaler's status as the controller writes it, and when it counts as changed. Pure.

The shape is the CRD's (manifests/crds/modelscale.dev_modelscalers.yaml): the printer columns'
summary (``target``, ``keepAlive``, ``replicas``, ``mode``), the recommendation and its reasons,
what was applied and when, what was learned per revision, the checkpoint and the conditions
MetricsAvailable, RecommendationReady, Applied, ObjectiveMet and Invalid. Timestamps do not make a status
"changed": ``same_status`` compares everything else, so an idle model costs no writes.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from autoscaler.runtime.reconcile import names

CONDITION_TYPES = ("MetricsAvailable", "RecommendationReady", "Applied", "ObjectiveMet", "Invalid")


def iso(wall_s: float) -> str:
    """RFC 3339 in UTC, whole seconds (what Kubernetes' metav1.Time carries)."""
    global _last_iso
    last = _last_iso  # a tick's models share its time: formatted once
    if last[0] == wall_s and type(last[0]) is type(wall_s):
        return last[1]
    text = dt.datetime.fromtimestamp(wall_s, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    _last_iso = (wall_s, text)
    return text


_last_iso: tuple[Any, str] = (None, "")  # the last time formatted, and its text


@dataclass(frozen=True, slots=True)
class Condition:
    type: str
    status: bool | None  # None: Unknown
    reason: str = ""
    message: str = ""


def conditions_block(
    previous: Mapping[str, Any] | None,
    conditions: Sequence[Condition],
    generation: int,
    now_iso: str,
) -> list[dict[str, Any]]:
    """The conditions, keeping lastTransitionTime of those whose status did not change."""
    fresh = []
    for c in conditions:
        cond = names.condition(c.type, c.status, c.reason, c.message[:32768], now_iso)
        cond["observedGeneration"] = generation
        fresh.append(cond)
    return names.merge_conditions((previous or {}).get("conditions"), fresh)


def build_status(
    *,
    previous: Mapping[str, Any] | None,
    generation: int,
    mode: str,
    conditions: Sequence[Condition],
    now_wall_s: float,
    summary: Mapping[str, Any] | None = None,
    recommendation: Mapping[str, Any] | None = None,
    applied: Mapping[str, Any] | None = None,
    revisions: Sequence[Mapping[str, Any]] | None = None,
    checkpoint: str | None = None,
) -> dict[str, Any]:
    """The full status. ``applied`` None keeps the previous ``applied`` block (what was last
    written, and when); the controller writes the result only when ``same_status`` says no."""
    now_iso = iso(now_wall_s)
    prev = previous or {}
    out: dict[str, Any] = {"observedGeneration": generation, "mode": mode}
    out.update(summary or {})
    if recommendation is not None:
        out["recommendation"] = {**recommendation, "time": now_iso}
    if applied is not None:
        out["applied"] = {**applied, "time": now_iso}
    elif prev.get("applied"):
        out["applied"] = _copied(prev["applied"])
    if revisions:
        out["revisions"] = [dict(r) for r in revisions]
    if checkpoint is not None:
        out["checkpoint"] = checkpoint
    elif prev.get("checkpoint"):
        out["checkpoint"] = prev["checkpoint"]
    out["conditions"] = conditions_block(prev, conditions, generation, now_iso)
    return out


_ATOMS = (str, int, float, bool, type(None))


def _copied(value: Any) -> Any:
    """A deep copy of JSON data (dicts, lists and scalars), other objects ``copy.deepcopy``'s."""
    kind = type(value)
    if kind is dict:
        return {k: _copied(v) for k, v in value.items()}
    if kind is list:
        return [_copied(v) for v in value]
    if kind in _ATOMS:
        return value
    return copy.deepcopy(value)


def _without_times(status: Mapping[str, Any] | None) -> dict[str, Any]:
    s = copy.deepcopy(dict(status or {}))
    for block in ("recommendation", "applied"):
        if isinstance(s.get(block), dict):
            s[block].pop("time", None)
    for cond in s.get("conditions") or []:
        if isinstance(cond, dict):
            cond.pop("lastTransitionTime", None)
    return s


class _Other(Exception):
    """A status of another shape than the controller's: ``_without_times`` compares it."""


def _drop(value: Any, key: str) -> Any:
    """``value`` without ``key`` when it is a dict that has it (a shallow copy), else itself."""
    if isinstance(value, dict):
        if type(value) is not dict:  # a subclass (ordered, say) compares its own way
            raise _Other
        if key in value:
            value = dict(value)
            del value[key]
    return value


def _shallow_without_times(status: Mapping[str, Any] | None) -> dict[str, Any]:
    """What ``_without_times`` gives, comparing equal to it, copying only the blocks it drops a
    time from (a deep copy keeps the leaf objects: equality is the same either way). Raises
    ``_Other`` where the conditions are no list or a block is a dict subclass."""
    s = dict(status or {})
    for block in ("recommendation", "applied"):
        if block in s:
            s[block] = _drop(s[block], "time")
    conditions = s.get("conditions")
    if conditions:
        if type(conditions) is not list:
            raise _Other
        s["conditions"] = [_drop(c, "lastTransitionTime") for c in conditions]
    return s


def same_status(a: Mapping[str, Any] | None, b: Mapping[str, Any] | None) -> bool:
    """Equal but for timestamps (compared without copying what holds none)."""
    if a and b:  # the checkpoint changes whenever a model learned: told apart at once
        ca, cb = a.get("checkpoint"), b.get("checkpoint")
        if type(ca) is str and type(cb) is str and ca != cb:
            return False
    try:
        return _shallow_without_times(a) == _shallow_without_times(b)
    except _Other:
        return _without_times(a) == _without_times(b)


def status_patch(previous: Mapping[str, Any] | None, new: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON merge patch turning ``previous`` into ``new`` (removed keys set to null)."""
    body: dict[str, Any] = dict(new)
    for key in previous or {}:
        if key not in new:
            body[key] = None
    for block in ("recommendation", "applied"):
        old_block = (previous or {}).get(block)
        if isinstance(old_block, dict) and isinstance(body.get(block), dict):
            body[block] = {**{k: None for k in old_block}, **body[block]}
    return {"status": body}
