"""OpenAPI v3 structural schemas: validation, pruning of unknown fields and defaulting.

Mirrors what k8s.io/apiextensions-apiserver/pkg/apiserver/schema (structural schema, pruning,
defaulting) and pkg/apiserver/validation do for a custom resource on write. A schema is
compiled once into a tree of ``Node`` (one per schema object, regexes compiled) and then
``check`` walks the *object*, not the schema, so validating a small InferenceService against the
1.9 MB upstream CRD costs time in proportion to the object.

Supported: type, properties, additionalProperties, items, required, enum, pattern,
minimum/maximum (and exclusive), multipleOf, minLength/maxLength, minItems/maxItems,
minProperties/maxProperties, nullable, default, format (int32, int64, date-time, byte),
allOf/anyOf/oneOf/not as value validations, x-kubernetes-int-or-string,
x-kubernetes-preserve-unknown-fields, x-kubernetes-embedded-resource and
x-kubernetes-list-type set/map uniqueness. Not evaluated: x-kubernetes-validations (CEL rules)
and ratcheting; these are accepted in schemas and skipped.

Defaulting is upstream's (apiextensions-apiserver pkg/apiserver/schema/defaulting): a property
that is missing, or null and not nullable, takes its default before anything is validated, and
the walk then descends into the defaulted value, so the defaults inside a default apply too. A
null in a non-nullable property without a default is dropped
(PruneNonNullableNullsWithoutDefaults); a nullable one keeps its null.
"""

from __future__ import annotations

import base64
import copy
import json
import re
from dataclasses import dataclass, field
from typing import Any

from autoscaler.apiserver.errors import Cause

_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


class Node:
    """One compiled schema object."""

    __slots__ = (
        "additional",
        "all_of",
        "any_of",
        "default",
        "defaulted",
        "embedded",
        "enum",
        "excl_max",
        "excl_min",
        "format",
        "int_or_string",
        "items",
        "list_map_keys",
        "list_type",
        "max_items",
        "max_length",
        "max_props",
        "maximum",
        "min_items",
        "min_length",
        "min_props",
        "minimum",
        "multiple_of",
        "not_",
        "nullable",
        "one_of",
        "pattern",
        "pattern_text",
        "preserve_unknown",
        "properties",
        "required",
        "type",
    )

    def __init__(self) -> None:
        self.type: str | None = None
        self.properties: dict[str, Node] | None = None
        self.additional: Node | bool | None = None
        self.items: Node | None = None
        self.required: tuple[str, ...] = ()
        self.enum: list[Any] | None = None
        self.pattern: re.Pattern[str] | None = None
        self.pattern_text = ""
        self.minimum: float | None = None
        self.maximum: float | None = None
        self.excl_min = False
        self.excl_max = False
        self.multiple_of: float | None = None
        self.min_length: int | None = None
        self.max_length: int | None = None
        self.min_items: int | None = None
        self.max_items: int | None = None
        self.min_props: int | None = None
        self.max_props: int | None = None
        self.format: str | None = None
        self.nullable = False
        self.int_or_string = False
        self.preserve_unknown = False
        self.embedded = False
        self.default: Any = None
        self.defaulted: tuple[tuple[str, Node], ...] = ()  # the properties with a default
        self.list_type: str | None = None
        self.list_map_keys: tuple[str, ...] = ()
        self.all_of: list[Node] = []
        self.any_of: list[Node] = []
        self.one_of: list[Node] = []
        self.not_: Node | None = None


def compile_schema(schema: dict[str, Any]) -> Node:
    """Compile an OpenAPI v3 schema (as found in a CRD version) into a ``Node`` tree."""
    n = Node()
    n.type = schema.get("type")
    props = schema.get("properties")
    if isinstance(props, dict):
        n.properties = {k: compile_schema(v) for k, v in props.items() if isinstance(v, dict)}
        n.defaulted = tuple((k, p) for k, p in n.properties.items() if p.default is not None)
    add = schema.get("additionalProperties")
    if isinstance(add, dict):
        n.additional = compile_schema(add)
    elif isinstance(add, bool):
        n.additional = add
    items = schema.get("items")
    if isinstance(items, dict):
        n.items = compile_schema(items)
    n.required = tuple(schema.get("required") or ())
    if "enum" in schema:
        n.enum = list(schema["enum"])
    if isinstance(schema.get("pattern"), str):
        n.pattern_text = schema["pattern"]
        try:
            n.pattern = re.compile(schema["pattern"])
        except re.error:
            n.pattern = None  # an RE2-only construct: not enforced
    n.minimum = schema.get("minimum")
    n.maximum = schema.get("maximum")
    n.excl_min = bool(schema.get("exclusiveMinimum"))
    n.excl_max = bool(schema.get("exclusiveMaximum"))
    n.multiple_of = schema.get("multipleOf")
    n.min_length = schema.get("minLength")
    n.max_length = schema.get("maxLength")
    n.min_items = schema.get("minItems")
    n.max_items = schema.get("maxItems")
    n.min_props = schema.get("minProperties")
    n.max_props = schema.get("maxProperties")
    n.format = schema.get("format")
    n.nullable = bool(schema.get("nullable"))
    n.int_or_string = bool(schema.get("x-kubernetes-int-or-string"))
    n.preserve_unknown = bool(schema.get("x-kubernetes-preserve-unknown-fields"))
    n.embedded = bool(schema.get("x-kubernetes-embedded-resource"))
    n.default = schema.get("default")
    n.list_type = schema.get("x-kubernetes-list-type")
    n.list_map_keys = tuple(schema.get("x-kubernetes-list-map-keys") or ())
    n.all_of = [compile_schema(s) for s in schema.get("allOf") or () if isinstance(s, dict)]
    n.any_of = [compile_schema(s) for s in schema.get("anyOf") or () if isinstance(s, dict)]
    n.one_of = [compile_schema(s) for s in schema.get("oneOf") or () if isinstance(s, dict)]
    if isinstance(schema.get("not"), dict):
        n.not_ = compile_schema(schema["not"])
    return n


@dataclass
class Outcome:
    """What ``check`` found: the pruned and defaulted object, errors and unknown field paths."""

    value: Any
    errors: list[Cause] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _show(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


_GO_TYPE = {
    "object": "object",
    "array": "array",
    "string": "string",
    "integer": "integer",
    "number": "number",
    "boolean": "boolean",
}


def _json_type(v: Any) -> str:
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "integer"
    if isinstance(v, float):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    return "object" if isinstance(v, dict) else "null"


def _type_ok(t: str, v: Any) -> bool:
    if t == "object":
        return isinstance(v, dict)
    if t == "array":
        return isinstance(v, list)
    if t == "string":
        return isinstance(v, str)
    if t == "boolean":
        return isinstance(v, bool)
    if t == "integer":
        if isinstance(v, bool):
            return False
        return isinstance(v, int) or (isinstance(v, float) and v.is_integer())
    if t == "number":
        return isinstance(v, int | float) and not isinstance(v, bool)
    return True


class _Walker:
    def __init__(self, prune: bool, defaults: bool) -> None:
        self.prune = prune
        self.defaults = defaults
        self.errors: list[Cause] = []
        self.unknown: list[str] = []

    def err(self, path: str, message: str, reason: str = "FieldValueInvalid") -> None:
        self.errors.append(Cause(path, message, reason))

    def walk(self, n: Node, v: Any, path: str) -> Any:
        if v is None and self.defaults and n.default is not None and not n.nullable:
            v = copy.deepcopy(n.default)  # a null list item or map value: its default
        if v is None:
            if n.nullable or (n.type is None and not n.int_or_string):
                return None
            want = "integer or string" if n.int_or_string else n.type
            self.err(path, f'Invalid value: "null": {path} in body must be of type {want}: "null"')
            return None
        if n.int_or_string:
            if not (isinstance(v, str) or _type_ok("integer", v)):
                self.err(
                    path,
                    f"Invalid value: {_show(v)}: {path} in body must be of type integer or string",
                )
                return v
        elif n.type is not None and not _type_ok(n.type, v):
            self.err(
                path,
                f'Invalid value: "{_json_type(v)}": {path} in body must be of type '
                f"{_GO_TYPE.get(n.type, n.type)}: {_show(v)}",
            )
            return v
        self.values(n, v, path)
        if isinstance(v, dict):
            return self.obj(n, v, path)
        if isinstance(v, list):
            return self.arr(n, v, path)
        return v

    def values(self, n: Node, v: Any, path: str) -> None:
        if n.enum is not None and v not in n.enum:
            allowed = ", ".join(_show(e) for e in n.enum)
            self.err(
                path,
                f"Unsupported value: {_show(v)}: supported values: {allowed}",
                "FieldValueNotSupported",
            )
        if isinstance(v, str):
            if n.pattern is not None and n.pattern.search(v) is None:
                self.err(
                    path,
                    f"Invalid value: {_show(v)}: {path} in body should match '{n.pattern_text}'",
                )
            if n.min_length is not None and len(v) < n.min_length:
                self.err(
                    path,
                    f"Invalid value: {_show(v)}: {path} in body should be at least "
                    f"{n.min_length} chars long",
                )
            if n.max_length is not None and len(v) > n.max_length:
                self.err(
                    path,
                    f"Too long: may not be more than {n.max_length} bytes",
                    "FieldValueTooLong",
                )
            if n.format is not None:
                self.fmt(n, v, path)
        elif isinstance(v, int | float) and not isinstance(v, bool):
            self.number(n, v, path)
        elif isinstance(v, list):
            if n.min_items is not None and len(v) < n.min_items:
                self.err(
                    path,
                    f"Invalid value: {len(v)}: {path} in body should have at least "
                    f"{n.min_items} items",
                )
            if n.max_items is not None and len(v) > n.max_items:
                self.err(
                    path,
                    f"Too many: {len(v)}: must have at most {n.max_items} items",
                    "FieldValueTooMany",
                )
        elif isinstance(v, dict):
            if n.min_props is not None and len(v) < n.min_props:
                self.err(
                    path,
                    f"Invalid value: {len(v)}: {path} in body should have at least {n.min_props} properties",
                )
            if n.max_props is not None and len(v) > n.max_props:
                self.err(
                    path,
                    f"Too many: {len(v)}: must have at most {n.max_props} properties",
                    "FieldValueTooMany",
                )
        for sub in n.all_of:
            self.combine(sub, v, path, "allOf")
        if n.any_of and not any(_passes(s, v) for s in n.any_of):
            self.err(
                path,
                f"Invalid value: {_show(v)}: {path} in body must match at least one schema in anyOf",
            )
        if n.one_of and sum(1 for s in n.one_of if _passes(s, v)) != 1:
            self.err(
                path,
                f"Invalid value: {_show(v)}: {path} in body must validate one and only one schema (oneOf)",
            )
        if n.not_ is not None and _passes(n.not_, v):
            self.err(
                path,
                f"Invalid value: {_show(v)}: {path} in body must not validate the schema (not)",
            )

    def combine(self, sub: Node, v: Any, path: str, what: str) -> None:
        w = _Walker(prune=False, defaults=False)
        w.walk(sub, v, path)
        self.errors.extend(w.errors)

    def number(self, n: Node, v: float, path: str) -> None:
        if n.minimum is not None and (v < n.minimum or (n.excl_min and v == n.minimum)):
            rel = "greater than" if n.excl_min else "greater than or equal to"
            self.err(
                path,
                f"Invalid value: {_show(v)}: {path} in body should be {rel} {_show(n.minimum)}",
            )
        if n.maximum is not None and (v > n.maximum or (n.excl_max and v == n.maximum)):
            rel = "less than" if n.excl_max else "less than or equal to"
            self.err(
                path,
                f"Invalid value: {_show(v)}: {path} in body should be {rel} {_show(n.maximum)}",
            )
        if n.multiple_of and (v / n.multiple_of) % 1 != 0:
            self.err(
                path,
                f"Invalid value: {_show(v)}: {path} in body should be a multiple of {_show(n.multiple_of)}",
            )
        if n.format == "int32" and not -(2**31) <= v < 2**31:
            self.err(path, f"Invalid value: {_show(v)}: {path} in body must be of type int32")

    def fmt(self, n: Node, v: str, path: str) -> None:
        if n.format == "date-time" and not _DATE_TIME.match(v):
            self.err(path, f"Invalid value: {_show(v)}: {path} in body must be of type date-time")
        elif n.format == "byte":
            try:
                base64.b64decode(v, validate=True)
            except ValueError:
                self.err(path, f"Invalid value: {_show(v)}: {path} in body must be of type byte")

    def obj(self, n: Node, v: dict[str, Any], path: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        props = n.properties
        add = n.additional
        if self.defaults and n.defaulted:
            # apiextensions defaulting: a missing property, or a null one that is not nullable,
            # takes its default first; the walk below then descends into the defaulted value
            # (so the defaults inside a default apply) and validation sees the result.
            v = dict(v)
            for k, sub in n.defaulted:
                if k not in v or (v[k] is None and not sub.nullable):
                    v[k] = copy.deepcopy(sub.default)
        for k, val in v.items():
            p = _join(path, k)
            if n.embedded and k in ("apiVersion", "kind") and (props is None or k not in props):
                out[k] = val
            elif n.embedded and k == "metadata":
                out[k] = self.walk(object_meta_node(), val, p)
            elif props is not None and k in props:
                if val is None and self.prune and not props[k].nullable:
                    continue  # PruneNonNullableNullsWithoutDefaults: a null is dropped
                out[k] = self.walk(props[k], val, p)
            elif isinstance(add, Node):
                out[k] = self.walk(add, val, p)
            elif (
                add is True
                or n.preserve_unknown
                or (props is None and add is None and n.type is None)
            ):
                out[k] = val
            else:
                self.unknown.append(p)
                if not self.prune:
                    out[k] = val
        for r in n.required:
            if r not in out:
                self.err(_join(path, r), "Required value", "FieldValueRequired")
        return out

    def arr(self, n: Node, v: list[Any], path: str) -> list[Any]:
        out = (
            [self.walk(n.items, x, f"{path}[{i}]") for i, x in enumerate(v)] if n.items else list(v)
        )
        if n.list_type == "set":
            seen: set[str] = set()
            for i, x in enumerate(out):
                key = _show(x)
                if key in seen:
                    self.err(f"{path}[{i}]", f"Duplicate value: {key}", "FieldValueDuplicate")
                seen.add(key)
        elif n.list_type == "map" and n.list_map_keys:
            seen_keys: set[str] = set()
            for i, x in enumerate(out):
                if not isinstance(x, dict):
                    continue
                key = _show({k: x.get(k) for k in n.list_map_keys})
                if key in seen_keys:
                    self.err(f"{path}[{i}]", f"Duplicate value: {key}", "FieldValueDuplicate")
                seen_keys.add(key)
        return out


def _passes(n: Node, v: Any) -> bool:
    w = _Walker(prune=False, defaults=False)
    w.walk(n, v, "")
    return not w.errors


def check(node: Node, obj: dict[str, Any], *, prune: bool = True, defaults: bool = True) -> Outcome:
    """Validate a whole object against its kind's schema.

    ``apiVersion``, ``kind`` and ``metadata`` are always allowed at the root; ``metadata`` is
    checked against ObjectMeta whatever the schema says (as Kubernetes does for custom resources).
    Unknown fields are reported in ``unknown`` and dropped from ``value`` when ``prune``.
    """
    w = _Walker(prune, defaults)
    body = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "metadata")}
    root = w.walk(node, body, "")
    out: dict[str, Any] = {}
    for k in ("apiVersion", "kind"):
        if k in obj:
            out[k] = obj[k]
    if "metadata" in obj:
        out["metadata"] = w.walk(object_meta_node(), obj["metadata"], "metadata")
    if isinstance(root, dict):
        out.update(root)
    return Outcome(out, w.errors, w.unknown)


def _str_map() -> dict[str, Any]:
    return {"type": "object", "additionalProperties": {"type": "string"}}


def object_meta_schema() -> dict[str, Any]:
    """ObjectMeta (k8s.io/apimachinery/pkg/apis/meta/v1), with the patch strategies of its lists."""
    return {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "generateName": {"type": "string"},
            "namespace": {"type": "string"},
            "selfLink": {"type": "string"},
            "uid": {"type": "string"},
            "resourceVersion": {"type": "string"},
            "generation": {"type": "integer", "format": "int64"},
            "creationTimestamp": {"type": "string", "format": "date-time", "nullable": True},
            "deletionTimestamp": {"type": "string", "format": "date-time"},
            "deletionGracePeriodSeconds": {"type": "integer", "format": "int64"},
            "labels": _str_map(),
            "annotations": _str_map(),
            "ownerReferences": {
                "type": "array",
                "x-kubernetes-patch-merge-key": "uid",
                "x-kubernetes-patch-strategy": "merge",
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["uid"],
                "items": {
                    "type": "object",
                    "required": ["apiVersion", "kind", "name", "uid"],
                    "properties": {
                        "apiVersion": {"type": "string"},
                        "kind": {"type": "string"},
                        "name": {"type": "string"},
                        "uid": {"type": "string"},
                        "controller": {"type": "boolean"},
                        "blockOwnerDeletion": {"type": "boolean"},
                    },
                },
            },
            "finalizers": {
                "type": "array",
                "items": {"type": "string"},
                "x-kubernetes-patch-strategy": "merge",
                "x-kubernetes-list-type": "set",
            },
            "managedFields": {
                "type": "array",
                "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
            },
        },
    }


_META_NODE: list[Node] = []


def object_meta_node() -> Node:
    """The compiled ObjectMeta schema (compiled on first use, then shared)."""
    if not _META_NODE:
        _META_NODE.append(compile_schema(object_meta_schema()))
    return _META_NODE[0]
