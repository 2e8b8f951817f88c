"""The ingress routes every path and method of a known host to its revision, as Knative's does;
for an InferenceService's revision a KServe model path naming another model is answered 404.
A client that goes away while its request waits at the activator takes the request with it.

A real ``Ingress`` on 127.0.0.1 with a directory of revisions whose one ready replica each is a
recording target (no replica processes), and one revision at zero (the activator buffers): what
reaches the target, and what the ingress answers itself.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

import aiohttp
import pytest
from dataplane_testkit import RecordingTarget as BufferedTarget
from dataplane_testkit import wait_until
from multidict import CIMultiDict

from autoscaler.clock import ManualClock
from autoscaler.runtime.activator import Activator, Target
from autoscaler.runtime.ingress import Ingress
from autoscaler.runtime.proxy import ProxyRequest, ProxyResponse
from autoscaler.runtime.routing import RouteTable, TrafficTarget
from autoscaler.runtime.spec import RevisionKey

ISVC = RevisionKey("default", "iris-predictor-00001")
FUNCTION = RevisionKey("default", "event-log-00001")
ZERO = RevisionKey("default", "cold-predictor-00001")
ISVC_HOST = "iris-predictor.default.example.com"
FUNCTION_HOST = "event-log.default.example.com"
ZERO_HOST = "cold-predictor.default.example.com"


@dataclass
class RecordingTarget:
    """A ready replica that records what it is sent and answers 200 with the path."""

    name: str
    seen: list[tuple[str, str]] = field(default_factory=list)

    async def forward(
        self, request: ProxyRequest, proxied: bool = False, deadline: float | None = None
    ) -> ProxyResponse:
        self.seen.append((request.method, request.path_qs))
        headers = CIMultiDict({"Content-Type": "application/json"})
        return ProxyResponse(200, headers, json.dumps({"path": request.path_qs}).encode())


class Directory:
    def __init__(self) -> None:
        self.targets = {ISVC: RecordingTarget("iris"), FUNCTION: RecordingTarget("event-log")}

    def model_name(self, key: RevisionKey) -> str | None:
        return {ISVC: "iris", FUNCTION: "event-log", ZERO: "cold"}.get(key)

    def direct_targets(self, key: RevisionKey) -> Sequence[Target]:
        return [self.targets[key]] if key in self.targets else []  # ZERO: at zero

    def kserve_paths(self, key: RevisionKey) -> bool:
        return key != FUNCTION


@pytest.fixture
async def ingress() -> AsyncIterator[tuple[Ingress, Directory]]:
    routes = RouteTable()
    routes.set_route(ISVC_HOST, [TrafficTarget(ISVC, 100)])
    routes.set_route(FUNCTION_HOST, [TrafficTarget(FUNCTION, 100)])
    routes.set_route(ZERO_HOST, [TrafficTarget(ZERO, 100)])
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
    # The model server's other endpoints reach it too, as through Knative's ingress.
    (ISVC_HOST, "GET", "/metrics", 200, True),
    (ISVC_HOST, "GET", "/v1/models", 200, True),
    (ISVC_HOST, "GET", "/v2/models/iris/versions/1", 200, True),
    (ISVC_HOST, "POST", "/v2/models/iris/versions/1/infer", 200, True),
    (ISVC_HOST, "GET", "/v2/models/iris/versions/1/ready", 200, True),
    (ISVC_HOST, "POST", "/v2/repository/index", 200, True),
    (ISVC_HOST, "GET", "/events", 200, True),
    # A model route naming another model: the model server's 404, answered here.
    (ISVC_HOST, "POST", "/v1/models/other:predict", 404, False),
    (ISVC_HOST, "GET", "/v1/models/iris:predict", 404, False),  # model-ready of "iris:predict"
    (ISVC_HOST, "POST", "/v2/models/other/infer", 404, False),
    # The model server answers a versioned path (501) and a method a route does not take (405).
    (ISVC_HOST, "POST", "/v2/models/other/versions/1/infer", 200, True),
    (ISVC_HOST, "PUT", "/v1/models/other:predict", 200, True),
    ("unknown.default.example.com", "GET", "/metrics", 404, False),
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


async def test_a_client_that_leaves_takes_its_buffered_request_with_it(
    ingress: tuple[Ingress, Directory],
) -> None:
    server, _ = ingress
    activator = server.activator

    async def post() -> None:
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                server.url + "/v1/models/cold:predict", json={}, headers={"Host": ZERO_HOST}
            ) as answer,
        ):
            await answer.read()

    client = asyncio.create_task(post())
    await wait_until(lambda: activator.queued(ZERO) == 1, timeout_s=5, what="buffered")
    assert activator.in_flight(ZERO) == 1
    client.cancel()  # the client gives up: its connection closes
    await wait_until(
        lambda: activator.queued(ZERO) == 0 and activator.in_flight(ZERO) == 0,
        timeout_s=5,
        what="the request to leave the activator",
    )
    target = BufferedTarget("cold-a")
    activator.set_targets(ZERO, [target], 0)  # the cold start completes
    stat = activator.report()[ZERO]
    # it was reported when it came (the revision's first request: at once); the period has
    # nothing more, and nothing in flight
    assert stat.request_count == 0 and stat.average_concurrent_requests == 0
    assert target.served == 0
