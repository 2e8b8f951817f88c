"""The resource registry: which kinds the server serves, and how a CRD becomes one.

A ``ResourceType`` is one served (group, version, plural) with its names, scope, status
subresource, printer columns and OpenAPI v3 schema. Built-in kinds come from ``kinds``; a
CustomResourceDefinition adds one ``ResourceType`` per served version, as the apiextensions
server does (k8s.io/apiextensions-apiserver/pkg/apiserver/customresource_handler.go). All
versions of one CRD share storage (conversion strategy ``None``: only apiVersion changes).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from autoscaler.apiserver.schema import Node, compile_schema

StorageKey = tuple[str, str]  # (group, plural)


@dataclass(frozen=True)
class ResourceType:
    """One served resource in one group-version."""

    group: str
    version: str
    plural: str
    singular: str
    kind: str
    namespaced: bool
    list_kind: str = ""
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    status_subresource: bool = False
    printer_columns: tuple[dict[str, Any], ...] = ()
    schema: dict[str, Any] | None = None
    builtin: bool = True
    storage_version: str = ""
    storage_group: str | None = None  # another group's storage (events.k8s.io -> core events)
    # DELETE answers with the object rather than a Status (as Kubernetes does for Pods)
    returns_deleted_object: bool = False
    # read-only subresources served besides status (a Pod's ``log``)
    get_subresources: tuple[str, ...] = ()
    # field paths a field selector may use besides the kind's own (a CRD version's
    # selectableFields, ``spec.color`` for jsonPath ``.spec.color``)
    selectable_fields: tuple[str, ...] = ()
    _compiled: list[Node] = field(default_factory=list, compare=False, repr=False)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def storage(self) -> StorageKey:
        return (self.group if self.storage_group is None else self.storage_group, self.plural)

    @property
    def kind_list(self) -> str:
        return self.list_kind or f"{self.kind}List"

    @property
    def gv(self) -> tuple[str, str]:
        return (self.group, self.version)

    def node(self) -> Node | None:
        """The compiled schema, compiled once per ResourceType (so once per CRD version)."""
        if self.schema is None:
            return None
        if not self._compiled:
            self._compiled.append(compile_schema(self.schema))
        return self._compiled[0]


def types_from_crd(crd: dict[str, Any]) -> list[ResourceType]:
    """The served resource types a CRD defines (one per served version)."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    group = spec.get("group", "")
    versions = [v for v in spec.get("versions") or () if isinstance(v, dict)]
    storage = next((v["name"] for v in versions if v.get("storage")), None)
    if storage is None and versions:
        storage = versions[0].get("name", "")
    out = []
    for v in versions:
        if not v.get("served", True):
            continue
        schema = ((v.get("schema") or {}).get("openAPIV3Schema")) or None
        if spec.get("preserveUnknownFields") and schema is not None:
            schema = {**schema, "x-kubernetes-preserve-unknown-fields": True}
        out.append(
            ResourceType(
                group=group,
                version=v["name"],
                plural=names.get("plural", ""),
                singular=names.get("singular") or names.get("kind", "").lower(),
                kind=names.get("kind", ""),
                list_kind=names.get("listKind") or f"{names.get('kind', '')}List",
                namespaced=spec.get("scope", "Namespaced") == "Namespaced",
                short_names=tuple(names.get("shortNames") or ()),
                categories=tuple(names.get("categories") or ()),
                status_subresource="status" in (v.get("subresources") or {}),
                printer_columns=tuple(v.get("additionalPrinterColumns") or ()),
                schema=schema,
                builtin=False,
                storage_version=storage or v["name"],
                selectable_fields=tuple(
                    str(f.get("jsonPath", "")).lstrip(".")
                    for f in v.get("selectableFields") or ()
                    if isinstance(f, dict) and f.get("jsonPath")
                ),
            )
        )
    return out


class Registry:
    """Served resource types, looked up by group-version and plural (or kind)."""

    def __init__(self, builtins: Iterable[ResourceType]) -> None:
        self._builtin = list(builtins)
        self._crds: dict[str, list[ResourceType]] = {}  # CRD name -> its types
        self._rebuild()

    def _rebuild(self) -> None:
        self._by_path: dict[tuple[str, str, str], ResourceType] = {}
        self._by_kind: dict[tuple[str, str, str], ResourceType] = {}
        for rt in self.all():
            self._by_path[(rt.group, rt.version, rt.plural)] = rt
            self._by_kind[(rt.group, rt.version, rt.kind)] = rt

    def all(self) -> list[ResourceType]:
        out = list(self._builtin)
        for types in self._crds.values():
            out.extend(types)
        return out

    def set_crd(self, name: str, types: list[ResourceType]) -> None:
        self._crds[name] = types
        self._rebuild()

    def remove_crd(self, name: str) -> list[ResourceType]:
        gone = self._crds.pop(name, [])
        self._rebuild()
        return gone

    def crd_types(self, name: str) -> list[ResourceType]:
        return list(self._crds.get(name, ()))

    def get(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self._by_path.get((group, version, plural))

    def by_kind(self, group: str, version: str, kind: str) -> ResourceType | None:
        return self._by_kind.get((group, version, kind))

    def group_versions(self) -> dict[str, list[str]]:
        """Group -> served versions, preferred (storage) version first."""
        out: dict[str, list[str]] = {}
        for rt in self.all():
            versions = out.setdefault(rt.group, [])
            if rt.version not in versions:
                if rt.version == rt.storage_version or not rt.storage_version:
                    versions.insert(0, rt.version)
                else:
                    versions.append(rt.version)
        return out

    def in_group_version(self, group: str, version: str) -> list[ResourceType]:
        return [rt for rt in self.all() if rt.group == group and rt.version == version]

    def storage_users(self, storage: StorageKey) -> list[ResourceType]:
        return [rt for rt in self.all() if rt.storage == storage]
