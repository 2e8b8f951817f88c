"""Revision -> PodAutoscaler, and the Revision's and PodAutoscaler's status.

Mirrors knative/serving ``pkg/reconciler/revision`` (resources/pa.go) at knative-v1.21 and later:
the PodAutoscaler has the revision's name, its spec carries containerConcurrency, the scale target
and reachability, and its ``autoscaling.knative.dev/*`` annotations are the Revision object's own
(the Revision is their source of truth: an annotation patched on the live Revision reaches the
PodAutoscaler without a new revision, and extra ones put on the PodAutoscaler are removed).

With ``legacy_pa_annotations`` (Knative before 1.21) the reconciler writes the PodAutoscaler's
annotations only when creating it, so annotations patched onto the PodAutoscaler stay.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from . import names

REACHABLE = "Reachable"
UNREACHABLE = "Unreachable"


def autoscaling_annotations(obj: Mapping[str, Any]) -> dict[str, str]:
    return {
        k: str(v)
        for k, v in ((obj.get("metadata") or {}).get("annotations") or {}).items()
        if k.startswith(names.AUTOSCALING_PREFIX)
    }


def desired_pa(
    revision: Mapping[str, Any],
    *,
    reachable: bool,
    existing: Mapping[str, Any] | None = None,
    legacy_pa_annotations: bool = False,
) -> dict[str, Any]:
    meta = revision["metadata"]
    annotations = autoscaling_annotations(revision)
    annotations.setdefault(names.CLASS_ANNOTATION, names.KPA_CLASS)
    if legacy_pa_annotations and existing is not None:
        annotations = dict((existing.get("metadata") or {}).get("annotations") or {})
    labels = {
        k: v
        for k, v in (meta.get("labels") or {}).items()
        if k.startswith("serving.knative.dev/") or k.startswith("serving.kserve.io/")
    }
    labels[names.REVISION_LABEL] = meta["name"]
    return {
        "apiVersion": f"{names.AUTOSCALING_GROUP}/v1alpha1",
        "kind": "PodAutoscaler",
        "metadata": {
            "name": meta["name"],
            "namespace": meta.get("namespace", "default"),
            "labels": labels,
            "annotations": annotations,
            "ownerReferences": [names.owner_reference(revision)],
        },
        "spec": {
            "containerConcurrency": int(
                (revision.get("spec") or {}).get("containerConcurrency") or 0
            ),
            "protocolType": "http1",
            "reachability": REACHABLE if reachable else UNREACHABLE,
            "scaleTargetRef": {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "name": f"{meta['name']}-deployment",
            },
        },
    }


@dataclass(frozen=True)
class ScaleState:
    """What the data plane and the KPA say about one revision right now."""

    desired: int
    actual: int  # ready replicas
    ever_ready: bool
    active: bool  # the activator is not the only thing in the path / has pods
    failure: str = ""  # why replicas fail (e.g. the model does not load)
    limited: str = ""  # why it cannot scale further (e.g. the machine-wide cap)


def pa_status(pa: Mapping[str, Any], state: ScaleState, now_iso: str) -> dict[str, Any]:
    ready = state.ever_ready and not state.failure
    conditions = [
        names.condition(
            "Active",
            state.active,
            "" if state.active else "NoTraffic",
            "" if state.active else "The target is not receiving traffic.",
            now_iso,
        ),
        names.condition("ScaleTargetInitialized", state.ever_ready, now_iso=now_iso),
        names.condition("SKSReady", True, now_iso=now_iso),
        names.condition(
            "Ready",
            ready if state.ever_ready or state.failure else None,
            "Queued" if not state.ever_ready and not state.failure else ("" if ready else "Failed"),
            state.failure or state.limited,
            now_iso,
        ),
    ]
    return {
        "observedGeneration": pa["metadata"].get("generation", 1),
        "desiredScale": state.desired,
        "actualScale": state.actual,
        "serviceName": pa["metadata"]["name"],
        "metricsServiceName": f"{pa['metadata']['name']}-private",
        "conditions": names.merge_conditions(
            (pa.get("status") or {}).get("conditions"), conditions
        ),
    }


def revision_status(revision: Mapping[str, Any], state: ScaleState, now_iso: str) -> dict[str, Any]:
    if state.failure:
        ready: bool | None = False
        reason, message = (
            "ContainerMissing" if "not found" in state.failure else "ExitCode",
            state.failure,
        )
    elif state.ever_ready:
        ready, reason, message = True, "", ""
    else:
        ready, reason, message = None, "Deploying", ""
    conditions = [
        names.condition("Active", state.active, "" if state.active else "NoTraffic", "", now_iso),
        names.condition(
            "ContainerHealthy",
            None if not state.ever_ready and not state.failure else not state.failure,
            reason if state.failure else "",
            message,
            now_iso,
        ),
        names.condition(
            "ResourcesAvailable",
            None if not state.ever_ready and not state.failure else not state.failure,
            "" if not state.limited else "ReplicaCap",
            state.limited,
            now_iso,
        ),
        names.condition("Ready", ready, reason, message, now_iso),
    ]
    container = ((revision.get("spec") or {}).get("containers") or [{}])[0]
    return {
        "observedGeneration": revision["metadata"].get("generation", 1),
        "actualReplicas": state.actual,
        "desiredReplicas": state.desired,
        "serviceName": revision["metadata"]["name"],
        "containerStatuses": [{"name": container.get("name", "user-container")}],
        "conditions": names.merge_conditions(
            (revision.get("status") or {}).get("conditions"), conditions
        ),
    }
