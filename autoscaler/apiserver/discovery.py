"""Discovery documents: ``/version``, ``/api``, ``/apis``, per group and group-version, and the
aggregated form (apidiscovery.k8s.io/v2, k8s.io/apiserver/pkg/endpoints/discovery/aggregated)
that kubectl asks for first.
"""

from __future__ import annotations

from typing import Any

from autoscaler.apiserver.registry import Registry, ResourceType

VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
SUB_VERBS = ["get", "patch", "update"]
KUBE_VERSION = {"major": "1", "minor": "32", "gitVersion": "v1.32.0-modelscale"}


def version_info() -> dict[str, Any]:
    return {
        **KUBE_VERSION,
        "gitCommit": "",
        "gitTreeState": "clean",
        "buildDate": "2025-01-01T00:00:00Z",
        "goVersion": "n/a",
        "compiler": "n/a",
        "platform": "linux/amd64",
    }


def api_versions(address: str) -> dict[str, Any]:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": address}],
    }


def _group(reg: Registry, group: str) -> dict[str, Any]:
    versions = reg.group_versions()[group]
    gvs = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {"name": group, "versions": gvs, "preferredVersion": gvs[0]}


def api_group_list(reg: Registry) -> dict[str, Any]:
    groups = [g for g in reg.group_versions() if g]
    return {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [_group(reg, g) for g in sorted(groups)],
    }


def api_group(reg: Registry, group: str) -> dict[str, Any] | None:
    if group not in reg.group_versions() or not group:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group(reg, group)}


def _resource(rt: ResourceType) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": rt.plural,
        "singularName": rt.singular,
        "namespaced": rt.namespaced,
        "kind": rt.kind,
        "verbs": VERBS,
    }
    if rt.short_names:
        out["shortNames"] = list(rt.short_names)
    if rt.categories:
        out["categories"] = list(rt.categories)
    return out


def resource_list(reg: Registry, group: str, version: str) -> dict[str, Any] | None:
    types = reg.in_group_version(group, version)
    if not types:
        return None
    resources = []
    for rt in types:
        resources.append(_resource(rt))
        if rt.status_subresource:
            resources.append(
                {
                    "name": f"{rt.plural}/status",
                    "singularName": "",
                    "namespaced": rt.namespaced,
                    "kind": rt.kind,
                    "verbs": SUB_VERBS,
                }
            )
        for sub in rt.get_subresources:
            resources.append(
                {
                    "name": f"{rt.plural}/{sub}",
                    "singularName": "",
                    "namespaced": rt.namespaced,
                    "kind": rt.kind,
                    "verbs": ["get"],
                }
            )
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": resources,
    }


def _discovery_resource(rt: ResourceType) -> dict[str, Any]:
    out: dict[str, Any] = {
        "resource": rt.plural,
        "responseKind": {"group": rt.group, "version": rt.version, "kind": rt.kind},
        "scope": "Namespaced" if rt.namespaced else "Cluster",
        "singularResource": rt.singular,
        "verbs": VERBS,
    }
    if rt.short_names:
        out["shortNames"] = list(rt.short_names)
    if rt.categories:
        out["categories"] = list(rt.categories)
    subresources = []
    if rt.status_subresource:
        subresources.append(
            {
                "subresource": "status",
                "responseKind": {"group": rt.group, "version": rt.version, "kind": rt.kind},
                "verbs": SUB_VERBS,
            }
        )
    for sub in rt.get_subresources:
        subresources.append(
            {
                "subresource": sub,
                "responseKind": {"group": rt.group, "version": rt.version, "kind": rt.kind},
                "verbs": ["get"],
            }
        )
    if subresources:
        out["subresources"] = subresources
    return out


def aggregated(reg: Registry, *, core: bool, version: str = "v2") -> dict[str, Any]:
    """The APIGroupDiscoveryList for ``/api`` (core) or ``/apis`` (every named group)."""
    items = []
    for group, versions in sorted(reg.group_versions().items()):
        if (group == "") != core:
            continue
        items.append(
            {
                "metadata": {"name": group, "creationTimestamp": None},
                "versions": [
                    {
                        "version": v,
                        "resources": [
                            _discovery_resource(rt) for rt in reg.in_group_version(group, v)
                        ],
                        "freshness": "Current",
                    }
                    for v in versions
                ],
            }
        )
    return {
        "kind": "APIGroupDiscoveryList",
        "apiVersion": f"apidiscovery.k8s.io/{version}",
        "metadata": {},
        "items": items,
    }
