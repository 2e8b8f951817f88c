"""Label, annotation and naming conventions shared by the reconcilers (Knative's and KServe's own)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

KSERVE_GROUP = "serving.kserve.io"
KNATIVE_SERVING_GROUP = "serving.knative.dev"
AUTOSCALING_GROUP = "autoscaling.internal.knative.dev"

AUTOSCALING_PREFIX = "autoscaling.knative.dev/"
CLASS_ANNOTATION = AUTOSCALING_PREFIX + "class"
KPA_CLASS = "kpa.autoscaling.knative.dev"
MIN_SCALE = AUTOSCALING_PREFIX + "min-scale"
MAX_SCALE = AUTOSCALING_PREFIX + "max-scale"
TARGET = AUTOSCALING_PREFIX + "target"
METRIC = AUTOSCALING_PREFIX + "metric"

ISVC_LABEL = "serving.kserve.io/inferenceservice"
COMPONENT_LABEL = "component"
SERVICE_LABEL = "serving.knative.dev/service"
CONFIGURATION_LABEL = "serving.knative.dev/configuration"
CONFIGURATION_GENERATION_LABEL = "serving.knative.dev/configurationGeneration"
REVISION_LABEL = "serving.knative.dev/revision"
ROUTE_LABEL = "serving.knative.dev/route"

DEFAULT_DOMAIN = "example.com"


def predictor_service_name(isvc_name: str) -> str:
    """KServe names the predictor's Knative Service ``<isvc>-predictor``."""
    return f"{isvc_name}-predictor"


def revision_name(configuration_name: str, generation: int) -> str:
    """Knative names a revision after its configuration and the configuration's generation."""
    return f"{configuration_name}-{generation:05d}"


def host(name: str, namespace: str, domain: str = DEFAULT_DOMAIN) -> str:
    """Knative's default domain template ``{{.Name}}.{{.Namespace}}.{{.Domain}}``."""
    return f"{name}.{namespace}.{domain}"


def owner_reference(obj: Mapping[str, Any], *, controller: bool = True) -> dict[str, Any]:
    meta = obj["metadata"]
    return {
        "apiVersion": obj["apiVersion"],
        "kind": obj["kind"],
        "name": meta["name"],
        "uid": meta.get("uid", ""),
        "controller": controller,
        "blockOwnerDeletion": True,
    }


def condition(
    type_: str, status: bool | None, reason: str = "", message: str = "", now_iso: str = ""
) -> dict[str, Any]:
    """A Knative-style condition; ``status`` None means Unknown."""
    cond: dict[str, Any] = {
        "type": type_,
        "status": "Unknown" if status is None else ("True" if status else "False"),
    }
    if reason:
        cond["reason"] = reason
    if message:
        cond["message"] = message
    if now_iso:
        cond["lastTransitionTime"] = now_iso
    return cond


def get_condition(obj: Mapping[str, Any], type_: str) -> Mapping[str, Any] | None:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == type_:
            return cond
    return None


def is_ready(obj: Mapping[str, Any] | None) -> bool:
    if not obj:
        return False
    cond = get_condition(obj, "Ready")
    return bool(cond and cond.get("status") == "True")


def copied_condition(
    type_: str, source: Mapping[str, Any] | None, now_iso: str = ""
) -> dict[str, Any]:
    """Condition ``type_`` with a child's condition's status, reason and message (Unknown
    when the child has none)."""
    cond = source or {}
    return condition(
        type_,
        tri(cond.get("status")),
        cond.get("reason", ""),
        cond.get("message", ""),
        now_iso,
    )


def tri(status: Any) -> bool | None:
    """A condition's status string as True, False or None (Unknown, or none at all)."""
    return {"True": True, "False": False}.get(str(status)) if status is not None else None


def observed(obj: Mapping[str, Any] | None) -> bool:
    """Whether ``obj``'s status was written for its current generation (its spec)."""
    if not obj:
        return False
    st = obj.get("status") or {}
    gen = (obj.get("metadata") or {}).get("generation")
    return "observedGeneration" in st and (gen is None or st["observedGeneration"] == gen)


def aggregate(type_: str, parts: list[dict[str, Any]], now_iso: str = "") -> dict[str, Any]:
    """A living condition over ``parts``: True when all are, False (with the first False's
    reason) when any is, else Unknown with the first not-True one's reason."""
    if all(c["status"] == "True" for c in parts):
        return condition(type_, True, now_iso=now_iso)
    bad = next((c for c in parts if c["status"] == "False"), None)
    bad = bad or next(c for c in parts if c["status"] != "True")
    return condition(
        type_,
        tri(bad["status"]),
        bad.get("reason", ""),
        bad.get("message", ""),
        now_iso,
    )


def merge_conditions(
    old: list[Mapping[str, Any]] | None, new: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Keep an unchanged condition's lastTransitionTime so status writes stay idempotent."""
    by_type = {c.get("type"): c for c in old or []}
    out = []
    for cond in new:
        prev = by_type.get(cond["type"])
        if prev and prev.get("status") == cond["status"] and "lastTransitionTime" in prev:
            cond = {**cond, "lastTransitionTime": prev["lastTransitionTime"]}
        out.append(cond)
    return out


def revision_order(name: str) -> tuple[int, str]:
    """A sort key for revision names, oldest first: the generation Knative ends a revision's
    name with (``<configuration>-00002``; 0 when there is none), then the name."""
    tail = name.rsplit("-", 1)[-1]
    return (int(tail) if tail.isdigit() else 0, name)
