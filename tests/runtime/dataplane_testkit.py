"""Helpers shared by the data-plane tests: the one fake of this topic and a request builder."""

from __future__ import annotations

import asyncio

from multidict import CIMultiDict

from autoscaler.runtime.proxy import ProxyRequest, ProxyResponse, UpstreamUnavailable


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
