"""The request and response a hop of the data plane forwards, and KServe-style error replies.

Ingress, activator and queue-proxy run in one process and hand requests to each other as
``ProxyRequest`` values (no extra HTTP hop); only the last hop, queue-proxy to replica, and the
queue-proxy's own port speak HTTP. Errors are KServe-shaped: JSON ``{"error": ...}``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from multidict import CIMultiDict, CIMultiDictProxy

# Knative marks requests the activator forwards so the queue-proxy counts them apart.
PROXY_HEADER = "K-Proxy-Request"
PROXY_HEADER_VALUE = "activator"

HOP_BY_HOP = frozenset(
    h.lower()
    for h in (
        "Connection",
        "Keep-Alive",
        "Proxy-Authenticate",
        "Proxy-Authorization",
        "TE",
        "Trailer",
        "Transfer-Encoding",
        "Upgrade",
        "Content-Length",
    )
)
# Host is end to end: Knative's activator and queue-proxy pass the client's Host on to the user
# container (the replica sees the name it was called by, as a redirect's Location needs).


@dataclass(frozen=True)
class ProxyRequest:
    method: str
    path_qs: str
    headers: CIMultiDict[str] | CIMultiDictProxy[str]
    body: bytes


@dataclass(frozen=True)
class ProxyResponse:
    status: int
    headers: CIMultiDict[str]
    body: bytes


class UpstreamUnavailable(Exception):
    """The replica could not be reached or went away; ``sent`` says whether it got the request."""

    def __init__(self, message: str, sent: bool) -> None:
        super().__init__(message)
        self.sent = sent


def forwardable(headers: Iterable[tuple[str, str]] | Mapping[str, str]) -> CIMultiDict[str]:
    """The end-to-end headers of a message (hop-by-hop ones are per connection)."""
    items = headers.items() if isinstance(headers, Mapping) else headers
    return CIMultiDict((k, v) for k, v in items if k.lower() not in HOP_BY_HOP)


def error_response(
    status: int, message: str, extra_headers: Mapping[str, str] | None = None
) -> ProxyResponse:
    headers = CIMultiDict({"Content-Type": "application/json"})
    if extra_headers:
        headers.update(extra_headers)
    # as KServe's model server writes its errors (a FastAPI JSONResponse: compact, UTF-8)
    body = json.dumps({"error": message}, ensure_ascii=False, separators=(",", ":"))
    return ProxyResponse(status, headers, body.encode())
