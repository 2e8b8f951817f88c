"""Field ownership for server-side apply: ``metadata.managedFields``.

As in k8s.io/apiserver's fieldmanager and sigs.k8s.io/structured-merge-diff: every write records
which fields its manager set, as one ``managedFields`` entry per (manager, operation
``Apply``/``Update``, subresource, and for Update the apiVersion) in the ``FieldsV1`` format:
``f:<name>`` for a field, ``k:{"name":"app"}`` for an item of a list keyed by its merge keys,
``v:<json>`` for an item of a set, and ``.`` for an item (or map) that is itself owned when it
has owned children.

- Apply sets the manager's fields to exactly those of the applied configuration: a field the
  manager applied before and no longer applies is removed unless another manager owns it (or
  something below it); applying a value different from the live one to a field another manager
  owns is a 409 Conflict listing the fields, unless ``force=true``, which takes them over.
- Any other write (create, update, patch, status) gives its manager the fields it added or
  changed and takes them from every other manager; fields it removed leave every manager.

Lists: a list is keyed by its ``x-kubernetes-list-map-keys`` (``x-kubernetes-list-type: map``)
or its strategic-merge key (``x-kubernetes-patch-merge-key``, for example containers by
``name``, ``ownerReferences`` by ``uid``), or is a set of scalars (``x-kubernetes-list-type:
set``, or a strategic merge list of scalars such as ``finalizers``); every other list, and a
keyed list whose items miss a key or repeat one, is atomic: owned whole, replaced whole by apply.
Maps are granular unless ``x-kubernetes-map-type: atomic``; fields the schema does not know
(``x-kubernetes-preserve-unknown-fields``) are maps and atomic lists, as upstream deduces them.
Not modelled: conversion of field paths between versions (an entry names the fields of the
version it was written through); upstream's ``before-first-apply`` manager (here the fields of
an object without ``managedFields``, such as the server's own objects or ones stored before
ownership was tracked, have no owner, so its first apply conflicts with nobody); the cap of ten
Update managers (``ancient-changes``); the last-applied-configuration annotation of
client-side apply.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any

from autoscaler.apiserver.patch import schema_of_items, sub_schema
from autoscaler.apiserver.schema import object_meta_schema

Path = tuple[str, ...]
FieldSet = frozenset[Path]

MISSING: Any = object()
_META_SCHEMA = object_meta_schema()
# ObjectMeta fields the server owns (upstream strips them from every field set)
_UNTRACKED_META = frozenset(
    {
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "selfLink",
        "managedFields",
    }
)


# --- schemas ----------------------------------------------------------------------------------


def _root_sub(schema: dict[str, Any] | None, key: str) -> dict[str, Any] | None:
    return _META_SCHEMA if key == "metadata" else sub_schema(schema, key)


def _atomic_map(schema: dict[str, Any] | None) -> bool:
    return bool(schema) and (schema or {}).get("x-kubernetes-map-type") == "atomic"


def _key_element(item: dict[str, Any], keys: tuple[str, ...]) -> str:
    return "k:" + json.dumps({k: item[k] for k in keys}, sort_keys=True, separators=(",", ":"))


def _value_element(value: Any) -> str:
    return "v:" + json.dumps(value, separators=(",", ":"))


def list_kind(schema: dict[str, Any] | None, value: list[Any]) -> tuple[str, tuple[str, ...]]:
    """``map`` (with its keys), ``set`` or ``atomic`` for the list ``value`` under ``schema``."""
    s = schema or {}
    kind = "atomic"
    keys: tuple[str, ...] = ()
    list_type = s.get("x-kubernetes-list-type")
    merge_key = s.get("x-kubernetes-patch-merge-key")
    strategies = str(s.get("x-kubernetes-patch-strategy", "")).split(",")
    if list_type == "map" and s.get("x-kubernetes-list-map-keys"):
        kind, keys = "map", tuple(str(k) for k in s["x-kubernetes-list-map-keys"])
    elif list_type == "set":
        kind = "set"
    elif list_type is None and "merge" in strategies:
        kind, keys = ("map", (str(merge_key),)) if merge_key else ("set", ())
    if kind == "map":
        seen: set[str] = set()
        for item in value:
            if not isinstance(item, dict) or any(k not in item for k in keys):
                return "atomic", ()
            ident = _key_element(item, keys)
            if ident in seen:
                return "atomic", ()
            seen.add(ident)
    elif kind == "set":
        if any(isinstance(x, dict | list) for x in value):
            return "atomic", ()
        if len({_value_element(x) for x in value}) != len(value):
            return "atomic", ()
    return kind, keys


# --- field sets -------------------------------------------------------------------------------


def _walk(value: Any, schema: dict[str, Any] | None, path: Path, out: set[Path]) -> None:
    if value is None:
        return
    if isinstance(value, dict) and not _atomic_map(schema):
        if not value:
            out.add(path)
        for k, v in value.items():
            _walk(v, sub_schema(schema, k), (*path, f"f:{k}"), out)
    elif isinstance(value, list):
        kind, keys = list_kind(schema, value)
        if kind == "map":
            item_schema = schema_of_items(schema)
            for item in value:
                p = (*path, _key_element(item, keys))
                out.add(p)
                for k, v in item.items():
                    _walk(v, sub_schema(item_schema, k), (*p, f"f:{k}"), out)
        elif kind == "set":
            for x in value:
                out.add((*path, _value_element(x)))
        else:
            out.add(path)
    else:
        out.add(path)


def _tracked(
    obj: dict[str, Any], schema: dict[str, Any] | None, scope: str
) -> dict[Path, tuple[Any, dict[str, Any] | None]]:
    """The top-level fields a write owns, by path: (value, schema). ``scope``: ``all``;
    ``main`` (a kind with a status subresource written through the main resource: no
    status); ``status`` (only status)."""
    out: dict[Path, tuple[Any, dict[str, Any] | None]] = {}
    for k, v in obj.items():
        if k in ("apiVersion", "kind"):
            continue
        if k == "metadata":
            if scope == "status" or not isinstance(v, dict):
                continue
            for mk, mv in v.items():
                if mk not in _UNTRACKED_META:
                    out[("f:metadata", f"f:{mk}")] = (mv, sub_schema(_META_SCHEMA, mk))
            continue
        if (scope == "main" and k == "status") or (scope == "status" and k != "status"):
            continue
        out[(f"f:{k}",)] = (v, sub_schema(schema, k))
    return out


def field_set(obj: dict[str, Any], schema: dict[str, Any] | None, scope: str) -> FieldSet:
    """The fields ``obj`` sets (``scope`` as for ``_tracked``)."""
    out: set[Path] = set()
    for path, (value, sub) in _tracked(obj, schema, scope).items():
        _walk(value, sub, path, out)
    return frozenset(out)


def _paths(value: Any, schema: dict[str, Any] | None, path: Path) -> set[Path]:
    out: set[Path] = set()
    _walk(value, schema, path, out)
    return out


def _diff(
    old: Any,
    new: Any,
    schema: dict[str, Any] | None,
    path: Path,
    changed: set[Path],
    removed: set[Path],
) -> None:
    """Add to ``changed`` the fields of ``new`` that ``old`` lacks or holds another value in,
    and to ``removed`` those of ``old`` that ``new`` lacks; equal subtrees are skipped."""
    if old == new:
        return
    if isinstance(old, dict) and isinstance(new, dict) and old and new and not _atomic_map(schema):
        for k, v in new.items():
            p = (*path, f"f:{k}")
            if k in old:
                _diff(old[k], v, sub_schema(schema, k), p, changed, removed)
            else:
                _walk(v, sub_schema(schema, k), p, changed)
        for k, v in old.items():
            if k not in new:
                _walk(v, sub_schema(schema, k), (*path, f"f:{k}"), removed)
        return
    if isinstance(old, list) and isinstance(new, list):
        kind, keys = list_kind(schema, new)
        if kind != "atomic" and list_kind(schema, old) == (kind, keys):
            if kind == "set":
                before = {_value_element(x) for x in old}
                after = {_value_element(x) for x in new}
                changed.update((*path, v) for v in after - before)
                removed.update((*path, v) for v in before - after)
                return
            item_schema = schema_of_items(schema)
            olds = {_key_element(x, keys): x for x in old}
            news = {_key_element(x, keys): x for x in new}
            for ke, item in news.items():
                p = (*path, ke)
                if ke in olds:
                    for k, v in item.items():
                        q = (*p, f"f:{k}")
                        if k in olds[ke]:
                            _diff(olds[ke][k], v, sub_schema(item_schema, k), q, changed, removed)
                        else:
                            _walk(v, sub_schema(item_schema, k), q, changed)
                    for k, v in olds[ke].items():
                        if k not in item:
                            _walk(v, sub_schema(item_schema, k), (*p, f"f:{k}"), removed)
                else:
                    changed.add(p)
                    for k, v in item.items():
                        _walk(v, sub_schema(item_schema, k), (*p, f"f:{k}"), changed)
            for ke, item in olds.items():
                if ke not in news:
                    removed.add((*path, ke))
                    for k, v in item.items():
                        _walk(v, sub_schema(item_schema, k), (*path, ke, f"f:{k}"), removed)
            return
    # a scalar, an atomic list or map, or a change of shape
    before_paths = _paths(old, schema, path)
    after_paths = _paths(new, schema, path)
    changed.update(after_paths)
    removed.update(before_paths - after_paths)


def _prefixes(fs: FieldSet) -> set[Path]:
    return {p[:i] for p in fs for i in range(1, len(p))}


def to_fields_v1(fs: FieldSet) -> dict[str, Any]:
    root: dict[str, Any] = {}
    for p in sorted(fs):
        node = root
        for el in p:
            node = node.setdefault(el, {})
    for p in fs:
        node = root
        for el in p:
            node = node[el]
        if node and "." not in node:
            node["."] = {}
    return root


def from_fields_v1(tree: Any) -> FieldSet:
    out: set[Path] = set()

    def walk(node: dict[str, Any], path: Path) -> None:
        for k, child in node.items():
            if k == ".":
                out.add(path)
            elif isinstance(child, dict) and child:
                walk(child, (*path, k))
            else:
                out.add((*path, k))

    if isinstance(tree, dict):
        walk(tree, ())
    return frozenset(out)


# --- values at paths --------------------------------------------------------------------------


def _find_item(items: list[Any], el: str) -> int:
    want = json.loads(el[2:])
    for i, x in enumerate(items):
        if isinstance(x, dict) and all(k in x and x[k] == v for k, v in want.items()):
            return i
    return -1


def get(obj: Any, path: Path) -> Any:
    """The value at ``path`` in ``obj``, or ``MISSING``."""
    cur = obj
    for el in path:
        kind, rest = el[:1], el[2:]
        if kind == "f":
            if not isinstance(cur, dict) or rest not in cur:
                return MISSING
            cur = cur[rest]
        elif kind == "k":
            if not isinstance(cur, list):
                return MISSING
            i = _find_item(cur, el)
            if i < 0:
                return MISSING
            cur = cur[i]
        elif kind == "v":
            want = json.loads(rest)
            if not isinstance(cur, list) or want not in cur:
                return MISSING
            cur = want
        else:
            return MISSING
    return cur


def remove(obj: dict[str, Any], path: Path) -> None:
    """Remove the value at ``path`` (in place), and the maps and lists it leaves empty."""

    def rec(cur: Any, rest: Path) -> bool:
        el = rest[0]
        kind, name = el[:1], el[2:]
        if kind == "f" and isinstance(cur, dict) and name in cur:
            if len(rest) == 1 or rec(cur[name], rest[1:]):
                del cur[name]
        elif kind == "k" and isinstance(cur, list):
            i = _find_item(cur, el)
            if i >= 0 and (len(rest) == 1 or rec(cur[i], rest[1:])):
                del cur[i]
        elif kind == "v" and isinstance(cur, list) and len(rest) == 1:
            want = json.loads(name)
            if want in cur:
                cur.remove(want)
        else:
            return False
        return isinstance(cur, dict | list) and not cur

    if path and path[0] == "f:metadata":  # metadata itself stays (it holds the name)
        meta = obj.get("metadata")
        if isinstance(meta, dict) and len(path) > 1:
            rec(meta, path[1:])
        return
    if path:
        rec(obj, path)


def merge(live: Any, applied: Any, schema: dict[str, Any] | None, *, root: bool = False) -> Any:
    """``applied`` merged onto ``live`` the way apply merges: maps field by field, keyed lists
    item by item, sets as a union, anything else replaced."""
    if isinstance(applied, dict) and isinstance(live, dict) and not _atomic_map(schema):
        out = dict(live)
        for k, v in applied.items():
            sub = _root_sub(schema, k) if root else sub_schema(schema, k)
            if v is None:
                out.pop(k, None)
            elif k in live:
                out[k] = merge(live[k], v, sub)
            else:
                out[k] = copy.deepcopy(v)
        return out
    if isinstance(applied, list) and isinstance(live, list):
        kind, keys = list_kind(schema, applied)
        if kind != "atomic" and list_kind(schema, live) == (kind, keys):
            out_list = list(live)
            if kind == "set":
                out_list.extend(copy.deepcopy(x) for x in applied if x not in live)
                return out_list
            index = {_key_element(x, keys): i for i, x in enumerate(out_list)}
            for item in applied:
                ke = _key_element(item, keys)
                if ke in index:
                    out_list[index[ke]] = merge(out_list[index[ke]], item, schema_of_items(schema))
                else:
                    index[ke] = len(out_list)
                    out_list.append(copy.deepcopy(item))
            return out_list
    return copy.deepcopy(applied)


def path_text(path: Path) -> str:
    """A field path as upstream prints it: ``.spec.containers[name="app"].image``."""
    out = []
    for el in path:
        kind, rest = el[:1], el[2:]
        if kind == "f":
            out.append("." + rest)
        elif kind == "k":
            keys = json.loads(rest)
            out.append(
                "[" + ",".join(f"{k}={json.dumps(v)}" for k, v in sorted(keys.items())) + "]"
            )
        elif kind == "v":
            out.append(f"[={rest}]")
        else:
            out.append(f"[{rest}]")
    return "".join(out)


# --- managedFields entries --------------------------------------------------------------------


@dataclass
class Entry:
    manager: str
    operation: str  # Apply, Update
    api_version: str
    time: str
    fields: FieldSet
    subresource: str = ""
    raw: dict[str, Any] | None = None  # the stored entry it was decoded from, while unchanged

    def same_manager(self, other: Entry) -> bool:
        return (
            self.manager == other.manager
            and self.operation == other.operation
            and self.subresource == other.subresource
            and (self.operation == "Apply" or self.api_version == other.api_version)
        )

    def to_dict(self) -> dict[str, Any]:
        if self.raw is not None:
            return self.raw
        out: dict[str, Any] = {
            "manager": self.manager,
            "operation": self.operation,
            "apiVersion": self.api_version,
            "time": self.time,
            "fieldsType": "FieldsV1",
            "fieldsV1": to_fields_v1(self.fields),
        }
        if self.subresource:
            out["subresource"] = self.subresource
        return out

    def describe(self) -> str:
        """As upstream's printManager names a manager in a conflict (from the manager's
        identifier, which has no time)."""
        text = json.dumps(self.manager)
        if self.subresource:
            text += f" with subresource {json.dumps(self.subresource)}"
        if self.operation == "Update":
            text += f" using {self.api_version}"
        return text


def same(a: Any, b: Any) -> bool:
    """Whether two ``managedFields`` values say the same (a client may re-format times)."""
    if a == b:
        return True
    key = [(e.manager, e.operation, e.api_version, e.subresource, e.fields) for e in decode(a)]
    return key == [
        (e.manager, e.operation, e.api_version, e.subresource, e.fields) for e in decode(b)
    ]


def decode(managed: Any) -> list[Entry]:
    out = []
    for e in managed if isinstance(managed, list) else ():
        if not isinstance(e, dict) or (not e.get("manager") and not e.get("fieldsV1")):
            continue
        out.append(
            Entry(
                manager=str(e.get("manager", "")),
                operation=str(e.get("operation", "Update")),
                api_version=str(e.get("apiVersion", "")),
                time=str(e.get("time", "")),
                fields=from_fields_v1(e.get("fieldsV1")),
                subresource=str(e.get("subresource", "")),
                raw=e,
            )
        )
    return out


def encode(entries: list[Entry]) -> list[dict[str, Any]]:
    kept = [e for e in entries if e.fields]
    kept.sort(key=lambda e: (e.operation, e.time, e.manager, e.api_version, e.subresource))
    return [e.to_dict() for e in kept]


def manager_name(field_manager: str, user_agent: str) -> str:
    """The ``fieldManager`` parameter, else the user agent's product (as upstream: the part of
    the User-Agent before the first ``/``)."""
    if field_manager:
        return field_manager
    prefix = user_agent.split("/", 1)[0].strip()
    return prefix[:128] or "unknown"


def record_update(
    entries: list[Entry],
    old: dict[str, Any] | None,
    new: dict[str, Any],
    schema: dict[str, Any] | None,
    scope: str,
    me: Entry,
) -> list[Entry]:
    """The entries after a non-apply write by ``me`` (its fields unset) from ``old`` to ``new``:
    ``me`` gets what was added or changed, which every other manager loses; what was removed
    leaves every manager."""
    changed: set[Path] = set()
    removed: set[Path] = set()
    after = _tracked(new, schema, scope)
    before = _tracked(old, schema, scope) if old is not None else {}
    for path, (value, sub) in after.items():
        if path in before:
            _diff(before[path][0], value, sub, path, changed, removed)
        else:
            _walk(value, sub, path, changed)
    for path, (value, sub) in before.items():
        if path not in after:
            _walk(value, sub, path, removed)
    out = []
    mine: Entry | None = None
    for e in entries:
        if e.same_manager(me):
            mine = e
            continue
        fields = e.fields - changed - removed
        out.append(e if fields == e.fields else _with(e, fields))
    if mine is not None:
        fields = frozenset((mine.fields - removed) | changed)
        if changed:
            out.append(_with(me, fields))  # a new time
        else:
            out.append(mine if fields == mine.fields else _with(mine, fields))
    elif changed:
        out.append(_with(me, frozenset(changed)))
    return out


def _with(e: Entry, fields: FieldSet) -> Entry:
    return Entry(e.manager, e.operation, e.api_version, e.time, fields, e.subresource)


@dataclass
class Conflict:
    entry: Entry
    path: Path


@dataclass
class Applied:
    obj: dict[str, Any]
    entries: list[Entry]
    conflicts: list[Conflict]


def apply(
    entries: list[Entry],
    live: dict[str, Any],
    applied: dict[str, Any],
    schema: dict[str, Any] | None,
    scope: str,
    me: Entry,
    force: bool,
) -> Applied:
    """Apply ``applied`` by ``me`` onto ``live``: the merged object and entries, or conflicts."""
    applied_set = field_set(applied, schema, scope)
    inner = _prefixes(applied_set)
    conflicts = []
    mine: Entry | None = None
    others: list[Entry] = []
    for e in entries:
        if e.same_manager(me):
            mine = e
            continue
        others.append(e)
        for p in sorted(applied_set & e.fields):
            if p not in inner and get(applied, p) != get(live, p):
                conflicts.append(Conflict(e, p))
    if conflicts and not force:
        return Applied(live, entries, conflicts)
    if conflicts:
        taken = {c.path for c in conflicts}
        others = [_with(e, e.fields - taken) if e.fields & taken else e for e in others]
    owned: set[Path] = set()
    for e in others:
        owned |= e.fields
    owned_below = _prefixes(frozenset(owned))
    obj = copy.deepcopy(live)
    if mine is not None:
        for p in sorted(mine.fields - applied_set, key=len):
            if p not in owned and p not in owned_below:
                remove(obj, p)
    obj = merge(obj, applied, schema, root=True)
    result = others
    if applied_set:
        keep = mine is not None and mine.fields == applied_set and obj == live
        result = [*others, mine if keep and mine is not None else _with(me, applied_set)]
    return Applied(obj, result, [])


def conflict_message(conflicts: list[Conflict]) -> str:
    """Upstream's ``Apply failed with N conflicts`` text."""
    if len(conflicts) == 1:
        c = conflicts[0]
        return (
            f"Apply failed with 1 conflict: conflict with {c.entry.describe()}: {path_text(c.path)}"
        )
    by_manager: dict[str, list[str]] = {}
    for c in conflicts:
        by_manager.setdefault(c.entry.describe(), []).append(path_text(c.path))
    lines = []
    for manager in sorted(by_manager):
        lines.append(f"conflicts with {manager}:")
        lines.extend(f"- {p}" for p in by_manager[manager])
    return f"Apply failed with {len(conflicts)} conflicts: " + "\n".join(lines)
