"""The ingress decides paths per revision: an InferenceService's revision takes only KServe's
paths, a Knative Service of its own (a function) every path and method.

A real ``Ingress`` on 127.0.0.1 with a directory of two revisions whose one ready replica each
is a recording target (no replica processes): what reaches the target, and what the ingress
answers itself.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

import aiohttp
import pytest
from multidict import CIMultiDict

from autoscaler.clock import ManualClock
from autoscaler.runtime.activator import Activator, Target
from autoscaler.runtime.ingress import Ingress
from autoscaler.runtime.proxy import ProxyRequest, ProxyResponse
from autoscaler.runtime.routing import RouteTable, TrafficTarget
from autoscaler.runtime.spec import RevisionKey

ISVC = RevisionKey("default", "iris-predictor-00001")
FUNCTION = RevisionKey("default", "event-log-00001")
ISVC_HOST = "iris-predictor.default.example.com"
FUNCTION_HOST = "event-log.default.example.com"


@dataclass
class RecordingTarget:
    """A ready replica that records what it is sent and answers 200 with the path."""

    name: str
    seen: list[tuple[str, str]] = field(default_factory=list)

    async def forward(self, request: ProxyRequest, proxied: bool = False) -> ProxyResponse:
        self.seen.append((request.method, request.path_qs))
        headers = CIMultiDict({"Content-Type": "application/json"})
        return ProxyResponse(200, headers, json.dumps({"path": request.path_qs}).encode())


class Directory:
    def __init__(self) -> None:
        self.targets = {ISVC: RecordingTarget("iris"), FUNCTION: RecordingTarget("event-log")}

    def model_name(self, key: RevisionKey) -> str | None:
        return {ISVC: "iris", FUNCTION: "event-log"}.get(key)

    def direct_targets(self, key: RevisionKey) -> Sequence[Target]:
        return [self.targets[key]]

    def kserve_paths(self, key: RevisionKey) -> bool:
        return key != FUNCTION


@pytest.fixture
async def ingress() -> AsyncIterator[tuple[Ingress, Directory]]:
    routes = RouteTable()
    routes.set_route(ISVC_HOST, [TrafficTarget(ISVC, 100)])
    routes.set_route(FUNCTION_HOST, [TrafficTarget(FUNCTION, 100)])
    directory = Directory()
    server = Ingress(routes, directory, Activator(ManualClock()))
    await server.start()
    yield server, directory
    await server.close()


CASES = [
    # (host, method, path, status, reaches the replica)
    (FUNCTION_HOST, "GET", "/events", 200, True),
    (FUNCTION_HOST, "GET", "/health/readiness", 200, True),
    (FUNCTION_HOST, "POST", "/", 200, True),
    (FUNCTION_HOST, "DELETE", "/anything/at/all?x=1", 200, True),
    (FUNCTION_HOST, "POST", "/v1/models/other:predict", 200, True),
    (ISVC_HOST, "POST", "/v1/models/iris:predict", 200, True),
    (ISVC_HOST, "GET", "/v2/health/ready", 200, True),
    (ISVC_HOST, "GET", "/events", 404, False),
    (ISVC_HOST, "GET", "/health/readiness", 404, False),
    (ISVC_HOST, "POST", "/v1/models/other:predict", 404, False),
]


@pytest.mark.parametrize(
    ("host", "method", "path", "status", "reaches"),
    CASES,
    ids=[f"{c[0].split('.')[0]}-{c[1]}-{c[2]}" for c in CASES],
)
async def test_paths_are_decided_per_revision(
    ingress: tuple[Ingress, Directory],
    host: str,
    method: str,
    path: str,
    status: int,
    reaches: bool,
) -> None:
    server, directory = ingress
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, server.url + path, headers={"Host": host}) as answer,
    ):
        body = await answer.json()
    assert answer.status == status, body
    seen = [s for t in directory.targets.values() for s in t.seen]
    assert seen == ([(method, path)] if reaches else [])
    if not reaches:
        assert "error" in body
