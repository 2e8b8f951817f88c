"""The three patch formats Kubernetes accepts, applied to plain JSON values.

- JSON merge patch (RFC 7386, ``application/merge-patch+json``): maps merge, ``null`` deletes,
  everything else (lists included) replaces.
- JSON patch (RFC 6902, ``application/json-patch+json``): add, remove, replace, move, copy, test.
- Strategic merge patch (``application/strategic-merge-patch+json``,
  k8s.io/apimachinery/pkg/util/strategicpatch): like a merge patch, but lists whose schema says
  ``x-kubernetes-patch-strategy: merge`` merge by ``x-kubernetes-patch-merge-key`` (or as a
  set of primitives), with the directives ``$patch`` (replace/delete/merge), ``$retainKeys``,
  ``$deleteFromPrimitiveList/<field>`` and ``$setElementOrder/<field>``.
"""

from __future__ import annotations

import copy
import json
from typing import Any


class PatchError(ValueError):
    """A patch that cannot be applied; the message says which operation or path failed."""


def merge_patch(target: Any, patch: Any) -> Any:
    """Apply an RFC 7386 merge patch; ``target`` is not modified."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


# --- JSON patch -------------------------------------------------------------------------------


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f"JSON pointer {path!r} does not start with '/'")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _index(container: list[Any], token: str, path: str, *, adding: bool) -> int:
    if adding and token == "-":
        return len(container)
    try:
        i = int(token)
    except ValueError as exc:
        raise PatchError(f"invalid array index {token!r} in {path!r}") from exc
    limit = len(container) + (1 if adding else 0)
    if not 0 <= i < limit:
        raise PatchError(f"array index {i} out of range in {path!r}")
    return i


def _parent(doc: Any, parts: list[str], path: str) -> Any:
    cur = doc
    for token in parts[:-1]:
        if isinstance(cur, dict):
            if token not in cur:
                raise PatchError(f"doc is missing path: {path!r}")
            cur = cur[token]
        elif isinstance(cur, list):
            cur = cur[_index(cur, token, path, adding=False)]
        else:
            raise PatchError(f"doc is missing path: {path!r}")
    return cur


def _get(doc: Any, path: str) -> Any:
    parts = _pointer(path)
    if not parts:
        return doc
    parent = _parent(doc, parts, path)
    last = parts[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f"doc is missing path: {path!r}")
        return parent[last]
    if isinstance(parent, list):
        return parent[_index(parent, last, path, adding=False)]
    raise PatchError(f"doc is missing path: {path!r}")


def _add(doc: Any, path: str, value: Any) -> Any:
    parts = _pointer(path)
    if not parts:
        return value
    parent = _parent(doc, parts, path)
    last = parts[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        parent.insert(_index(parent, last, path, adding=True), value)
    else:
        raise PatchError(f"doc is missing path: {path!r}")
    return doc


def _remove(doc: Any, path: str) -> Any:
    parts = _pointer(path)
    if not parts:
        raise PatchError("cannot remove the whole document")
    parent = _parent(doc, parts, path)
    last = parts[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f"unable to remove nonexistent key: {last}: missing value")
        del parent[last]
    elif isinstance(parent, list):
        del parent[_index(parent, last, path, adding=False)]
    else:
        raise PatchError(f"doc is missing path: {path!r}")
    return doc


def json_patch(target: Any, ops: Any) -> Any:
    """Apply an RFC 6902 patch (a list of operations); ``target`` is not modified."""
    if not isinstance(ops, list):
        raise PatchError("a JSON patch must be a list of operations")
    doc = copy.deepcopy(target)
    for n, op in enumerate(ops):
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise PatchError(f"operation {n} needs 'op' and 'path': {op!r}")
        kind, path = op["op"], op["path"]
        if kind in ("add", "replace", "test") and "value" not in op:
            raise PatchError(f"operation {n} ({kind} {path}) is missing 'value'")
        if kind == "add":
            doc = _add(doc, path, copy.deepcopy(op["value"]))
        elif kind == "remove":
            doc = _remove(doc, path)
        elif kind == "replace":
            _get(doc, path)
            doc = _remove(doc, path) if _pointer(path) else doc
            doc = _add(doc, path, copy.deepcopy(op["value"]))
        elif kind in ("move", "copy"):
            if "from" not in op:
                raise PatchError(f"operation {n} ({kind} {path}) is missing 'from'")
            value = copy.deepcopy(_get(doc, op["from"]))
            if kind == "move":
                doc = _remove(doc, op["from"])
            doc = _add(doc, path, value)
        elif kind == "test":
            if not _json_equal(_get(doc, path), op["value"]):
                raise PatchError(f"testing value {path} failed: test failed")
        else:
            raise PatchError(f"unexpected operation {kind!r} in operation {n}")
    return doc


# --- strategic merge patch ----------------------------------------------------------------------


def sub_schema(schema: dict[str, Any] | None, key: str) -> dict[str, Any] | None:
    """The schema of ``key`` under an object's ``schema`` (a property, else the additional
    properties'), None when it says nothing."""
    if not schema:
        return None
    props = schema.get("properties")
    if isinstance(props, dict) and isinstance(props.get(key), dict):
        return props[key]
    add = schema.get("additionalProperties")
    return add if isinstance(add, dict) else None


def schema_of_items(schema: dict[str, Any] | None) -> dict[str, Any] | None:
    """The schema of a list's items, None when it says nothing."""
    if schema and isinstance(schema.get("items"), dict):
        return schema["items"]
    return None


def strategic_merge(
    target: dict[str, Any], patch: dict[str, Any], schema: dict[str, Any] | None
) -> dict[str, Any]:
    """Apply a strategic merge patch to an object using its kind's OpenAPI schema.

    Follows k8s.io/apimachinery/pkg/util/strategicpatch (``StrategicMergeMapPatch``, the server
    side): a map merges key by key (``null`` deletes); a list whose schema says
    ``x-kubernetes-patch-strategy: merge`` merges its items on
    ``x-kubernetes-patch-merge-key`` (or, for primitives, as a set) and every other list is
    replaced. Directives: ``$patch: replace|delete`` in a map or a list item,
    ``$retainKeys``, ``$deleteFromPrimitiveList/<list>`` and ``$setElementOrder/<list>``
    (the order kubectl sends with every changed merging list). Without ``$setElementOrder``,
    items new to a list are appended.
    """
    if not isinstance(patch, dict):
        raise PatchError("a strategic merge patch must be a JSON object")
    result = _smp_map(target if isinstance(target, dict) else {}, patch, schema)
    return result if isinstance(result, dict) else {}


_ORDER = "$setElementOrder/"
_DELETE_FROM = "$deleteFromPrimitiveList/"


def _strategies(schema: dict[str, Any] | None) -> set[str]:
    return set(str((schema or {}).get("x-kubernetes-patch-strategy", "")).split(","))


def _smp_map(orig: dict[str, Any], patch: dict[str, Any], schema: dict[str, Any] | None) -> Any:
    if "$patch" in patch:
        directive = patch["$patch"]
        if directive == "replace":  # the patch, as it is, replaces the map
            return _strip_directives({k: v for k, v in patch.items() if k != "$patch"})
        if directive == "delete":  # upstream: the map becomes empty
            return {}
        raise PatchError(f"Unable to apply patch: unknown patch type {directive!r} in map")
    out = copy.deepcopy(orig)
    body = dict(patch)
    retain = body.pop("$retainKeys", None)
    if retain is not None:
        if not isinstance(retain, list):
            raise PatchError("$retainKeys must be a list of field names")
        out = {k: v for k, v in out.items() if k in retain}
    orders: dict[str, list[Any]] = {}
    for k in list(body):
        if k.startswith(_DELETE_FROM):
            field = k[len(_DELETE_FROM) :]
            drop = body.pop(k) or []
            if not isinstance(drop, list):
                raise PatchError(f"{k} must be a list")
            if isinstance(out.get(field), list):
                out[field] = [x for x in out[field] if not any(_json_equal(x, d) for d in drop)]
        elif k.startswith(_ORDER):
            order = body.pop(k) or []
            if not isinstance(order, list):
                raise PatchError(f"{k} must be a list")
            orders[k[len(_ORDER) :]] = order
    for k, v in body.items():
        if k.startswith("$"):
            continue  # an unknown directive: ignored
        sub = sub_schema(schema, k)
        if v is None:
            out.pop(k, None)
        elif isinstance(v, dict):
            if "replace" in _strategies(sub):
                out[k] = _strip_directives(v)
            else:
                current = out.get(k)
                out[k] = _smp_map(current if isinstance(current, dict) else {}, v, sub)
        elif isinstance(v, list):
            out[k] = _smp_list(out.get(k), v, sub)
        else:
            out[k] = copy.deepcopy(v)
    for field, order in orders.items():
        sub = sub_schema(schema, field)
        if isinstance(out.get(field), list) and "merge" in _strategies(sub):
            before = orig.get(field)
            out[field] = _order(out[field], order, before if isinstance(before, list) else [], sub)
    return out


def _strip_directives(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _strip_directives(x) for k, x in v.items() if not k.startswith("$")}
    if isinstance(v, list):
        return [_strip_directives(x) for x in v]
    return v


def _smp_list(orig: Any, patch: list[Any], schema: dict[str, Any] | None) -> list[Any]:
    plain = [x for x in patch if not (isinstance(x, dict) and "$patch" in x)]
    if "merge" not in _strategies(schema):  # an atomic list: the patch's list replaces it
        return [_strip_directives(x) for x in plain]
    out = copy.deepcopy(orig) if isinstance(orig, list) else []
    if not any(isinstance(x, dict) for x in [*patch, *out]):  # a set of primitives
        for x in patch:
            if not any(_json_equal(x, o) for o in out):
                out.append(copy.deepcopy(x))
        return out
    key = (schema or {}).get("x-kubernetes-patch-merge-key")
    if not key:
        raise PatchError("cannot merge lists of objects without a merge key")
    replace = False
    for x in patch:
        if not isinstance(x, dict):
            raise PatchError(f"a list merged on {key!r} holds a non-object item: {x!r}")
        if "$patch" not in x:
            continue
        directive = x["$patch"]
        if directive == "delete":
            if key not in x:
                raise PatchError(f"map: {x} does not contain declared merge key: {key}")
            out = [o for o in out if not (isinstance(o, dict) and _json_equal(o.get(key), x[key]))]
        elif directive == "replace":
            replace = True
        elif directive == "merge":
            raise PatchError("merging lists cannot yet be specified in the patch")
        else:
            raise PatchError(f"Unable to apply patch: unknown patch type {directive!r} in list")
    if replace:
        return [_strip_directives(x) for x in plain]
    item_schema = schema_of_items(schema)
    for x in plain:
        if key not in x:
            raise PatchError(f"map: {x} does not contain declared merge key: {key}")
        pos = next(
            (
                i
                for i, o in enumerate(out)
                if isinstance(o, dict) and key in o and _json_equal(o[key], x[key])
            ),
            None,
        )
        if pos is None:
            out.append(_smp_map({}, x, item_schema))
        else:
            out[pos] = _smp_map(out[pos], x, item_schema)
    return out


def _order(
    items: list[Any], order: list[Any], before: list[Any], schema: dict[str, Any] | None
) -> list[Any]:
    """Order a merged list as ``$setElementOrder`` asks (strategicpatch normalizeElementOrder):
    the items it names in its order, the others (server-only items) in their order in the live
    list, the two interleaved by their positions in the live list."""
    key = (schema or {}).get("x-kubernetes-patch-merge-key")

    def ident(x: Any) -> str:
        return _canonical(x.get(key) if key and isinstance(x, dict) else x)

    wanted = {ident(o): i for i, o in reversed(list(enumerate(order)))}
    live = {ident(o): i for i, o in reversed(list(enumerate(before)))}
    named = sorted((x for x in items if ident(x) in wanted), key=lambda x: wanted[ident(x)])
    server_only = [x for x in items if ident(x) not in wanted]
    server_only.sort(key=lambda x: live.get(ident(x), len(live)))
    out: list[Any] = []
    i = j = 0
    while i < len(server_only) or j < len(named):
        if j >= len(named):
            out.append(server_only[i])
            i += 1
        elif i >= len(server_only):
            out.append(named[j])
            j += 1
        else:
            li, ri = live.get(ident(server_only[i])), live.get(ident(named[j]))
            if li is not None and ri is not None and li < ri:
                out.append(server_only[i])
                i += 1
            else:
                out.append(named[j])
                j += 1
    return out


def _canonical(v: Any) -> str:
    return json.dumps(v, sort_keys=True)


def _json_equal(a: Any, b: Any) -> bool:
    """Equality of JSON values: booleans are not numbers, 1 equals 1.0."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b
