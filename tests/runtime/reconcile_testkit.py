"""Stand-ins for the serving controller's informers in reconcile tests: a fixed list of objects."""

from __future__ import annotations

from typing import Any


class Informer:
    """What the controller reads of an informer (``get``, ``list``) over a list the test holds;
    the namespace is not looked at (every object is in the test's one namespace)."""

    def __init__(self, objs: list[dict[str, Any]]) -> None:
        self.objs = objs

    def get(self, ns: str, name: str) -> dict[str, Any] | None:
        return next((o for o in self.objs if o["metadata"]["name"] == name), None)

    def list(self, ns: str) -> list[dict[str, Any]]:
        return list(self.objs)
