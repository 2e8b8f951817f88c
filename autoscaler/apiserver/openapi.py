"""OpenAPI documents built from the registered schemas.

``/openapi/v3`` lists one document per group-version (with a content hash in its URL so
clients can cache it); each document has the resource paths with ``x-kubernetes-action`` and
``x-kubernetes-group-version-kind`` on every operation, the ``fieldValidation``, ``dryRun``
and ``fieldManager`` parameters kubectl looks for before it relies on server-side validation
(k8s.io/cli-runtime/pkg/resource/query_param_verifier_v3.go), the PATCH media types (strategic
merge only for built-in kinds) and the kind schemas under ``components.schemas`` with their
``x-kubernetes-group-version-kind`` and patch strategies. ``/openapi/v2`` serves the same
schemas as Swagger 2.0 JSON to clients that accept JSON; to protobuf clients (kubectl) it
serves an empty Swagger document, so kubectl's client-side validation, which it falls back to
only for kinds the server does not serve, passes them on to the server's own answer (as it
does for kinds a cluster has no schema for).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from autoscaler.apiserver.registry import Registry, ResourceType
from autoscaler.apiserver.schema import object_meta_schema

_BUILTIN_NAMES = {
    ("", "Namespace"): "io.k8s.api.core.v1.Namespace",
    ("", "ConfigMap"): "io.k8s.api.core.v1.ConfigMap",
    ("", "Secret"): "io.k8s.api.core.v1.Secret",
    ("", "Event"): "io.k8s.api.core.v1.Event",
    ("events.k8s.io", "Event"): "io.k8s.api.events.v1.Event",
    ("coordination.k8s.io", "Lease"): "io.k8s.api.coordination.v1.Lease",
    (
        "apiextensions.k8s.io",
        "CustomResourceDefinition",
    ): "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinition",
}


def schema_name(rt: ResourceType) -> str:
    known = _BUILTIN_NAMES.get((rt.group, rt.kind))
    if known:
        return known
    reversed_group = ".".join(reversed(rt.group.split(".")))
    return f"{reversed_group}.{rt.version}.{rt.kind}"


def gvk(rt: ResourceType) -> dict[str, str]:
    return {"group": rt.group, "version": rt.version, "kind": rt.kind}


def kind_schema(rt: ResourceType) -> dict[str, Any]:
    """The schema of ``rt``'s objects, with apiVersion, kind and ObjectMeta filled in."""
    base = dict(rt.schema or {"type": "object", "x-kubernetes-preserve-unknown-fields": True})
    props = dict(base.get("properties") or {})
    props["apiVersion"] = {"type": "string"}
    props["kind"] = {"type": "string"}
    props["metadata"] = object_meta_schema()
    base["properties"] = props
    base.setdefault("type", "object")
    base["x-kubernetes-group-version-kind"] = [gvk(rt)]
    return base


def _param(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "description": description,
        "schema": {"type": "string"},
        "uniqueItems": True,
    }


_WRITE_PARAMS = [
    _param("dryRun", "When present, the modifications are not persisted (All)."),
    _param("fieldManager", "The name of the actor making the change."),
    _param("fieldValidation", "Strict, Warn or Ignore: what to do with unknown fields."),
]


def _patch_types(rt: ResourceType) -> list[str]:
    out = ["application/json-patch+json", "application/merge-patch+json"]
    if rt.builtin:
        out.append("application/strategic-merge-patch+json")
    out.append("application/apply-patch+yaml")
    return out


def _op(
    rt: ResourceType,
    action: str,
    ref: str,
    *,
    body: list[str] | None = None,
    params: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    op: dict[str, Any] = {
        "operationId": f"{action}{rt.kind}",
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": gvk(rt),
        "parameters": list(params or ()),
        "responses": {
            "200": {"description": "OK", "content": {"application/json": {"schema": {"$ref": ref}}}}
        },
    }
    if body:
        op["requestBody"] = {
            "content": {
                t: {"schema": {"$ref": ref} if t == "application/json" else {"type": "object"}}
                for t in body
            },
            "required": True,
        }
    return op


def paths_for(rt: ResourceType) -> dict[str, Any]:
    ref = f"#/components/schemas/{schema_name(rt)}"
    prefix = f"/apis/{rt.group}/{rt.version}" if rt.group else f"/api/{rt.version}"
    coll = (
        f"{prefix}/namespaces/{{namespace}}/{rt.plural}"
        if rt.namespaced
        else f"{prefix}/{rt.plural}"
    )
    item = f"{coll}/{{name}}"
    patch_params = [*_WRITE_PARAMS, _param("force", "Force an apply.")]
    paths: dict[str, Any] = {
        coll: {
            "get": _op(rt, "list", ref),
            "post": _op(
                rt, "post", ref, body=["application/json", "application/yaml"], params=_WRITE_PARAMS
            ),
            "delete": _op(rt, "deletecollection", ref),
        },
        item: {
            "get": _op(rt, "get", ref),
            "put": _op(
                rt, "put", ref, body=["application/json", "application/yaml"], params=_WRITE_PARAMS
            ),
            "patch": _op(rt, "patch", ref, body=_patch_types(rt), params=patch_params),
            "delete": _op(rt, "delete", ref, params=[_WRITE_PARAMS[0]]),
        },
    }
    if rt.namespaced:
        paths[f"{prefix}/{rt.plural}"] = {"get": _op(rt, "list", ref)}
    if rt.status_subresource:
        paths[f"{item}/status"] = {
            "get": _op(rt, "get", ref),
            "put": _op(rt, "put", ref, body=["application/json"], params=_WRITE_PARAMS),
            "patch": _op(rt, "patch", ref, body=_patch_types(rt), params=patch_params),
        }
    return paths


def gv_key(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def v3_document(reg: Registry, group: str, version: str) -> dict[str, Any] | None:
    types = reg.in_group_version(group, version)
    if not types:
        return None
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    for rt in types:
        paths.update(paths_for(rt))
        schemas[schema_name(rt)] = kind_schema(rt)
    return {
        "openapi": "3.0.0",
        "info": {"title": "modelscale", "version": "v1.32.0"},
        "paths": paths,
        "components": {"schemas": schemas},
    }


class OpenAPICache:
    """Serialized documents, rebuilt after the registry changes."""

    def __init__(self, reg: Registry) -> None:
        self.reg = reg
        self._docs: dict[str, tuple[bytes, str]] = {}
        self._v2: bytes | None = None

    def invalidate(self) -> None:
        self._docs.clear()
        self._v2 = None

    def document(self, key: str) -> tuple[bytes, str] | None:
        """(JSON bytes, hash) of the document for ``api/v1`` or ``apis/<group>/<version>``."""
        if key not in self._docs:
            parts = key.split("/")
            if parts[0] == "api" and len(parts) == 2:
                doc = v3_document(self.reg, "", parts[1])
            elif parts[0] == "apis" and len(parts) == 3:
                doc = v3_document(self.reg, parts[1], parts[2])
            else:
                doc = None
            if doc is None:
                return None
            raw = json.dumps(doc, separators=(",", ":")).encode()
            self._docs[key] = (raw, hashlib.sha512(raw).hexdigest().upper())
        return self._docs[key]

    def index(self) -> dict[str, Any]:
        paths = {}
        for group, versions in self.reg.group_versions().items():
            for v in versions:
                key = gv_key(group, v)
                found = self.document(key)
                if found is not None:
                    paths[key] = {"serverRelativeURL": f"/openapi/v3/{key}?hash={found[1]}"}
        return {"paths": paths}

    def v2(self) -> bytes:
        if self._v2 is None:
            definitions: dict[str, Any] = {}
            paths: dict[str, Any] = {}
            for rt in self.reg.all():
                definitions[schema_name(rt)] = kind_schema(rt)
                for p, ops in paths_for(rt).items():
                    paths.setdefault(p, {}).update(
                        {
                            m: {
                                k: v for k, v in op.items() if k not in ("requestBody", "responses")
                            }
                            for m, op in ops.items()
                        }
                    )
            doc = {
                "swagger": "2.0",
                "info": {"title": "modelscale", "version": "v1.32.0"},
                "paths": paths,
                "definitions": json.loads(
                    json.dumps(definitions).replace("#/components/schemas/", "#/definitions/")
                ),
            }
            self._v2 = json.dumps(doc, separators=(",", ":")).encode()
        return self._v2


def _pb_field(number: int, payload: bytes) -> bytes:
    """One length-delimited protobuf field (short payloads: one-byte tag and length)."""
    assert number < 16 and len(payload) < 128
    return bytes([number << 3 | 2, len(payload)]) + payload


def v2_protobuf_empty() -> bytes:
    """An OpenAPI v2 document (gnostic ``openapi_v2.Document``) with no paths or definitions."""
    info = _pb_field(1, b"modelscale") + _pb_field(2, b"v1.32.0")
    return _pb_field(1, b"2.0") + _pb_field(2, info) + _pb_field(8, b"")
