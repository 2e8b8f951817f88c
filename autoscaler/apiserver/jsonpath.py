"""The JSONPath subset printer columns use (k8s.io/client-go/util/jsonpath).

Supported: ``.field``, escaped dots (``.a\\.b``), ``['key']`` and ``["key"]``, ``[*]``, ``[n]``
(negative too), ``[a:b]`` slices and filters ``[?(@.path OP value)]`` with ==, !=, <, <=, >, >=
against a quoted string, a number, ``true``/``false``, or ``[?(@.path)]`` for existence. An
expression may be wrapped in ``{ }``. ``compile_path`` parses once; ``find`` returns all matches.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any


class JSONPathError(ValueError):
    """A malformed expression, with the position where parsing stopped."""


@dataclass(frozen=True)
class Step:
    kind: str  # "field", "index", "slice", "all", "filter"
    key: str = ""
    index: int = 0
    stop: int | None = None
    sub: tuple[Step, ...] = ()
    op: str = ""
    value: Any = None


_FILTER = re.compile(r"^\s*@((?:\.[^=!<>\s]+|\[[^\]]*\])*)\s*(?:(==|!=|<=|>=|<|>)\s*(.+?))?\s*$")


def _literal(text: str) -> Any:
    t = text.strip()
    if len(t) >= 2 and t[0] == t[-1] and t[0] in "'\"":
        return t[1:-1]
    if t in ("true", "false"):
        return t == "true"
    try:
        return int(t)
    except ValueError:
        pass
    try:
        return float(t)
    except ValueError as exc:
        raise JSONPathError(f"unrecognized filter value {t!r}") from exc


@lru_cache(maxsize=1024)
def compile_path(expr: str) -> tuple[Step, ...]:
    """Parse an expression into steps (cached)."""
    e = expr.strip()
    if e.startswith("{") and e.endswith("}"):
        e = e[1:-1].strip()
    if e.startswith("$"):
        e = e[1:]
    if e.startswith("@"):
        e = e[1:]
    steps: list[Step] = []
    i = 0
    while i < len(e):
        c = e[i]
        if c == ".":
            j = i + 1
            name = []
            while j < len(e) and e[j] not in ".[":
                if e[j] == "\\" and j + 1 < len(e):
                    name.append(e[j + 1])
                    j += 2
                    continue
                name.append(e[j])
                j += 1
            if not name:
                raise JSONPathError(f"empty field name at position {i} in {expr!r}")
            steps.append(Step("field", "".join(name)))
            i = j
        elif c == "[":
            depth, j = 0, i
            while j < len(e):
                if e[j] == "[":
                    depth += 1
                elif e[j] == "]":
                    depth -= 1
                    if depth == 0:
                        break
                j += 1
            if j >= len(e):
                raise JSONPathError(f"unterminated [ at position {i} in {expr!r}")
            steps.append(_bracket(e[i + 1 : j], expr))
            i = j + 1
        else:
            raise JSONPathError(f"unexpected {c!r} at position {i} in {expr!r}")
    return tuple(steps)


def _bracket(body: str, expr: str) -> Step:
    b = body.strip()
    if b == "*":
        return Step("all")
    if len(b) >= 2 and b[0] == b[-1] and b[0] in "'\"":
        return Step("field", b[1:-1].replace("\\.", "."))
    if b.startswith("?(") and b.endswith(")"):
        m = _FILTER.match(b[2:-1])
        if not m:
            raise JSONPathError(f"unrecognized filter {b!r} in {expr!r}")
        sub = compile_path(m.group(1)) if m.group(1) else ()
        if m.group(2):
            return Step("filter", sub=sub, op=m.group(2), value=_literal(m.group(3)))
        return Step("filter", sub=sub, op="exists")
    if ":" in b:
        start, _, stop = b.partition(":")
        try:
            return Step("slice", index=int(start or 0), stop=int(stop) if stop.strip() else None)
        except ValueError as exc:
            raise JSONPathError(f"bad slice [{b}] in {expr!r}") from exc
    try:
        return Step("index", index=int(b))
    except ValueError as exc:
        raise JSONPathError(f"bad subscript [{b}] in {expr!r}") from exc


_MISSING = object()


def _compare(left: Any, op: str, right: Any) -> bool:
    if op == "==":
        return bool(left == right)
    if op == "!=":
        return bool(left != right)
    try:
        if op == "<":
            return bool(left < right)
        if op == "<=":
            return bool(left <= right)
        if op == ">":
            return bool(left > right)
        return bool(left >= right)
    except TypeError:
        return False


def _apply(step: Step, values: list[Any]) -> list[Any]:
    out: list[Any] = []
    for v in values:
        if step.kind == "field":
            if isinstance(v, dict) and step.key in v:
                out.append(v[step.key])
        elif step.kind == "all":
            if isinstance(v, list):
                out.extend(v)
            elif isinstance(v, dict):
                out.extend(v.values())
        elif step.kind == "index":
            if isinstance(v, list) and -len(v) <= step.index < len(v):
                out.append(v[step.index])
        elif step.kind == "slice":
            if isinstance(v, list):
                out.extend(v[step.index : step.stop])
        elif step.kind == "filter" and isinstance(v, list):
            for item in v:
                found = find_steps(step.sub, item) if step.sub else [item]
                if step.op == "exists":
                    if found:
                        out.append(item)
                elif found and _compare(found[0], step.op, step.value):
                    out.append(item)
    return out


def find_steps(steps: tuple[Step, ...], obj: Any) -> list[Any]:
    values = [obj]
    for step in steps:
        values = _apply(step, values)
        if not values:
            break
    return values


def find(expr: str, obj: Any) -> list[Any]:
    """All values ``expr`` selects in ``obj`` (empty when nothing matches)."""
    return find_steps(compile_path(expr), obj)
