"""Helpers shared by the data-plane tests: the example models' replica specs, a deadline wait,
the one fake of this topic and a request builder.

Test files import them from here, not from ``conftest``: another test directory's conftest
module has the same name."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from multidict import CIMultiDict

from autoscaler.runtime.pool import PoolSettings
from autoscaler.runtime.proxy import ProxyRequest, ProxyResponse, UpstreamUnavailable
from autoscaler.runtime.spec import PredictorKind, ReplicaSpec

NS = "default"
CAPACITY_CLASS = "autoscaler.examples.capacity:CapacityLimitedModel"


def iris_spec(iris_dir: Path, revision: str, uri_form: str = "file") -> ReplicaSpec:
    uri = f"file://{iris_dir}" if uri_form == "file" else str(iris_dir / "model.joblib")
    return ReplicaSpec(NS, revision, "iris", PredictorKind.SKLEARN, storage_uri=uri)


def capacity_spec(revision: str, capacity: int = 4, base_latency_ms: float = 50) -> ReplicaSpec:
    return ReplicaSpec(
        NS,
        revision,
        "gpu",
        PredictorKind.CUSTOM,
        model_class=CAPACITY_CLASS,
        args=(f"--capacity={capacity}",),
        env=(("MODEL_BASE_LATENCY_MS", str(base_latency_ms)),),
    )


def host_of(name: str) -> str:
    return f"{name}.{NS}.example.com"


async def wait_until(
    cond: Callable[[], bool], timeout_s: float = 30.0, what: str = "condition"
) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not cond():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        await asyncio.sleep(0.01)


FAST_POOL = PoolSettings(
    ready_timeout_s=30, drain_timeout_s=5, term_timeout_s=5, backoff_initial_s=0.2
)


class RecordingTarget:
    """A stand-in replica for activator unit tests (the one fake of this topic).

    It answers 200 after ``release`` is set, records concurrency, and can refuse like a dead
    replica (``UpstreamUnavailable`` with sent=False).
    """

    def __init__(self, name: str, refuse: bool = False) -> None:
        self.name = name
        self.refuse = refuse
        self.in_flight = 0
        self.max_in_flight = 0
        self.served = 0
        self.proxied: list[bool] = []
        self.deadlines: list[float | None] = []
        self.release = asyncio.Event()
        self.release.set()

    async def forward(
        self, request: ProxyRequest, proxied: bool = False, deadline: float | None = None
    ) -> ProxyResponse:
        if self.refuse:
            raise UpstreamUnavailable(f"{self.name} refused", sent=False)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        self.proxied.append(proxied)
        self.deadlines.append(deadline)
        try:
            await self.release.wait()
        finally:
            self.in_flight -= 1
        self.served += 1
        return ProxyResponse(200, CIMultiDict({"X-Target": self.name}), self.name.encode())


def request() -> ProxyRequest:
    return ProxyRequest("POST", "/v1/models/m:predict", CIMultiDict(), b"{}")


def requests_served(metrics_text: str) -> float:
    """Sum of ``revision_request_count`` over all label sets, from Prometheus text."""
    from prometheus_client.parser import text_string_to_metric_families

    total = 0.0
    for family in text_string_to_metric_families(metrics_text):
        if family.name == "revision_request_count":
            total += sum(s.value for s in family.samples if s.name.endswith("_total"))
    return total
