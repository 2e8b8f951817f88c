"""Label and field selectors, as k8s.io/apimachinery/pkg/labels and pkg/fields parse them.

Label selectors: ``a=b``, ``a==b``, ``a!=b``, ``a in (x,y)``, ``a notin (x,y)``, ``a``, ``!a``,
``a>1``, ``a<1``, joined by commas. Field selectors: ``f=v``, ``f==v``, ``f!=v`` on the fields
a kind supports (metadata.name and metadata.namespace everywhere; Events add involvedObject.*,
reason, source, type; Namespaces status.phase; CRDs their selectableFields).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from autoscaler.apiserver.errors import bad_request


@dataclass(frozen=True)
class Requirement:
    """One clause: ``key op values``."""

    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!exists", ">", "<"
    values: tuple[str, ...] = ()

    def matches(self, labels: dict[str, str]) -> bool:
        has = self.key in labels
        value = labels.get(self.key)
        if self.op == "exists":
            return has
        if self.op == "!exists":
            return not has
        if self.op in ("=", "in"):
            return has and value in self.values
        if self.op in ("!=", "notin"):
            return not has or value not in self.values
        if not has:
            return False
        try:
            left, right = int(str(value)), int(self.values[0])
        except ValueError:
            return False
        return left > right if self.op == ">" else left < right


Selector = tuple[Requirement, ...]

_KEY = r"[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?"
_SET = re.compile(rf"^\s*({_KEY})\s+(in|notin)\s*\(([^)]*)\)\s*$")
_CMP = re.compile(rf"^\s*({_KEY})\s*(==|!=|=|>|<)\s*([-A-Za-z0-9_.]*)\s*$")
_EXISTS = re.compile(rf"^\s*(!?)\s*({_KEY})\s*$")


def _split_clauses(text: str) -> list[str]:
    """Split on commas that are not inside ``( )``."""
    out: list[str] = []
    cur: list[str] = []
    depth = 0
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    out.append("".join(cur))
    return [c for c in out if c.strip()]


def parse_label_selector(text: str) -> Selector:
    """Parse a label selector; a malformed one is a 400 BadRequest naming the clause."""
    reqs = []
    for clause in _split_clauses(text or ""):
        m = _SET.match(clause)
        if m:
            key, op, raw = m.group(1), m.group(3), m.group(4)
            values = tuple(v.strip() for v in raw.split(",") if v.strip())
            if not values:  # as k8s.io/apimachinery/pkg/labels.NewRequirement
                raise bad_request(
                    f"unable to parse requirement: {clause.strip()!r}: for 'in', 'notin' "
                    "operators, values set can't be empty"
                )
            reqs.append(Requirement(key, op, values))
            continue
        m = _CMP.match(clause)
        if m:
            key, op, value = m.group(1), m.group(3), m.group(4)
            reqs.append(Requirement(key, "=" if op in ("=", "==") else op, (value,)))
            continue
        m = _EXISTS.match(clause)
        if m:
            reqs.append(Requirement(m.group(2), "!exists" if m.group(1) else "exists"))
            continue
        raise bad_request(
            f"unable to parse requirement: {clause.strip()!r}: invalid label selector"
        )
    return tuple(reqs)


def labels_match(selector: Selector, labels: dict[str, str] | None) -> bool:
    lbls = labels or {}
    return all(r.matches(lbls) for r in selector)


def parse_field_selector(text: str, supported: Iterable[str]) -> Selector:
    """Parse a field selector over the ``supported`` field paths (400 for any other field)."""
    allowed = set(supported)
    reqs = []
    for clause in _split_clauses(text or ""):
        m = re.match(r"^\s*([^=!\s]+)\s*(==|!=|=)\s*(.*?)\s*$", clause)
        if not m:
            raise bad_request(f"invalid selector: {text!r}; can't understand {clause.strip()!r}")
        key, op, value = m.group(1), m.group(2), m.group(3)
        if key not in allowed:
            raise bad_request(f"field label not supported: {key}")
        reqs.append(Requirement(key, "!=" if op == "!=" else "=", (value,)))
    return tuple(reqs)


def field_value(obj: dict[str, Any], path: str) -> str:
    """The string value at a dotted path (``""`` when absent), as field selectors compare it."""
    cur: Any = obj
    for part in path.split("."):
        if not isinstance(cur, dict):
            return ""
        cur = cur.get(part)
    if cur is None:
        return ""
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return str(cur)


def fields_match(selector: Selector, obj: dict[str, Any]) -> bool:
    for r in selector:
        value = field_value(obj, r.key)
        if (value == r.values[0]) != (r.op == "="):
            return False
    return True


EVENT_FIELDS = (
    "involvedObject.kind",
    "involvedObject.namespace",
    "involvedObject.name",
    "involvedObject.uid",
    "involvedObject.apiVersion",
    "involvedObject.resourceVersion",
    "involvedObject.fieldPath",
    "reason",
    "reportingComponent",
    "source",
    "type",
)


def supported_fields(group: str, plural: str, extra: Iterable[str] = ()) -> tuple[str, ...]:
    """The field paths a field selector may use on a resource."""
    base = ("metadata.name", "metadata.namespace", *extra)
    if plural == "events" and group in ("", "events.k8s.io"):
        return (*base, *EVENT_FIELDS)
    if plural == "namespaces" and group == "":
        return (*base, "status.phase")
    return base


Predicate = Callable[[dict[str, Any]], bool]


def predicate(label_sel: Selector, field_sel: Selector) -> Predicate:
    """One test for both selectors (events are matched on their stored core/v1 field names)."""

    def test(obj: dict[str, Any]) -> bool:
        meta = obj.get("metadata") or {}
        return labels_match(label_sel, meta.get("labels")) and fields_match(field_sel, obj)

    return test
