"""The built-in kinds an install of modelscale uses: apps/v1 Deployment, core/v1 Service and
ServiceAccount, rbac.authorization.k8s.io/v1 ClusterRole, ClusterRoleBinding, Role and
RoleBinding, and policy/v1 PodDisruptionBudget (k8s.io/api apps/v1, core/v1, rbac/v1,
policy/v1 types).

They are stored and served (discovery, OpenAPI, list, watch, the four patch types) so that
``kubectl apply --dry-run=server`` of the manifests works against the embedded API server. Nothing
runs them: no Deployment controller, no Service endpoints, no authorization. Their schemas name
the top-level fields and, for RBAC, the rule and subject fields. Below a workload's ``spec``
the schemas name the structs and lists a strategic merge patch needs (the pod template, its
containers, env, ports, volumes, ...) with the patch strategies and merge keys of k8s.io/api;
every other field is kept as it is (x-kubernetes-preserve-unknown-fields), because the
manifests' schema check against the Kubernetes OpenAPI is done elsewhere, with the real schemas.
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


# --- the patch strategies of the workload kinds' lists ---------------------------------------
#
# The table follows the Go struct tags `patchStrategy:"..." patchMergeKey:"..."` of k8s.io/api
# v0.32 (core/v1 PodSpec, Container, EphemeralContainerCommon, Volume, ServiceSpec, PodStatus,
# ServiceStatus, ServiceAccount; apps/v1 DeploymentSpec and DeploymentStatus; policy/v1
# PodDisruptionBudgetStatus; meta/v1 ObjectMeta in schema.object_meta_schema), which is also
# what the upstream OpenAPI publishes as x-kubernetes-patch-strategy and
# x-kubernetes-patch-merge-key. Lists that carry no tag upstream are atomic (a patch replaces
# them whole): tolerations, envFrom, command, args, readinessGates, resizePolicy, affinity terms,
# service clusterIPs/externalIPs, container statuses, label selector matchExpressions.
# Structs are named (with ``properties``) so that kubectl, which computes a client-side apply
# patch from the OpenAPI v3 document, finds every field it walks through; every object keeps
# unknown fields.


def _o(props: dict[str, Any] | None = None, strategy: str = "") -> dict[str, Any]:
    """A struct (or, without ``props``, a map of scalars); unknown fields are kept."""
    out: dict[str, Any] = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    if props:
        out["properties"] = props
    if strategy:
        out["x-kubernetes-patch-strategy"] = strategy
    return out


def _atomic(items: dict[str, Any] | None = None) -> dict[str, Any]:
    """A list without a patch strategy: replaced whole by a patch."""
    return {"type": "array", "items": items if items is not None else {}}


def _merge(key: str, items: dict[str, Any], *, retain_keys: bool = False) -> dict[str, Any]:
    """A list merged item by item on ``key`` (``patchStrategy:"merge"``)."""
    return {
        "type": "array",
        "x-kubernetes-patch-strategy": "merge,retainKeys" if retain_keys else "merge",
        "x-kubernetes-patch-merge-key": key,
        "items": items,
    }


def label_selector_schema() -> dict[str, Any]:
    return _o({"matchLabels": _o(), "matchExpressions": _atomic(_o({"values": _atomic()}))})


def _handler(*, probe: bool) -> dict[str, Any]:
    props = {
        "exec": _o({"command": _atomic()}),
        "httpGet": _o({"httpHeaders": _atomic(_o())}),
        "tcpSocket": _o(),
    }
    props["grpc" if probe else "sleep"] = _o()
    return _o(props)


def container_schema() -> dict[str, Any]:
    """core/v1 Container (and EphemeralContainerCommon, whose tags are the same)."""
    key_ref = _o()
    value_from = _o(
        {
            "fieldRef": key_ref,
            "resourceFieldRef": key_ref,
            "configMapKeyRef": key_ref,
            "secretKeyRef": key_ref,
        }
    )
    return _o(
        {
            "command": _atomic(),
            "args": _atomic(),
            "ports": _merge("containerPort", _o()),
            "envFrom": _atomic(_o({"configMapRef": _o(), "secretRef": _o()})),
            "env": _merge("name", _o({"valueFrom": value_from})),
            "resources": _o({"limits": _o(), "requests": _o(), "claims": _atomic(_o())}),
            "resizePolicy": _atomic(_o()),
            "volumeMounts": _merge("mountPath", _o()),
            "volumeDevices": _merge("devicePath", _o()),
            "livenessProbe": _handler(probe=True),
            "readinessProbe": _handler(probe=True),
            "startupProbe": _handler(probe=True),
            "lifecycle": _o({"postStart": _handler(probe=False), "preStop": _handler(probe=False)}),
            "securityContext": _o(
                {
                    "capabilities": _o({"add": _atomic(), "drop": _atomic()}),
                    "seLinuxOptions": _o(),
                    "windowsOptions": _o(),
                    "seccompProfile": _o(),
                    "appArmorProfile": _o(),
                }
            ),
        }
    )


def _volume() -> dict[str, Any]:
    items = _atomic(_o())
    return _o(
        {
            "configMap": _o({"items": items}),
            "secret": _o({"items": items}),
            "downwardAPI": _o({"items": items}),
            "projected": _o({"sources": _atomic(_o())}),
            "emptyDir": _o(),
            "hostPath": _o(),
            "persistentVolumeClaim": _o(),
            "nfs": _o(),
            "csi": _o({"volumeAttributes": _o(), "nodePublishSecretRef": _o()}),
            "ephemeral": _o({"volumeClaimTemplate": _o({"metadata": _o(), "spec": _o()})}),
            "image": _o(),
        }
    )


def _affinity() -> dict[str, Any]:
    pod_terms = _o(
        {
            "requiredDuringSchedulingIgnoredDuringExecution": _atomic(_o()),
            "preferredDuringSchedulingIgnoredDuringExecution": _atomic(_o()),
        }
    )
    node = _o(
        {
            "requiredDuringSchedulingIgnoredDuringExecution": _o(
                {"nodeSelectorTerms": _atomic(_o())}
            ),
            "preferredDuringSchedulingIgnoredDuringExecution": _atomic(_o()),
        }
    )
    return _o({"nodeAffinity": node, "podAffinity": pod_terms, "podAntiAffinity": pod_terms})


def pod_spec_schema() -> dict[str, Any]:
    """core/v1 PodSpec."""
    container = container_schema()
    return _o(
        {
            "volumes": _merge("name", _volume(), retain_keys=True),
            "initContainers": _merge("name", container),
            "containers": _merge("name", container),
            "ephemeralContainers": _merge("name", container),
            "imagePullSecrets": _merge("name", _o()),
            "hostAliases": _merge("ip", _o({"hostnames": _atomic()})),
            "tolerations": _atomic(_o()),
            "nodeSelector": _o(),
            "affinity": _affinity(),
            "topologySpreadConstraints": _merge(
                "topologyKey", _o({"labelSelector": label_selector_schema()})
            ),
            "securityContext": _o(
                {
                    "seLinuxOptions": _o(),
                    "windowsOptions": _o(),
                    "seccompProfile": _o(),
                    "appArmorProfile": _o(),
                    "supplementalGroups": _atomic(),
                    "sysctls": _atomic(_o()),
                }
            ),
            "dnsConfig": _o(
                {"nameservers": _atomic(), "searches": _atomic(), "options": _atomic(_o())}
            ),
            "readinessGates": _atomic(_o()),
            "overhead": _o(),
            "os": _o(),
            "schedulingGates": _merge("name", _o()),
            "resourceClaims": _merge("name", _o(), retain_keys=True),
            "resources": _o({"limits": _o(), "requests": _o(), "claims": _atomic(_o())}),
        }
    )


def pod_template_schema() -> dict[str, Any]:
    """core/v1 PodTemplateSpec."""
    return _o({"metadata": object_meta_schema(), "spec": pod_spec_schema()})


def _conditions() -> dict[str, Any]:
    return _merge("type", _o())


def pod_schema() -> dict[str, Any]:
    status = _o(
        {
            "conditions": _conditions(),
            "podIPs": _merge("ip", _o()),
            "hostIPs": _merge("ip", _o()),
            "containerStatuses": _atomic(_o()),
            "initContainerStatuses": _atomic(_o()),
            "ephemeralContainerStatuses": _atomic(_o()),
        }
    )
    return _root({"spec": pod_spec_schema(), "status": status})


def deployment_schema() -> dict[str, Any]:
    spec = _o(
        {
            "selector": label_selector_schema(),
            "template": pod_template_schema(),
            "strategy": _o({"rollingUpdate": _o()}, strategy="retainKeys"),
        }
    )
    return _root({"spec": spec, "status": _o({"conditions": _conditions()})})


def service_schema() -> dict[str, Any]:
    spec = _o(
        {
            "ports": _merge("port", _o()),
            "selector": _o(),
            "clusterIPs": _atomic(),
            "externalIPs": _atomic(),
            "ipFamilies": _atomic(),
            "loadBalancerSourceRanges": _atomic(),
            "sessionAffinityConfig": _o({"clientIP": _o()}),
        }
    )
    status = _o({"loadBalancer": _o({"ingress": _atomic(_o())}), "conditions": _conditions()})
    return _root({"spec": spec, "status": status})


def pdb_schema() -> dict[str, Any]:
    spec = _o({"selector": label_selector_schema()})
    status = _o({"conditions": _conditions(), "disruptedPods": _o()})
    return _root({"spec": spec, "status": status})


def pod_template_kind_schema(kind: str) -> dict[str, Any]:
    """The other apps/v1 and batch/v1 kinds that hold a pod template (ReplicaSet,
    StatefulSet, DaemonSet, Job, CronJob): not served here, kept beside the served ones so
    that serving one is a registry entry."""
    template = pod_template_schema()
    if kind == "CronJob":
        job = _o({"metadata": object_meta_schema(), "spec": _o({"template": template})})
        return _root({"spec": _o({"jobTemplate": job}), "status": _o()})
    spec: dict[str, Any] = {"selector": label_selector_schema(), "template": template}
    if kind == "StatefulSet":
        spec["volumeClaimTemplates"] = _atomic(_o())
    return _root({"spec": _o(spec), "status": _o({"conditions": _conditions()})})


def service_account_schema() -> dict[str, Any]:
    ref = {"type": "object", "properties": {"name": {"type": "string"}}}
    return _root(
        {
            "automountServiceAccountToken": {"type": "boolean"},
            "imagePullSecrets": {"type": "array", "items": ref},
            "secrets": _merge("name", dict(_ANY)),  # imagePullSecrets: atomic upstream
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
            schema=deployment_schema(), storage_version="v1",
        ),
        ResourceType(
            "", "v1", "services", "service", "Service", True,
            short_names=("svc",), categories=("all",), status_subresource=True,
            schema=service_schema(), storage_version="v1",
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
            schema=pdb_schema(), storage_version="v1",
        ),
    ]  # fmt: skip
