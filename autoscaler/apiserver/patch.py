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
            if _get(doc, path) != op["value"]:
                raise PatchError(f"testing value {path} failed: test failed")
        else:
            raise PatchError(f"unexpected operation {kind!r} in operation {n}")
    return doc


# --- strategic merge patch ----------------------------------------------------------------------


def _sub_schema(schema: dict[str, Any] | None, key: str) -> dict[str, Any] | None:
    if not schema:
        return None
    props = schema.get("properties")
    if isinstance(props, dict) and key in props:
        return props[key]
    add = schema.get("additionalProperties")
    return add if isinstance(add, dict) else None


def _items(schema: dict[str, Any] | None) -> dict[str, Any] | None:
    if schema and isinstance(schema.get("items"), dict):
        return schema["items"]
    return None


def strategic_merge(
    target: dict[str, Any], patch: dict[str, Any], schema: dict[str, Any] | None
) -> dict[str, Any]:
    """Apply a strategic merge patch to an object using its kind's OpenAPI schema."""
    if not isinstance(patch, dict):
        raise PatchError("a strategic merge patch must be a JSON object")
    result = _smp_map(target if isinstance(target, dict) else {}, patch, schema)
    return result if isinstance(result, dict) else {}


_DELETE = object()


def _smp_map(orig: dict[str, Any], patch: dict[str, Any], schema: dict[str, Any] | None) -> Any:
    directive = patch.get("$patch")
    if directive == "delete":
        return _DELETE
    body = {k: v for k, v in patch.items() if k != "$patch"}
    if directive == "replace":
        return _strip_directives(body)
    out = copy.deepcopy(orig)
    retain = body.pop("$retainKeys", None)
    if isinstance(retain, list):
        out = {k: v for k, v in out.items() if k in retain}
    orders: dict[str, list[Any]] = {}
    for k in list(body):
        if k.startswith("$deleteFromPrimitiveList/"):
            field = k.split("/", 1)[1]
            drop = body.pop(k) or []
            if isinstance(out.get(field), list):
                out[field] = [x for x in out[field] if x not in drop]
        elif k.startswith("$setElementOrder/"):
            orders[k.split("/", 1)[1]] = body.pop(k) or []
    for k, v in body.items():
        sub = _sub_schema(schema, k)
        if v is None:
            out.pop(k, None)
        elif isinstance(v, dict) and isinstance(out.get(k), dict):
            merged = _smp_map(out[k], v, sub)
            if merged is _DELETE:
                out.pop(k, None)
            else:
                out[k] = merged
        elif isinstance(v, dict):
            merged = _smp_map({}, v, sub)
            if merged is not _DELETE:
                out[k] = merged
        elif isinstance(v, list):
            out[k] = _smp_list(out.get(k), v, sub)
        else:
            out[k] = copy.deepcopy(v)
    for field, order in orders.items():
        if isinstance(out.get(field), list):
            out[field] = _order(out[field], order, _sub_schema(schema, field))
    return out


def _strip_directives(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _strip_directives(x) for k, x in v.items() if not k.startswith("$")}
    if isinstance(v, list):
        return [_strip_directives(x) for x in v]
    return v


def _smp_list(orig: Any, patch: list[Any], schema: dict[str, Any] | None) -> list[Any]:
    strategy = str((schema or {}).get("x-kubernetes-patch-strategy", ""))
    key = (schema or {}).get("x-kubernetes-patch-merge-key")
    if any(isinstance(x, dict) and x.get("$patch") == "replace" for x in patch):
        return [_strip_directives(x) for x in patch if not (isinstance(x, dict) and "$patch" in x)]
    if "merge" not in strategy.split(",") or not isinstance(orig, list):
        return [_strip_directives(x) for x in patch if not (isinstance(x, dict) and "$patch" in x)]
    out = copy.deepcopy(orig)
    if not key:  # a set of primitives
        for x in patch:
            if x not in out:
                out.append(copy.deepcopy(x))
        return out
    item_schema = _items(schema)
    for x in patch:
        if not isinstance(x, dict):
            continue
        pos = next(
            (i for i, o in enumerate(out) if isinstance(o, dict) and o.get(key) == x.get(key)),
            None,
        )
        if x.get("$patch") == "delete":
            if pos is not None:
                del out[pos]
            continue
        if pos is None:
            out.append(_strip_directives(x))
        else:
            merged = _smp_map(out[pos], x, item_schema)
            if merged is _DELETE:
                del out[pos]
            else:
                out[pos] = merged
    return out


def _order(items: list[Any], order: list[Any], schema: dict[str, Any] | None) -> list[Any]:
    key = (schema or {}).get("x-kubernetes-patch-merge-key")

    def ident(x: Any) -> Any:
        return x.get(key) if key and isinstance(x, dict) else x

    wanted = [ident(o) for o in order]
    rank = {repr(w): i for i, w in enumerate(wanted)}
    return sorted(items, key=lambda x: rank.get(repr(ident(x)), len(rank)))
