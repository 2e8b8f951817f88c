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


def status(
    ksvc: Mapping[str, Any],
    configuration: Mapping[str, Any] | None,
    route: Mapping[str, Any] | None,
    now_iso: str,
) -> dict[str, Any]:
    cst = (configuration or {}).get("status") or {}
    rst = (route or {}).get("status") or {}
    cfg_ready = names.get_condition(configuration or {}, "Ready")
    rt_ready = names.get_condition(route or {}, "Ready")
    both = names.is_ready(configuration) and names.is_ready(route)
    failing = next(
        (c for c in (cfg_ready, rt_ready) if c is not None and c.get("status") != "True"), None
    )
    conditions = [
        names.condition(
            "ConfigurationsReady",
            None if cfg_ready is None else cfg_ready.get("status") == "True",
            (cfg_ready or {}).get("reason", ""),
            (cfg_ready or {}).get("message", ""),
            now_iso,
        ),
        names.condition(
            "RoutesReady",
            None if rt_ready is None else rt_ready.get("status") == "True",
            (rt_ready or {}).get("reason", ""),
            (rt_ready or {}).get("message", ""),
            now_iso,
        ),
        names.condition(
            "Ready",
            True if both else (None if failing is None else failing.get("status") == "True"),
            "" if both else (failing or {}).get("reason", ""),
            "" if both else (failing or {}).get("message", ""),
            now_iso,
        ),
    ]
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
