"""The built-in kinds an install of modelscale uses: apps/v1 Deployment, core/v1 Service and
ServiceAccount, rbac.authorization.k8s.io/v1 ClusterRole, ClusterRoleBinding, Role and
RoleBinding, and policy/v1 PodDisruptionBudget (k8s.io/api apps/v1, core/v1, rbac/v1,
policy/v1 types).

They are stored and served (discovery, OpenAPI, list, watch, the four patch types) so that
``kubectl apply --dry-run=server`` of the manifests works against the embedded API server. Nothing
runs them: no Deployment controller, no Service endpoints, no authorization. Their schemas name
the top-level fields and, for RBAC, the rule and subject fields; what lies below a workload's
``spec`` is kept as it is (x-kubernetes-preserve-unknown-fields), because the manifests'
schema check against the Kubernetes OpenAPI is done elsewhere, with the real schemas.
"""

from __future__ import annotations

from typing import Any

from autoscaler.apiserver.registry import ResourceType
from autoscaler.apiserver.schema import object_meta_schema

RBAC_GROUP = "rbac.authorization.k8s.io"

_ANY: dict[str, Any] = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}


def _strings() -> dict[str, Any]:
    return {"type": "array", "items": {"type": "string"}}


def _root(props: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "type": "object",
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": object_meta_schema(),
            **props,
        },
    }
    if required:
        out["required"] = required
    return out


def workload_schema() -> dict[str, Any]:
    """Deployment, Service and PodDisruptionBudget: ``spec`` and ``status`` kept whole."""
    return _root({"spec": dict(_ANY), "status": dict(_ANY)})


def service_account_schema() -> dict[str, Any]:
    ref = {"type": "object", "properties": {"name": {"type": "string"}}}
    return _root(
        {
            "automountServiceAccountToken": {"type": "boolean"},
            "imagePullSecrets": {"type": "array", "items": ref},
            "secrets": {"type": "array", "items": dict(_ANY)},
        }
    )


def _rule() -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "apiGroups": _strings(),
            "resources": _strings(),
            "resourceNames": _strings(),
            "nonResourceURLs": _strings(),
            "verbs": _strings(),
        },
        "required": ["verbs"],
    }


def role_schema(cluster: bool) -> dict[str, Any]:
    props: dict[str, Any] = {"rules": {"type": "array", "items": _rule()}}
    if cluster:
        selector = dict(_ANY)
        props["aggregationRule"] = {
            "type": "object",
            "properties": {"clusterRoleSelectors": {"type": "array", "items": selector}},
        }
    return _root(props)


def binding_schema() -> dict[str, Any]:
    subject = {
        "type": "object",
        "properties": {k: {"type": "string"} for k in ("apiGroup", "kind", "name", "namespace")},
        "required": ["kind", "name"],
    }
    role_ref = {
        "type": "object",
        "properties": {k: {"type": "string"} for k in ("apiGroup", "kind", "name")},
        "required": ["apiGroup", "kind", "name"],
    }
    return _root(
        {"subjects": {"type": "array", "items": subject}, "roleRef": role_ref}, ["roleRef"]
    )


def install_types() -> list[ResourceType]:
    """The kinds of an install's manifests, as built-in stored kinds."""
    return [
        ResourceType(
            "apps", "v1", "deployments", "deployment", "Deployment", True,
            short_names=("deploy",), categories=("all",), status_subresource=True,
            schema=workload_schema(), storage_version="v1",
        ),
        ResourceType(
            "", "v1", "services", "service", "Service", True,
            short_names=("svc",), categories=("all",), status_subresource=True,
            schema=workload_schema(), storage_version="v1",
        ),
        ResourceType(
            "", "v1", "serviceaccounts", "serviceaccount", "ServiceAccount", True,
            short_names=("sa",), schema=service_account_schema(), storage_version="v1",
        ),
        ResourceType(
            RBAC_GROUP, "v1", "clusterroles", "clusterrole", "ClusterRole", False,
            schema=role_schema(cluster=True), storage_version="v1",
        ),
        ResourceType(
            RBAC_GROUP, "v1", "clusterrolebindings", "clusterrolebinding",
            "ClusterRoleBinding", False, schema=binding_schema(), storage_version="v1",
        ),
        ResourceType(
            RBAC_GROUP, "v1", "roles", "role", "Role", True,
            schema=role_schema(cluster=False), storage_version="v1",
        ),
        ResourceType(
            RBAC_GROUP, "v1", "rolebindings", "rolebinding", "RoleBinding", True,
            schema=binding_schema(), storage_version="v1",
        ),
        ResourceType(
            "policy", "v1", "poddisruptionbudgets", "poddisruptionbudget",
            "PodDisruptionBudget", True, short_names=("pdb",), status_subresource=True,
            schema=workload_schema(), storage_version="v1",
        ),
    ]  # fmt: skip
