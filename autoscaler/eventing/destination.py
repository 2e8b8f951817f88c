"""Destinations: turning a ``subscriber`` or ``deadLetterSink`` block into a URL.

Mirrors Knative's ``duckv1.Destination`` resolution (``pkg/resolver`` in knative/pkg): an
absolute ``uri`` is used as is; a ``ref`` is resolved to the referent's address by the caller's
resolver, and a relative ``uri`` beside it is joined onto that address. The resolver is a plain
callback ``resolve(ref, namespace) -> url | None`` so the broker core needs no API server.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urljoin, urlsplit

__all__ = ["Resolver", "resolve_destination"]

Resolver = Callable[[Mapping[str, Any], str], str | None]


def resolve_destination(
    destination: Mapping[str, Any] | None, namespace: str, resolve: Resolver
) -> str | None:
    """The URL of ``destination``, or None when it cannot be resolved (yet)."""
    if not destination:
        return None
    uri = destination.get("uri")
    ref = destination.get("ref")
    if ref:
        # A ref without a namespace means the namespace of the object holding it.
        full_ref = dict(ref)
        full_ref.setdefault("namespace", namespace)
        base = resolve(full_ref, str(full_ref["namespace"]))
        if base is None:
            return None
        if uri:
            return urljoin(base if base.endswith("/") else base + "/", str(uri).lstrip("/"))
        return base
    if uri and _is_absolute(str(uri)):
        return str(uri)
    return None


def _is_absolute(uri: str) -> bool:
    parts = urlsplit(uri)
    return bool(parts.scheme) and bool(parts.netloc)
