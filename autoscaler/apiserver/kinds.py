"""The built-in kinds: Namespace, ConfigMap, Secret, Pod (stored, nothing runs it), Event (core/v1 and events.k8s.io/v1), Lease and
CustomResourceDefinition (plus, from ``install_kinds``, the workload and RBAC kinds of an
install), with OpenAPI v3 schemas carrying the patch strategies and merge keys of their lists
(as in k8s.io/api, whose Go struct tags kubectl reads through OpenAPI).

Both Event kinds share one store (k8s.io/kubernetes/pkg/apis/events: the events.k8s.io/v1 form
is a renaming of core/v1 Event fields); ``to_storage`` and ``from_storage`` convert.
"""

from __future__ import annotations

from typing import Any

from autoscaler.apiserver.install_kinds import install_types, pod_schema
from autoscaler.apiserver.registry import ResourceType
from autoscaler.apiserver.schema import object_meta_schema

CRD_GROUP = "apiextensions.k8s.io"


def _s(fmt: str | None = None) -> dict[str, Any]:
    return {"type": "string", "format": fmt} if fmt else {"type": "string"}


def _i() -> dict[str, Any]:
    return {"type": "integer", "format": "int32"}


def _obj(props: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "object", "properties": props}
    if required:
        out["required"] = required
    return out


def _root(props: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return _obj(
        {"apiVersion": _s(), "kind": _s(), "metadata": object_meta_schema(), **props}, required
    )


def _object_reference() -> dict[str, Any]:
    return _obj(
        {
            k: _s()
            for k in (
                "apiVersion",
                "fieldPath",
                "kind",
                "name",
                "namespace",
                "resourceVersion",
                "uid",
            )
        }
    )


def _conditions(fields: list[str]) -> dict[str, Any]:
    return {
        "type": "array",
        "x-kubernetes-patch-merge-key": "type",
        "x-kubernetes-patch-strategy": "merge",
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["type"],
        "items": _obj({k: _s() for k in fields}, ["type", "status"]),
    }


def namespace_schema() -> dict[str, Any]:
    return _root(
        {
            "spec": _obj({"finalizers": {"type": "array", "items": _s()}}),
            "status": _obj(
                {
                    "phase": {"type": "string", "enum": ["Active", "Terminating"]},
                    "conditions": _conditions(
                        ["type", "status", "lastTransitionTime", "reason", "message"]
                    ),
                }
            ),
        }
    )


def configmap_schema() -> dict[str, Any]:
    return _root(
        {
            "data": {"type": "object", "additionalProperties": _s()},
            "binaryData": {"type": "object", "additionalProperties": _s("byte")},
            "immutable": {"type": "boolean"},
        }
    )


def secret_schema() -> dict[str, Any]:
    return _root(
        {
            "data": {"type": "object", "additionalProperties": _s("byte")},
            "stringData": {"type": "object", "additionalProperties": _s()},
            "type": {"type": "string", "default": "Opaque"},
            "immutable": {"type": "boolean"},
        }
    )


def _event_source() -> dict[str, Any]:
    return _obj({"component": _s(), "host": _s()})


def core_event_schema() -> dict[str, Any]:
    return _root(
        {
            "involvedObject": _object_reference(),
            "reason": _s(),
            "message": _s(),
            "source": _event_source(),
            "firstTimestamp": _s("date-time"),
            "lastTimestamp": _s("date-time"),
            "count": _i(),
            "type": _s(),
            "eventTime": _s("date-time"),
            "series": _obj({"count": _i(), "lastObservedTime": _s("date-time")}),
            "action": _s(),
            "related": _object_reference(),
            "reportingComponent": _s(),
            "reportingInstance": _s(),
        },
        ["involvedObject"],
    )


def events_v1_schema() -> dict[str, Any]:
    return _root(
        {
            "eventTime": _s("date-time"),
            "series": _obj({"count": _i(), "lastObservedTime": _s("date-time")}),
            "reportingController": _s(),
            "reportingInstance": _s(),
            "action": _s(),
            "reason": _s(),
            "regarding": _object_reference(),
            "related": _object_reference(),
            "note": _s(),
            "type": _s(),
            "deprecatedSource": _event_source(),
            "deprecatedFirstTimestamp": _s("date-time"),
            "deprecatedLastTimestamp": _s("date-time"),
            "deprecatedCount": _i(),
        },
        ["eventTime"],
    )


def lease_schema() -> dict[str, Any]:
    return _root(
        {
            "spec": _obj(
                {
                    "holderIdentity": _s(),
                    "leaseDurationSeconds": _i(),
                    "acquireTime": _s("date-time"),
                    "renewTime": _s("date-time"),
                    "leaseTransitions": _i(),
                    "strategy": _s(),
                    "preferredHolder": _s(),
                }
            )
        }
    )


def crd_schema() -> dict[str, Any]:
    anything = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    column = _obj(
        {
            "name": _s(),
            "type": _s(),
            "format": _s(),
            "description": _s(),
            "priority": _i(),
            "jsonPath": _s(),
        },
        ["name", "type", "jsonPath"],
    )
    version = _obj(
        {
            "name": _s(),
            "served": {"type": "boolean"},
            "storage": {"type": "boolean"},
            "deprecated": {"type": "boolean"},
            "deprecationWarning": _s(),
            "schema": anything,
            "subresources": anything,
            "additionalPrinterColumns": {"type": "array", "items": column},
            "selectableFields": {"type": "array", "items": anything},
        },
        ["name", "served", "storage"],
    )
    names = _obj(
        {
            "plural": _s(),
            "singular": _s(),
            "kind": _s(),
            "listKind": _s(),
            "shortNames": {"type": "array", "items": _s()},
            "categories": {"type": "array", "items": _s()},
        },
        ["plural", "kind"],
    )
    return _root(
        {
            "spec": _obj(
                {
                    "group": _s(),
                    "names": names,
                    "scope": {"type": "string", "enum": ["Namespaced", "Cluster"]},
                    "versions": {"type": "array", "items": version, "minItems": 1},
                    "conversion": anything,
                    "preserveUnknownFields": {"type": "boolean"},
                },
                ["group", "names", "scope", "versions"],
            ),
            "status": anything,
        },
        ["spec"],
    )


def builtin_types() -> list[ResourceType]:
    """The kinds every server serves."""
    return [
        ResourceType(
            "", "v1", "namespaces", "namespace", "Namespace", False,
            short_names=("ns",), status_subresource=True, schema=namespace_schema(),
            storage_version="v1",
        ),
        ResourceType(
            "", "v1", "configmaps", "configmap", "ConfigMap", True,
            short_names=("cm",), schema=configmap_schema(), storage_version="v1",
        ),
        ResourceType(
            "", "v1", "secrets", "secret", "Secret", True,
            schema=secret_schema(), storage_version="v1",
        ),
        # Stored and served like the install's workloads (one-machine mode writes its replicas'
        # Pods; the server runs none): a controller's watch of a revision's Pods
        # (autoscaler.kube.endpoints) works against this server. ``log`` reads the log source.
        ResourceType(
            "", "v1", "pods", "pod", "Pod", True,
            short_names=("po",), categories=("all",), status_subresource=True,
            schema=pod_schema(), storage_version="v1", returns_deleted_object=True,
            get_subresources=("log",),
        ),
        ResourceType(
            "", "v1", "events", "event", "Event", True,
            short_names=("ev",), schema=core_event_schema(), storage_version="v1",
        ),
        ResourceType(
            "events.k8s.io", "v1", "events", "event", "Event", True,
            schema=events_v1_schema(), storage_version="v1", storage_group="",
        ),
        ResourceType(
            "coordination.k8s.io", "v1", "leases", "lease", "Lease", True,
            schema=lease_schema(), storage_version="v1",
        ),
        ResourceType(
            CRD_GROUP, "v1", "customresourcedefinitions", "customresourcedefinition",
            "CustomResourceDefinition", False, short_names=("crd", "crds"),
            categories=("api-extensions",), status_subresource=True, schema=crd_schema(),
            storage_version="v1",
        ),
        *install_types(),
    ]  # fmt: skip


# core/v1 Event field -> events.k8s.io/v1 Event field
_EVENT_RENAMES = {
    "involvedObject": "regarding",
    "message": "note",
    "source": "deprecatedSource",
    "firstTimestamp": "deprecatedFirstTimestamp",
    "lastTimestamp": "deprecatedLastTimestamp",
    "count": "deprecatedCount",
    "reportingComponent": "reportingController",
}
_EVENT_BACK = {v: k for k, v in _EVENT_RENAMES.items()}


def to_storage(rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
    """The stored form of ``obj`` written through ``rt``."""
    if rt.group == "events.k8s.io":
        out = {_EVENT_BACK.get(k, k): v for k, v in obj.items()}
        out["apiVersion"] = "v1"
        return out
    if rt.storage_version and rt.version != rt.storage_version:
        out = dict(obj)
        out["apiVersion"] = f"{rt.group}/{rt.storage_version}" if rt.group else rt.storage_version
        return out
    return obj


def from_storage(rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
    """``obj`` as read through ``rt`` (its apiVersion and, for events.k8s.io, field names)."""
    if rt.group == "events.k8s.io":
        out = {_EVENT_RENAMES.get(k, k): v for k, v in obj.items()}
        out["apiVersion"] = rt.api_version
        out["kind"] = rt.kind
        return out
    if obj.get("apiVersion") != rt.api_version:
        out = dict(obj)
        out["apiVersion"] = rt.api_version
        return out
    return obj
