"""Errors as Kubernetes ``Status`` objects.

Every failure the API server answers is an ``APIError`` carrying the HTTP code, the Kubernetes
``reason`` and the ``details`` a client expects (name, group, kind, causes with field paths), the
way k8s.io/apimachinery/pkg/api/errors builds them. ``status_body`` renders one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Cause:
    """One reason an object is invalid, with the field path it concerns (``spec.x.y``)."""

    field: str
    message: str
    reason: str = "FieldValueInvalid"

    def to_dict(self) -> dict[str, Any]:
        out = {"reason": self.reason, "message": self.message, "field": self.field}
        if not self.field:  # a cause about no field in particular, as upstream omits it
            del out["field"]
        return out


@dataclass
class APIError(Exception):
    """An error answer: HTTP ``code``, Kubernetes ``reason`` and a human ``message``."""

    code: int
    reason: str
    message: str
    name: str = ""
    group: str = ""
    kind: str = ""
    causes: list[Cause] = field(default_factory=list)
    retry_after_s: int = 0  # details.retryAfterSeconds and the Retry-After header

    def __str__(self) -> str:
        return f"{self.code} {self.reason}: {self.message}"

    def status(self) -> dict[str, Any]:
        return status_body(self)


def status_body(err: APIError) -> dict[str, Any]:
    """The ``Status`` object for ``err``."""
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": err.message,
        "reason": err.reason,
        "code": err.code,
    }
    details: dict[str, Any] = {}
    if err.name:
        details["name"] = err.name
    if err.group:
        details["group"] = err.group
    if err.kind:
        details["kind"] = err.kind
    if err.causes:
        details["causes"] = [c.to_dict() for c in err.causes]
    if err.retry_after_s:
        details["retryAfterSeconds"] = err.retry_after_s
    if details:
        body["details"] = details
    return body


def qualified(resource: str, group: str) -> str:
    """``configmaps`` or ``inferenceservices.serving.kserve.io``, as Kubernetes names them."""
    return f"{resource}.{group}" if group else resource


def not_found(resource: str, group: str, name: str) -> APIError:
    return APIError(
        404, "NotFound", f'{qualified(resource, group)} "{name}" not found', name, group, resource
    )


def already_exists(resource: str, group: str, name: str) -> APIError:
    return APIError(
        409,
        "AlreadyExists",
        f'{qualified(resource, group)} "{name}" already exists',
        name,
        group,
        resource,
    )


def conflict(resource: str, group: str, name: str, detail: str) -> APIError:
    return APIError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {qualified(resource, group)} "{name}": {detail}',
        name,
        group,
        resource,
    )


def invalid(kind: str, group: str, name: str, causes: list[Cause]) -> APIError:
    what = f"{kind}.{group}" if group else kind
    parts = [f"{c.field}: {c.message}" if c.field else c.message for c in causes]
    joined = parts[0] if len(parts) == 1 else "[" + ", ".join(parts) + "]"
    return APIError(
        422, "Invalid", f'{what} "{name}" is invalid: {joined}', name, group, kind, causes
    )


def bad_request(message: str) -> APIError:
    return APIError(400, "BadRequest", message)


def method_not_allowed(message: str) -> APIError:
    return APIError(405, "MethodNotAllowed", message)


def unsupported_media_type(content_type: str, allowed: list[str]) -> APIError:
    return APIError(
        415,
        "UnsupportedMediaType",
        f"the body of the request was in an unknown format - accepted media types include: "
        f"{', '.join(allowed)} (got {content_type!r})",
    )


def expired(message: str) -> APIError:
    return APIError(410, "Expired", message)


def unauthorized() -> APIError:
    return APIError(401, "Unauthorized", "Unauthorized")


def too_large(limit_bytes: int) -> APIError:
    return APIError(
        413, "RequestEntityTooLarge", f"Request entity too large: limit is {limit_bytes}"
    )


def too_large_resource_version(requested: int, current: int) -> APIError:
    """504 for a read at a resourceVersion the server has not reached (upstream's
    storage.NewTooLargeResourceVersionError as the watch cache answers it, retry after 1 s)."""
    return APIError(
        504,
        "Timeout",
        f"Timeout: Too large resource version: {requested}, current: {current}",
        causes=[Cause("", "Too large resource version", "ResourceVersionTooLarge")],
        retry_after_s=1,
    )
