"""Knative Service -> Configuration and Route, and the Service's status.

Mirrors knative/serving ``pkg/reconciler/service``: a Service owns one Configuration and one Route of
its own name; the Configuration carries the template, the Route the traffic block (a Service
without one sends 100 % to the latest ready revision). The Service's status repeats the
Configuration's latest created/ready revision names and the Route's URL and traffic.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from . import names

DEFAULT_TRAFFIC: list[dict[str, Any]] = [{"latestRevision": True, "percent": 100}]


def _child(ksvc: Mapping[str, Any], kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    meta = ksvc["metadata"]
    labels = {**(meta.get("labels") or {}), names.SERVICE_LABEL: meta["name"]}
    return {
        "apiVersion": f"{names.KNATIVE_SERVING_GROUP}/v1",
        "kind": kind,
        "metadata": {
            "name": meta["name"],
            "namespace": meta.get("namespace", "default"),
            "labels": labels,
            "ownerReferences": [names.owner_reference(ksvc)],
        },
        "spec": spec,
    }


def desired_configuration(ksvc: Mapping[str, Any]) -> dict[str, Any]:
    template = copy.deepcopy((ksvc.get("spec") or {}).get("template") or {})
    template.setdefault("metadata", {})
    template["metadata"].setdefault("labels", {})[names.SERVICE_LABEL] = ksvc["metadata"]["name"]
    return _child(ksvc, "Configuration", {"template": template})


def desired_route(ksvc: Mapping[str, Any]) -> dict[str, Any]:
    traffic = copy.deepcopy((ksvc.get("spec") or {}).get("traffic") or DEFAULT_TRAFFIC)
    for target in traffic:
        if not target.get("revisionName"):
            target.setdefault("configurationName", ksvc["metadata"]["name"])
    return _child(ksvc, "Route", {"traffic": traffic})


def _propagated(child: Mapping[str, Any] | None, type_: str, now_iso: str) -> dict[str, Any]:
    """A child's Ready as the Service's ``type_`` condition, three-valued; Unknown (OutOfDate)
    while the child has not observed its current generation, as Knative's service reconciler."""
    if not names.observed(child):
        kind = "Configuration" if type_ == "ConfigurationsReady" else "Route"
        return names.condition(
            type_,
            None,
            "OutOfDate",
            f"The {kind} is still working to reflect the latest desired specification.",
            now_iso,
        )
    return names.copied_condition(type_, names.get_condition(child or {}, "Ready"), now_iso)


def _traffic_migrated(
    configuration: Mapping[str, Any] | None, route: Mapping[str, Any] | None
) -> bool:
    """Whether the Route's status serves its spec, latest targets at the latest ready revision."""
    want = ((route or {}).get("spec") or {}).get("traffic") or DEFAULT_TRAFFIC
    got = ((route or {}).get("status") or {}).get("traffic") or []
    if len(want) != len(got):
        return False
    latest_ready = ((configuration or {}).get("status") or {}).get("latestReadyRevisionName")
    for w, g in zip(want, got, strict=True):
        if w.get("latestRevision") and g.get("revisionName") != latest_ready:
            return False
        if (w.get("percent") or 0) != (g.get("percent") or 0) or w.get("tag") != g.get("tag"):
            return False
    return True


def status(
    ksvc: Mapping[str, Any],
    configuration: Mapping[str, Any] | None,
    route: Mapping[str, Any] | None,
    now_iso: str,
) -> dict[str, Any]:
    """The Service's status from its Configuration's and Route's (knative/serving
    ``pkg/reconciler/service``): ConfigurationsReady and RoutesReady carry each child's Ready
    (True, False or Unknown), OutOfDate while a child has not observed its spec, and RoutesReady
    is Unknown (TrafficNotMigrated) until the Route serves the latest ready revision; Ready is
    True when both are, False when either is, Unknown otherwise."""
    cst = (configuration or {}).get("status") or {}
    rst = (route or {}).get("status") or {}
    cfg_cond = _propagated(configuration, "ConfigurationsReady", now_iso)
    rt_cond = _propagated(route, "RoutesReady", now_iso)
    if rt_cond["status"] == "True" and not _traffic_migrated(configuration, route):
        rt_cond = names.condition(
            "RoutesReady",
            None,
            "TrafficNotMigrated",
            "Traffic is not yet migrated to the latest revision.",
            now_iso,
        )
    conditions = [cfg_cond, rt_cond, names.aggregate("Ready", [cfg_cond, rt_cond], now_iso)]
    out: dict[str, Any] = {
        "observedGeneration": ksvc["metadata"].get("generation", 1),
        "conditions": names.merge_conditions(
            (ksvc.get("status") or {}).get("conditions"), conditions
        ),
    }
    for key in ("latestCreatedRevisionName", "latestReadyRevisionName"):
        if cst.get(key):
            out[key] = cst[key]
    for key in ("url", "address", "traffic"):
        if rst.get(key):
            out[key] = rst[key]
    return out
