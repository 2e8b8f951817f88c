"""The request log: what each authenticated request asked for, in the terms RBAC authorizes
(verb, API group, resource, subresource, namespace, name, user), as k8s.io/apiserver's
``pkg/endpoints/request/requestinfo.go`` derives them from the method and the path.

Hooks get one ``RequestRecord`` per request, before it is served; tests use them to check that a
client's requests are exactly what its RBAC rules allow. Non-resource paths (``/version``,
``/apis``, ``/openapi/v3``) are recorded with ``resource == ""`` and the path.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

# The kubeconfig's user: the server knows one bearer token, and this is who holds it.
TOKEN_USER = "modelscale"

_METHOD_VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch"}


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One request as an authorizer sees it."""

    verb: str  # get list watch create update patch delete deletecollection
    api_group: str  # "" for the core group
    api_version: str
    resource: str  # the plural; "" for a non-resource path
    subresource: str
    namespace: str
    name: str
    user: str
    path: str

    @property
    def is_resource(self) -> bool:
        return bool(self.resource)


AuditHook = Callable[[RequestRecord], None]


def request_record(
    method: str, path: str, query: Mapping[str, str], user: str = TOKEN_USER
) -> RequestRecord:
    """The record of ``method path?query`` (requestinfo.go's rules, resource paths only)."""
    parts = [p for p in path.split("/") if p]
    if parts[:1] == ["api"] and len(parts) >= 2:
        group, version, rest = "", parts[1], parts[2:]
    elif parts[:1] == ["apis"] and len(parts) >= 3:
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return RequestRecord(method.lower(), "", "", "", "", "", "", user, path)
    watching = False
    if rest[:1] == ["watch"]:
        watching, rest = True, rest[1:]
    namespace = ""
    # /namespaces/<ns>/<resource>... is namespaced; /namespaces/<ns>[/status] is the Namespace.
    if len(rest) >= 3 and rest[0] == "namespaces" and rest[2] not in ("status", "finalize"):
        namespace, rest = rest[1], rest[2:]
    elif len(rest) >= 2 and rest[0] == "namespaces":
        namespace = rest[1]
    resource = rest[0] if rest else ""
    name = rest[1] if len(rest) > 1 else ""
    subresource = rest[2] if len(rest) > 2 else ""
    if method in ("GET", "HEAD"):
        if watching or query.get("watch") in ("true", "1"):
            verb = "watch"
        else:
            verb = "get" if name else "list"
    elif method == "DELETE":
        verb = "delete" if name else "deletecollection"
    else:
        verb = _METHOD_VERBS.get(method, method.lower())
    return RequestRecord(verb, group, version, resource, subresource, namespace, name, user, path)
