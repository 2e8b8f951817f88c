"""Object lifecycle: what create, update, patch, apply and delete do to an object.

Mirrors the generic registry (k8s.io/apiserver/pkg/registry/generic/registry/store.go) and the
custom-resource strategy: system metadata (uid, creationTimestamp, generation,
resourceVersion), optimistic concurrency, the status subresource (status-only writes; main
writes keep the stored status; ``metadata.generation`` moves only when something other than
metadata and status changes), finalizers (``deletionTimestamp`` first, with a new
``generation``, removal when the last finalizer goes), ``dryRun``, ``fieldValidation`` (Strict, Warn, Ignore) with pruning of
unknown fields, and the 256 KiB limit on annotations.

Every write records field ownership in ``metadata.managedFields`` (see ``managed``): server-side
apply merges the applied configuration onto the live object, removes the fields its manager
stopped applying (unless another manager owns them) and answers 409 Conflict when it would
change a field another manager owns (``force=true`` takes it over); other writes give their
manager (``fieldManager``, else the User-Agent's product) the fields they changed. Owner
references are stored but there is no garbage collector: ``propagationPolicy`` is accepted and
has no effect.
"""

from __future__ import annotations

import base64
import copy
import json
import random
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from autoscaler.apiserver import codec, configdata, kinds, managed
from autoscaler.apiserver.errors import (
    APIError,
    Cause,
    already_exists,
    bad_request,
    conflict,
    expired,
    invalid,
    method_not_allowed,
    not_found,
    qualified,
)
from autoscaler.apiserver.patch import PatchError, json_patch, merge_patch, strategic_merge
from autoscaler.apiserver.registry import Registry, ResourceType, types_from_crd
from autoscaler.apiserver.schema import check
from autoscaler.apiserver.selectors import Predicate
from autoscaler.apiserver.store import Expired, Store
from autoscaler.apiserver.tables import utc_now_text
from autoscaler.clock import Clock

ANNOTATIONS_LIMIT_BYTES = 262_144
CRD_STORAGE = (kinds.CRD_GROUP, "customresourcedefinitions")
NS_STORAGE = ("", "namespaces")
# What holds a deleted CRD while its custom resources are deleted (upstream's name): removed when
# the last is gone; a client that removes it first drops the CRD and its custom resources.
CRD_CLEANUP_FINALIZER = "customresourcecleanup.apiextensions.k8s.io"
POD_STORAGE = ("", "pods")
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
# Built-in kinds whose strategy keeps ``metadata.generation`` (k8s.io/kubernetes/pkg/registry:
# PrepareForCreate sets it to 1 for these); every custom resource has one too. The others
# (ConfigMap, Namespace, Pod, Event, Lease, Service, ServiceAccount, RBAC) never carry one.
GENERATION_STORAGES = {
    CRD_STORAGE,
    ("apps", "deployments"),
    ("policy", "poddisruptionbudgets"),
}

_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_QNAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"


@dataclass(frozen=True)
class WriteOptions:
    """Query parameters every write takes."""

    dry_run: bool = False
    field_validation: str = "Warn"  # Strict, Warn, Ignore
    field_manager: str = ""
    force: bool = False
    user_agent: str = ""  # names the manager of a write without fieldManager
    track: bool = True  # False: the write records no field ownership (the server's own)


@dataclass
class Written:
    """The answer to a write: the object as the client sees it, warnings and HTTP code."""

    obj: dict[str, Any]
    code: int = 200
    warnings: list[str] = field(default_factory=list)


def _meta(obj: dict[str, Any]) -> dict[str, Any]:
    m = obj.get("metadata")
    if not isinstance(m, dict):
        m = {}
        obj["metadata"] = m
    return m


def _comparable(obj: dict[str, Any]) -> dict[str, Any]:
    out = dict(obj)
    m = dict(out.get("metadata") or {})
    m.pop("resourceVersion", None)
    out["metadata"] = m
    return out


def _json_kind(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int | float):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    return "object"


def _spec_part(obj: dict[str, Any], status_subresource: bool) -> dict[str, Any]:
    drop = ("metadata", "status") if status_subresource else ("metadata",)
    return {k: v for k, v in obj.items() if k not in drop}


def _scope(rt: ResourceType, subresource: str) -> str:
    """Which fields a write through ``subresource`` owns (see ``managed.field_set``)."""
    if subresource == "status":
        return "status"
    return "main" if rt.status_subresource else "all"


def _has_generation(rt: ResourceType) -> bool:
    return not rt.builtin or rt.storage in GENERATION_STORAGES


def _update_causes(rt: ResourceType, new: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
    """What an update may not change (upstream ValidateObjectMetaUpdate and the kinds' update
    validation): no finalizer added once deletion began; ConfigMap and Secret rules."""
    causes = []
    m, old_m = new["metadata"], old["metadata"]
    if old_m.get("deletionTimestamp"):
        added = sorted(set(m.get("finalizers") or ()) - set(old_m.get("finalizers") or ()))
        if added:
            found = ", ".join(json.dumps(f) for f in added)
            causes.append(
                Cause(
                    "metadata.finalizers",
                    "Forbidden: no new finalizers can be added if the object is being deleted, "
                    f"found new finalizers []string{{{found}}}",
                    "FieldValueForbidden",
                )
            )
    causes.extend(configdata.update_causes(rt.storage, new, old))
    return causes


class Objects:
    """The verbs on objects, over a ``Store`` and a ``Registry``; raises ``APIError``."""

    def __init__(
        self,
        store: Store,
        registry: Registry,
        clock: Clock,
        on_registry_change: Callable[[], None] = lambda: None,
    ) -> None:
        self.store = store
        self.registry = registry
        self.clock = clock
        self.on_registry_change = on_registry_change
        # Admission checks beyond the schema, by (group, kind): what a validating webhook does in a
        # cluster. Each returns the causes that make an object invalid.
        self.validators: dict[tuple[str, str], Callable[[dict[str, Any]], list[Cause]]] = {}
        self._now = (-1, "")

    # --- reads ------------------------------------------------------------------------------

    def view(self, rt: ResourceType, stored: dict[str, Any]) -> dict[str, Any]:
        """A stored object as read through ``rt``."""
        return kinds.from_storage(rt, stored)

    def get(self, rt: ResourceType, ns: str, name: str) -> dict[str, Any]:
        obj = self.store.get(rt.storage, ns, name)
        if obj is None:
            raise not_found(rt.plural, rt.group, name)
        return self.view(rt, obj)

    def list_objects(
        self,
        rt: ResourceType,
        ns: str | None,
        match: Predicate,
        limit: int = 0,
        cont: str = "",
        count_remaining: bool = True,
        at: int = 0,
    ) -> tuple[list[dict[str, Any]], str, str, int | None]:
        """Matching objects in (namespace, name) order: items, rv, continue token, remaining.

        ``at``: the list as of that resourceVersion (``resourceVersionMatch=Exact``), 410 Expired
        once the history no longer covers it.

        Every page of a paged list is read from the snapshot of its first page: a continue
        token carries that resourceVersion, later pages undo the changes made since (objects
        created later are left out, objects changed later appear as they were) and answer with
        it as their list resourceVersion; 410 Expired once the history no longer covers it."""
        start: tuple[str, str] | None = None
        list_rv = self.store.rv
        too_old = expired(
            "The provided continue parameter is too old to display a consistent list "
            "result. You can start a new list without the continue parameter."
        )
        source: Iterator[tuple[tuple[str, str], dict[str, Any]]]
        if cont:
            try:
                token = json.loads(base64.urlsafe_b64decode(cont.encode()))
                start = (str(token["start"][0]), str(token["start"][1]))
                list_rv = int(token["rv"])
            except (ValueError, KeyError, TypeError, IndexError) as exc:
                raise bad_request(f"invalid continue token {cont!r}") from exc
            if list_rv < self.store.compacted or list_rv > self.store.rv:
                raise too_old
            try:
                source = iter(list(self.store.items_at(rt.storage, list_rv, ns)))
            except Expired as exc:
                raise too_old from exc
        elif at:
            list_rv = at
            try:
                source = iter(list(self.store.items_at(rt.storage, at, ns)))
            except Expired as exc:
                raise expired(f"too old resource version: {at} ({exc.oldest})") from exc
        else:
            source = ((key, obj) for key, obj, _text in self.store.items(rt.storage, ns))
        items: list[dict[str, Any]] = []
        last: tuple[str, str] | None = None
        remaining = 0
        for key, obj in source:
            if start is not None and key <= start:
                continue
            if not match(obj):
                continue
            if limit and len(items) >= limit:
                remaining += 1
                if not count_remaining:
                    break
                continue
            items.append(self.view(rt, obj))
            last = key
        token = ""
        if limit and remaining and last is not None:
            raw = json.dumps({"rv": list_rv, "start": list(last)}).encode()
            token = base64.urlsafe_b64encode(raw).decode()
        return items, str(list_rv), token, (remaining if token and count_remaining else None)

    # --- validation -------------------------------------------------------------------------

    def _validate(
        self,
        rt: ResourceType,
        obj: dict[str, Any],
        opts: WriteOptions,
        warnings: list[str],
        *,
        admit: bool = True,
    ) -> dict[str, Any]:
        """Schema check, pruning, defaulting and metadata rules; the cleaned object.

        ``admit``: also the kind's admission validator, which (like a validating webhook
        registered for the resource, not its ``/status``) does not see status writes."""
        name = str(_meta(obj).get("name") or _meta(obj).get("generateName") or "")
        node = rt.node()
        if node is not None:
            outcome = check(node, obj, prune=True, defaults=True)
            if outcome.unknown and opts.field_validation == "Strict":
                fields = ", ".join(f'unknown field "{u}"' for u in outcome.unknown)
                raise bad_request(f"strict decoding error: {fields}")
            if outcome.unknown and opts.field_validation == "Warn":
                warnings.extend(f'unknown field "{u}"' for u in outcome.unknown)
            if outcome.errors:
                raise invalid(rt.kind, rt.group, name, outcome.errors)
            obj = outcome.value
        if rt.storage == configdata.SECRET_STORAGE:
            configdata.fold_string_data(obj)
        causes = self._metadata_causes(rt, _meta(obj))
        causes.extend(configdata.causes(rt.storage, obj))
        if rt.storage == CRD_STORAGE:
            causes.extend(self._crd_causes(obj))
        validator = self.validators.get((rt.group, rt.kind)) if admit else None
        if validator is not None:
            causes.extend(validator(obj))
        if causes:
            raise invalid(rt.kind, rt.group, name, causes)
        return obj

    def _metadata_causes(self, rt: ResourceType, meta: dict[str, Any]) -> list[Cause]:
        causes = []
        name = meta.get("name", "")
        if name:
            if rt.storage == NS_STORAGE:
                ok = len(name) <= 63 and _LABEL.match(name) is not None
                what = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character"
            else:
                ok = len(name) <= 253 and _SUBDOMAIN.match(name) is not None
                what = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"
            if not ok:
                causes.append(Cause("metadata.name", f'Invalid value: "{name}": {what}'))
        for key, value in (meta.get("labels") or {}).items():
            prefix, _, base = key.rpartition("/")
            if (
                not base
                or len(base) > 63
                or not _QNAME.match(base)
                or (prefix and (len(prefix) > 253 or not _SUBDOMAIN.match(prefix)))
            ):
                causes.append(
                    Cause(
                        "metadata.labels",
                        f"Invalid value: \"{key}\": name part must consist of alphanumeric characters, '-', '_' or '.'",
                    )
                )
            if value and (len(value) > 63 or not _QNAME.match(value)):
                causes.append(
                    Cause(
                        "metadata.labels",
                        f"Invalid value: \"{value}\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', at most 63 characters",
                    )
                )
        annotations = meta.get("annotations") or {}
        size = sum(len(k.encode()) + len(str(v).encode()) for k, v in annotations.items())
        if size > ANNOTATIONS_LIMIT_BYTES:
            causes.append(
                Cause(
                    "metadata.annotations",
                    f"Too long: must have at most {ANNOTATIONS_LIMIT_BYTES} bytes",
                    "FieldValueTooLong",
                )
            )
        return causes

    def _crd_causes(self, crd: dict[str, Any]) -> list[Cause]:
        spec = crd.get("spec") or {}
        names = spec.get("names") or {}
        causes = []
        want = f"{names.get('plural', '')}.{spec.get('group', '')}"
        if _meta(crd).get("name") != want:
            causes.append(
                Cause(
                    "metadata.name",
                    f'Invalid value: "{_meta(crd).get("name")}": must be spec.names.plural+"."+spec.group',
                )
            )
        if not spec.get("group") or "." not in spec.get("group", ""):
            causes.append(
                Cause(
                    "spec.group",
                    f'Invalid value: "{spec.get("group", "")}": should be a domain with at least one dot',
                )
            )
        storage = [v for v in spec.get("versions") or () if v.get("storage")]
        if len(storage) != 1:
            causes.append(
                Cause(
                    "spec.versions",
                    "Invalid value: must have exactly one version marked as storage version",
                )
            )
        plural = names.get("plural", "")
        if plural and plural != plural.lower():
            causes.append(
                Cause("spec.names.plural", f'Invalid value: "{plural}": must be lowercase')
            )
        for owner in self.registry.all():
            if owner.builtin and owner.group == spec.get("group") and owner.plural == plural:
                causes.append(
                    Cause("spec.names.plural", f'Invalid value: "{plural}": is already in use')
                )
        return causes

    # --- writes -------------------------------------------------------------------------------

    def _check_kind(self, rt: ResourceType, obj: Any) -> dict[str, Any]:
        if not isinstance(obj, dict):
            raise bad_request(f"the body must be a JSON object describing a {rt.kind}")
        api_version = obj.get("apiVersion")
        kind = obj.get("kind")
        if kind is not None and kind != rt.kind:
            raise bad_request(
                f"the kind in the body ({kind}) does not match the kind of the resource ({rt.kind})"
            )
        if api_version is not None and api_version != rt.api_version:
            raise bad_request(
                f"the API version in the data ({api_version}) does not match the expected API "
                f"version ({rt.api_version})"
            )
        obj["apiVersion"] = rt.api_version
        obj["kind"] = rt.kind
        return obj

    def _check_namespace(self, rt: ResourceType, ns: str, obj: dict[str, Any]) -> None:
        meta = _meta(obj)
        if rt.namespaced:
            body_ns = meta.get("namespace")
            if body_ns and body_ns != ns:
                raise bad_request(
                    "the namespace of the provided object does not match the namespace sent on "
                    f"the request ({body_ns!r} vs {ns!r})"
                )
            meta["namespace"] = ns
        else:
            meta.pop("namespace", None)

    def _require_namespace(self, rt: ResourceType, ns: str) -> None:
        if not rt.namespaced:
            return
        namespace = self.store.get(NS_STORAGE, "", ns)
        if namespace is None:
            raise not_found("namespaces", "", ns)
        if _meta(namespace).get("deletionTimestamp"):
            raise APIError(
                403,
                "Forbidden",
                f"{qualified(rt.plural, rt.group)} is forbidden: unable to create new content in "
                f"namespace {ns} because it is being terminated",
                kind=rt.plural,
                group=rt.group,
            )

    def create(
        self,
        rt: ResourceType,
        ns: str,
        body: Any,
        opts: WriteOptions,
        *,
        url_name: str = "",
        applied: bool = False,
    ) -> Written:
        obj = self._check_kind(rt, copy.deepcopy(body))
        self._check_namespace(rt, ns, obj)
        meta = _meta(obj)
        if url_name and meta.get("name") and meta["name"] != url_name:
            raise bad_request(
                f"the name of the object ({meta['name']}) does not match the name on the URL "
                f"({url_name})"
            )
        if url_name:
            meta["name"] = url_name
        if not meta.get("name"):
            if not meta.get("generateName"):
                raise invalid(
                    rt.kind,
                    rt.group,
                    "",
                    [
                        Cause(
                            "metadata.name",
                            "Required value: name or generateName is required",
                            "FieldValueRequired",
                        )
                    ],
                )
            meta["name"] = meta["generateName"] + "".join(
                random.choice(_NAME_CHARS) for _ in range(5)
            )
        self._require_namespace(rt, ns)
        crd = self._terminating_crd(rt)
        if crd is not None:
            raise method_not_allowed(
                "create not allowed while custom resource definition is terminating"
            )
        if rt.status_subresource and rt.storage != NS_STORAGE:
            obj.pop("status", None)
        warnings: list[str] = []
        applied_config = copy.deepcopy(obj) if applied else None
        obj = self._validate(rt, obj, opts, warnings)
        self._record(rt, None, obj, opts, "", applied_config)
        stored = kinds.to_storage(rt, obj)
        ns_key = ns if rt.namespaced else ""
        if self.store.get(rt.storage, ns_key, stored["metadata"]["name"]) is not None:
            raise already_exists(rt.plural, rt.group, stored["metadata"]["name"])
        m = stored["metadata"]
        for k in ("resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"):
            m.pop(k, None)
        m["uid"] = str(uuid.uuid4())
        m["creationTimestamp"] = utc_now_text(self.clock.wall())
        if _has_generation(rt):
            m["generation"] = 1
        else:
            m.pop("generation", None)
        self._server_status(rt, stored, None)
        if opts.dry_run:
            return Written(self.view(rt, stored), 201, warnings)
        self.store.put(rt.storage, stored, created=True)
        self._after_write(rt, stored, None)
        return Written(self.view(rt, stored), 201, warnings)

    def _manager(
        self, rt: ResourceType, opts: WriteOptions, operation: str, sub: str
    ) -> managed.Entry:
        name = managed.manager_name(opts.field_manager, opts.user_agent)
        second = int(self.clock.wall())
        if self._now[0] != second:  # one formatting a second, not one a write
            self._now = (second, utc_now_text(second))
        return managed.Entry(name, operation, rt.api_version, self._now[1], frozenset(), sub)

    def _record(
        self,
        rt: ResourceType,
        old: dict[str, Any] | None,
        new: dict[str, Any],
        opts: WriteOptions,
        subresource: str,
        applied: dict[str, Any] | None = None,
    ) -> None:
        """Set ``new``'s managedFields for a write from ``old`` (None: a create; ``applied``:
        the configuration a create by apply applied). managedFields the client changed are kept
        as given (``[{}]`` clears them), as upstream does."""
        meta = _meta(new)
        incoming = meta.get("managedFields")
        previous = _meta(old).get("managedFields") if old is not None else None
        if not opts.track:
            entries = managed.decode(previous)
        elif incoming not in (None, []) and not managed.same(incoming, previous):
            entries = [] if incoming == [{}] else managed.decode(incoming)
        elif applied is not None:
            me = self._manager(rt, opts, "Apply", subresource)
            scope = _scope(rt, subresource)
            me.fields = managed.field_set(applied, rt.schema, scope)
            entries = [me]
        else:
            me = self._manager(rt, opts, "Update", subresource)
            entries = managed.record_update(
                managed.decode(previous), old, new, rt.schema, _scope(rt, subresource), me
            )
        encoded = managed.encode(entries)
        if encoded:
            meta["managedFields"] = encoded
        else:
            meta.pop("managedFields", None)

    def _server_status(
        self, rt: ResourceType, obj: dict[str, Any], old: dict[str, Any] | None
    ) -> None:
        """What the server itself sets: a Namespace's phase and its ``kubernetes.io/metadata.name``
        label (its name, put back on every write as upstream's namespace strategy does), CRD
        conditions, a new Pod's phase (``Pending``, as upstream's pod strategy creates one)."""
        if rt.storage == POD_STORAGE and old is None:
            obj.setdefault("status", {}).setdefault("phase", "Pending")
        elif rt.storage == NS_STORAGE:
            labels = _meta(obj).get("labels")
            if not isinstance(labels, dict):
                labels = _meta(obj)["labels"] = {}
            labels[NAMESPACE_NAME_LABEL] = _meta(obj)["name"]
            status = obj.setdefault("status", {})
            status.setdefault("phase", "Active")
        elif rt.storage == CRD_STORAGE:
            now = utc_now_text(self.clock.wall())
            spec = obj.get("spec") or {}
            status = obj.setdefault("status", {})
            prior = {c.get("type"): c for c in status.get("conditions") or ()}
            conds = []
            for typ, reason, msg in (
                ("NamesAccepted", "NoConflicts", "no conflicts found"),
                ("Established", "InitialNamesAccepted", "the initial names have been accepted"),
            ):
                before = prior.get(typ) or {}
                since = before.get("lastTransitionTime") if before.get("status") == "True" else None
                conds.append(
                    {
                        "type": typ,
                        "status": "True",
                        "lastTransitionTime": since or now,
                        "reason": reason,
                        "message": msg,
                    }
                )
            if _meta(obj).get("deletionTimestamp"):  # its custom resources are being deleted
                conds.append(
                    {
                        "type": "Terminating",
                        "status": "True",
                        "lastTransitionTime": (prior.get("Terminating") or {}).get(
                            "lastTransitionTime"
                        )
                        or now,
                        "reason": "InstanceDeletionInProgress",
                        "message": "CustomResource deletion is in progress",
                    }
                )
            status["conditions"] = conds
            status["acceptedNames"] = copy.deepcopy(spec.get("names") or {})
            stored_versions = list(status.get("storedVersions") or ())
            for v in spec.get("versions") or ():
                if v.get("storage") and v.get("name") not in stored_versions:
                    stored_versions.append(v["name"])
            status["storedVersions"] = stored_versions

    def _after_write(
        self, rt: ResourceType, obj: dict[str, Any], old: dict[str, Any] | None
    ) -> None:
        if rt.storage == CRD_STORAGE and (old is None or old.get("spec") != obj.get("spec")):
            name = obj["metadata"]["name"]
            self.registry.set_crd(name, types_from_crd(obj))
            self.on_registry_change()

    def update(
        self,
        rt: ResourceType,
        ns: str,
        name: str,
        body: Any,
        opts: WriteOptions,
        *,
        subresource: str = "",
    ) -> Written:
        obj = self._check_kind(rt, copy.deepcopy(body))
        self._check_namespace(rt, ns, obj)
        meta = _meta(obj)
        if meta.get("name") and meta["name"] != name:
            raise bad_request(
                f"the name of the object ({meta['name']}) does not match the name on the URL ({name})"
            )
        meta["name"] = name
        ns_key = ns if rt.namespaced else ""
        current = self.store.get(rt.storage, ns_key, name)
        if current is None:
            raise not_found(rt.plural, rt.group, name)
        uid, cur_uid = meta.get("uid"), current["metadata"].get("uid")
        if uid and uid != cur_uid:  # the body's uid is a precondition, as upstream's
            raise conflict(
                rt.plural,
                rt.group,
                name,
                f"Precondition failed: UID in precondition: {uid}, UID in object meta: {cur_uid}",
            )
        rv = meta.get("resourceVersion")
        cur_rv = current["metadata"]["resourceVersion"]
        if rv and rv != cur_rv:
            raise conflict(
                rt.plural,
                rt.group,
                name,
                "the object has been modified; please apply your changes to the latest version "
                f"and try again (resourceVersion {rv} is stale, the current one is {cur_rv})",
            )
        if not rv and not rt.builtin:
            raise invalid(
                rt.kind,
                rt.group,
                name,
                [
                    Cause(
                        "metadata.resourceVersion",
                        "Invalid value: 0: must be specified for an update",
                    )
                ],
            )
        return self._write_update(rt, current, obj, opts, subresource)

    def _write_update(
        self,
        rt: ResourceType,
        current: dict[str, Any],
        obj: dict[str, Any],
        opts: WriteOptions,
        subresource: str,
        managed_fields: list[dict[str, Any]] | None = None,
    ) -> Written:
        """Store ``obj`` over ``current``; ``managed_fields``: those an apply computed (else the
        write's own are recorded)."""
        warnings: list[str] = []
        old_view = self.view(rt, current)
        if subresource == "status":
            merged = copy.deepcopy(old_view)
            if "status" in obj:
                merged["status"] = obj["status"]
            else:
                merged.pop("status", None)
            obj = merged
        elif rt.status_subresource:
            if "status" in old_view:
                obj["status"] = copy.deepcopy(old_view["status"])
            else:
                obj.pop("status", None)
        obj = self._validate(rt, obj, opts, warnings, admit=subresource != "status")
        if managed_fields is None:
            self._record(rt, old_view, obj, opts, subresource)
        elif managed_fields:
            _meta(obj)["managedFields"] = managed_fields
        else:
            _meta(obj).pop("managedFields", None)
        stored = kinds.to_storage(rt, obj)
        m, old_m = stored["metadata"], current["metadata"]
        if m.get("uid") and m["uid"] != old_m.get("uid"):  # a patch or apply changing it
            raise invalid(
                rt.kind,
                rt.group,
                m["name"],
                [Cause("metadata.uid", f'Invalid value: "{m["uid"]}": field is immutable')],
            )
        for k in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds"):
            if k in old_m:
                m[k] = old_m[k]
            else:
                m.pop(k, None)
        m["namespace"] = old_m.get("namespace", "")
        if not m["namespace"]:
            m.pop("namespace")
        m["resourceVersion"] = old_m.get("resourceVersion")
        if _has_generation(rt):
            generation = int(old_m.get("generation", 1) or 1)
            if _spec_part(stored, rt.status_subresource) != _spec_part(
                current, rt.status_subresource
            ):
                generation += 1
            m["generation"] = generation
        else:
            m.pop("generation", None)
        causes = _update_causes(rt, stored, current)
        if causes:
            raise invalid(rt.kind, rt.group, m["name"], causes)
        self._server_status(rt, stored, current)
        if _comparable(stored) == _comparable(current):
            return Written(self.view(rt, current), 200, warnings)  # no-op: no new version
        if opts.dry_run:
            return Written(self.view(rt, stored), 200, warnings)
        if (
            m.get("deletionTimestamp")
            and not m.get("finalizers")
            # a CRD's custom resources hold it through the cleanup finalizer alone
            and (rt.storage == CRD_STORAGE or not self._has_content(rt, m["name"]))
        ):
            self._remove(rt, stored["metadata"].get("namespace", ""), m["name"])
            return Written(self.view(rt, stored), 200, warnings)
        self.store.put(rt.storage, stored, created=False)
        self._after_write(rt, stored, current)
        return Written(self.view(rt, stored), 200, warnings)

    def patch(
        self,
        rt: ResourceType,
        ns: str,
        name: str,
        content_type: str,
        raw: bytes,
        opts: WriteOptions,
        *,
        subresource: str = "",
    ) -> Written:
        mt = codec.media_type(content_type)
        allowed = [codec.JSON_PATCH, codec.MERGE_PATCH, codec.APPLY_PATCH]
        if rt.builtin:
            allowed.insert(2, codec.STRATEGIC_PATCH)
        if mt not in allowed:
            raise APIError(
                415,
                "UnsupportedMediaType",
                f"the body of the request was in an unknown format - accepted media types "
                f"include: {', '.join(allowed)}",
            )
        ns_key = ns if rt.namespaced else ""
        if mt == codec.APPLY_PATCH:
            return self.apply(rt, ns, name, raw, opts, subresource=subresource)
        patch_doc = codec.decode_body(mt, raw, (mt,))
        current = self.store.get(rt.storage, ns_key, name)
        if current is None:
            raise not_found(rt.plural, rt.group, name)
        base = self.view(rt, current)
        # A body of the wrong JSON type is a bad request (400), as upstream's decoding of it
        if isinstance(patch_doc, list) != (mt == codec.JSON_PATCH) or not isinstance(
            patch_doc, list | dict
        ):
            go_type = "jsonpatch.Patch" if mt == codec.JSON_PATCH else "map[string]interface {}"
            raise bad_request(
                f"json: cannot unmarshal {_json_kind(patch_doc)} into Go value of type {go_type}"
            )
        try:
            if isinstance(patch_doc, list):
                result = json_patch(base, patch_doc)
            elif mt == codec.MERGE_PATCH:
                result = merge_patch(base, patch_doc)
            else:
                result = strategic_merge(base, patch_doc, rt.schema)
        except PatchError as exc:
            raise APIError(
                422,
                "Invalid",
                f"the server rejected our request due to an error in our request: {exc}",
                name,
                rt.group,
                rt.kind,
            ) from exc
        if not isinstance(result, dict):
            raise bad_request("the patched object is not a JSON object")
        want_rv = _meta(result).get("resourceVersion")
        cur_rv = current["metadata"]["resourceVersion"]
        if want_rv and want_rv != cur_rv:
            raise conflict(
                rt.plural,
                rt.group,
                name,
                "the object has been modified; please apply your changes to the latest version "
                f"and try again (resourceVersion {want_rv} is stale, the current one is {cur_rv})",
            )
        result = self._check_kind(rt, result)
        self._check_namespace(rt, ns, result)
        _meta(result)["name"] = name
        return self._write_update(rt, current, result, opts, subresource)

    def apply(
        self,
        rt: ResourceType,
        ns: str,
        name: str,
        raw: bytes,
        opts: WriteOptions,
        *,
        subresource: str = "",
    ) -> Written:
        """Server-side apply with field ownership (see the module docstring and ``managed``)."""
        if not opts.field_manager:
            raise bad_request(
                "PATCH with application/apply-patch+yaml requires fieldManager to be set"
            )
        applied = codec.decode_body(codec.APPLY_PATCH, raw, (codec.APPLY_PATCH,))
        if not isinstance(applied, dict):
            raise bad_request("an applied configuration must be an object")
        if not applied.get("apiVersion") or not applied.get("kind"):
            raise bad_request("an applied configuration must set apiVersion and kind")
        applied = self._check_kind(rt, applied)
        meta = _meta(applied)
        if meta.get("name") and meta["name"] != name:
            raise bad_request(
                f"the name of the object ({meta['name']}) does not match the name on the URL ({name})"
            )
        if meta.get("managedFields"):
            raise bad_request("metadata.managedFields must be nil")
        meta.pop("managedFields", None)
        ns_key = ns if rt.namespaced else ""
        current = self.store.get(rt.storage, ns_key, name)
        if current is None:
            if subresource:
                raise not_found(rt.plural, rt.group, name)
            return self.create(rt, ns, applied, opts, url_name=name, applied=True)
        want_rv = meta.get("resourceVersion")
        if want_rv and want_rv != current["metadata"]["resourceVersion"]:
            raise conflict(
                rt.plural,
                rt.group,
                name,
                f"the object has been modified; resourceVersion {want_rv} is stale",
            )
        meta.pop("resourceVersion", None)
        self._check_namespace(rt, ns, applied)
        meta["name"] = name
        base = self.view(rt, current)
        me = self._manager(rt, opts, "Apply", subresource)
        outcome = managed.apply(
            managed.decode(_meta(base).get("managedFields")),
            base,
            applied,
            rt.schema,
            _scope(rt, subresource),
            me,
            opts.force,
        )
        if outcome.conflicts:
            raise APIError(
                409,
                "Conflict",
                managed.conflict_message(outcome.conflicts),
                causes=[
                    Cause(
                        managed.path_text(c.path),
                        f"conflict with {c.entry.describe()}",
                        "FieldManagerConflict",
                    )
                    for c in outcome.conflicts
                ],
            )
        merged = outcome.obj
        _meta(merged)["resourceVersion"] = current["metadata"]["resourceVersion"]
        return self._write_update(
            rt, current, merged, opts, subresource, managed.encode(outcome.entries)
        )

    # --- deletes ------------------------------------------------------------------------------

    def delete(
        self, rt: ResourceType, ns: str, name: str, options: dict[str, Any], dry_run: bool
    ) -> Written:
        ns_key = ns if rt.namespaced else ""
        current = self.store.get(rt.storage, ns_key, name)
        if current is None:
            raise not_found(rt.plural, rt.group, name)
        pre = options.get("preconditions") or {}
        m = current["metadata"]
        if pre.get("uid") and pre["uid"] != m.get("uid"):
            raise conflict(
                rt.plural,
                rt.group,
                name,
                f"Precondition failed: UID in precondition: {pre['uid']}, UID in object meta: {m.get('uid')}",
            )
        if pre.get("resourceVersion") and pre["resourceVersion"] != m.get("resourceVersion"):
            raise conflict(
                rt.plural,
                rt.group,
                name,
                f"Precondition failed: ResourceVersion in precondition: {pre['resourceVersion']}, ResourceVersion in object meta: {m.get('resourceVersion')}",
            )
        pending = bool(m.get("finalizers")) or self._has_content(rt, name)
        if pending:
            if m.get("deletionTimestamp"):
                return Written(self.view(rt, current), 200)
            obj = json.loads(json.dumps(current))
            obj["metadata"]["deletionTimestamp"] = utc_now_text(self.clock.wall())
            obj["metadata"]["deletionGracePeriodSeconds"] = 0
            if _has_generation(rt):  # as upstream's markAsDeleting, so controllers notice
                obj["metadata"]["generation"] = int(m.get("generation", 1) or 1) + 1
            if rt.storage == NS_STORAGE:
                obj.setdefault("status", {})["phase"] = "Terminating"
            if rt.storage == CRD_STORAGE:
                self._server_status(rt, obj, current)  # the Terminating condition
                if self._has_content(rt, name):
                    fins = obj["metadata"].setdefault("finalizers", [])
                    if CRD_CLEANUP_FINALIZER not in fins:
                        fins.append(CRD_CLEANUP_FINALIZER)
            if dry_run:
                return Written(self.view(rt, obj), 200)
            self.store.put(rt.storage, obj, created=False)
            if rt.storage == NS_STORAGE:
                self._empty_namespace(name)
            elif rt.storage == CRD_STORAGE:
                # as upstream's custom resource cleanup: each one deleted as a client would
                # (those with finalizers wait for them); the CRD goes with the last one
                self._empty_crd(name)
            if not obj["metadata"].get("finalizers") and not self._has_content(rt, name):
                self._remove(rt, "", name)
            return Written(self.view(rt, obj), 200)
        if dry_run:
            return Written(self._deleted_answer(rt, current), 200)
        self._remove(rt, ns_key, name)
        return Written(self._deleted_answer(rt, current), 200)

    def _deleted_answer(self, rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
        """What a DELETE that removed ``obj`` answers: the object for the kinds whose storage
        returns it (a Pod), else a Status naming it (a ConfigMap, and every custom resource:
        their storage does not return the object either)."""
        if rt.returns_deleted_object:
            return self.view(rt, obj)
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "details": {
                "name": obj["metadata"]["name"],
                "group": rt.group,
                "kind": rt.plural,
                "uid": obj["metadata"].get("uid", ""),
            },
        }

    def _remove(self, rt: ResourceType, ns: str, name: str) -> None:
        ch = self.store.delete(rt.storage, ns, name)
        if ch is None:
            return
        if rt.storage == CRD_STORAGE:
            self._crd_gone(name, ch.obj)
        crd = self._terminating_crd(rt)
        if crd is not None and not self._crd_has_content(_meta(crd)["name"]):
            self._cleaned_up(crd)
        if ns:
            parent = self.store.get(NS_STORAGE, "", ns)
            if (
                parent is not None
                and _meta(parent).get("deletionTimestamp")
                and not self._namespace_has_content(ns)
                and not _meta(parent).get("finalizers")
            ):
                self.store.delete(NS_STORAGE, "", ns)

    def _crd_gone(self, name: str, crd: dict[str, Any]) -> None:
        types = self.registry.remove_crd(name)
        self.on_registry_change()
        for storage in {t.storage for t in types}:
            if self.registry.storage_users(storage):
                continue
            for (ns, obj_name), _obj, _text in list(self.store.items(storage)):
                self.store.delete(storage, ns, obj_name)

    def _cleaned_up(self, crd: dict[str, Any]) -> None:
        """The last custom resource of the terminating ``crd`` is gone: its cleanup finalizer
        goes, and the CRD with it unless other finalizers hold it."""
        crd_rt = self.registry.get(kinds.CRD_GROUP, "v1", "customresourcedefinitions")
        if crd_rt is None:
            return
        fins = [f for f in _meta(crd).get("finalizers") or [] if f != CRD_CLEANUP_FINALIZER]
        if fins:
            if len(fins) != len(_meta(crd).get("finalizers") or []):
                done = copy.deepcopy(crd)
                done["metadata"]["finalizers"] = fins
                self.store.put(CRD_STORAGE, done, created=False)
            return
        self._remove(crd_rt, "", _meta(crd)["name"])

    def _terminating_crd(self, rt: ResourceType) -> dict[str, Any] | None:
        """The stored CRD that serves ``rt`` when it is being deleted (None for a built-in kind)."""
        if rt.builtin:
            return None
        crd = self.store.get(CRD_STORAGE, "", f"{rt.plural}.{rt.group}")
        return crd if crd is not None and _meta(crd).get("deletionTimestamp") else None

    def _has_content(self, rt: ResourceType, name: str) -> bool:
        """Whether the Namespace or CRD ``name`` still holds objects (any other kind: no)."""
        if rt.storage == NS_STORAGE:
            return self._namespace_has_content(name)
        if rt.storage == CRD_STORAGE:
            return self._crd_has_content(name)
        return False

    def _crd_has_content(self, name: str) -> bool:
        return any(self.store.count(t.storage) for t in self.registry.crd_types(name))

    def _empty_crd(self, name: str) -> None:
        """Delete each custom resource of the CRD ``name`` through the usual delete."""
        types = {t.storage: t for t in self.registry.crd_types(name)}
        for storage, rt in types.items():
            for (obj_ns, obj_name), _obj, _text in list(self.store.items(storage)):
                if self.store.get(storage, obj_ns, obj_name) is not None:
                    self.delete(rt, obj_ns, obj_name, {}, dry_run=False)

    def _namespaced_storages(self) -> set[tuple[str, str]]:
        return {rt.storage for rt in self.registry.all() if rt.namespaced}

    def _namespace_has_content(self, ns: str) -> bool:
        return any(self.store.count(s, ns) for s in self._namespaced_storages())

    def _empty_namespace(self, ns: str) -> None:
        for storage in self._namespaced_storages():
            users = self.registry.storage_users(storage)
            for (obj_ns, name), _obj, _text in list(self.store.items(storage, ns)):
                if users:
                    self.delete(users[0], obj_ns, name, {}, dry_run=False)

    def delete_collection(
        self,
        rt: ResourceType,
        ns: str | None,
        match: Predicate,
        options: dict[str, Any],
        dry_run: bool,
    ) -> list[dict[str, Any]]:
        out = []
        for (obj_ns, name), obj, _text in list(self.store.items(rt.storage, ns)):
            if match(obj):
                written = self.delete(rt, obj_ns, name, options, dry_run)
                out.append(
                    written.obj if written.obj.get("kind") != "Status" else self.view(rt, obj)
                )
        return out
