"""Fixtures for the controller tests: the embedded API server, a model "as the runtime would
deploy it", and the topic's one stand-in, ``FakeMetricSource``.

``FakeMetricSource`` speaks the ``MetricSource`` protocol and closes the loop the way a real
KPA would: each replica runs at the utilization share of the target in force, and the latency
at that concurrency follows a curve with a knee (flat up to ``knee_concurrency``, quadratic
above); ``offered_concurrency`` caps each replica's concurrency at the load offered (light
traffic: the KPA's aim is not reached). Tests take it down (``down``), drop revisions from it (``missing``) or change the curve.

``relay`` and ``relayed``: a relay in front of the server that can go silent, and a client
that connects through it (``tests/kube/relay.py``).
"""

from __future__ import annotations

import bisect
import copy
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from kubernetes import client

from autoscaler.apiserver.testing import RunningAPIServer, running_apiserver
from autoscaler.clock import ManualClock
from autoscaler.kube.controller import Controller
from autoscaler.kube.leader import ElectionConfig, LeaderElector
from autoscaler.kube.retry import Backoff
from autoscaler.kube.settings import ControllerSettings
from autoscaler.metrics.source import MetricsUnavailable, RevisionKey, RevisionRef
from autoscaler.tuner.observation import LATENCY_BUCKETS_MS, N_LATENCY_COUNTS, RevisionObservation
from tests.kube.kit import MODELSCALER_CRD, TICK_S, Cluster
from tests.kube.relay import Relay


@dataclass
class FakeMetricSource:
    """Deterministic observations of every revision asked about (see the module docstring)."""

    knee_concurrency: float = 10.0
    base_latency_ms: float = 50.0
    requests_per_tick: int = 400
    interval_s: float = TICK_S
    offered_concurrency: float | None = None  # per replica; None: the KPA's aim is reached
    down: bool = False
    missing: set[str] = field(default_factory=set)
    calls: list[list[RevisionRef]] = field(default_factory=list)
    sample_period_s: float = 0.0  # the controller samples between ticks when above 0
    # each sampling round: its time and the revisions with their replicas' pods
    sampled: list[tuple[float, list[tuple[str, tuple[str, ...]]]]] = field(default_factory=list)
    last_reasons: dict[RevisionKey, str] = field(default_factory=dict)  # why a revision is missing

    def latency_ms(self, concurrency: float) -> float:
        over = max(1.0, concurrency / self.knee_concurrency)
        return self.base_latency_ms * over * over

    async def observe(
        self, revisions: Sequence[RevisionRef], now_s: float
    ) -> dict[RevisionKey, RevisionObservation | None]:
        self.calls.append(list(revisions))
        if self.down:
            raise MetricsUnavailable("the fake source is down")
        out: dict[RevisionKey, RevisionObservation | None] = {}
        self.last_reasons = {}
        for ref in revisions:
            if ref.revision in self.missing:
                out[ref.key] = None
                self.last_reasons[ref.key] = "the fake source has no series of it"
                continue
            target = ref.applied_target or 100.0
            concurrency = target * ref.target_utilization_percentage / 100.0
            if self.offered_concurrency is not None:
                concurrency = min(concurrency, self.offered_concurrency)
            counts = [0.0] * N_LATENCY_COUNTS
            counts[bisect.bisect_left(LATENCY_BUCKETS_MS, self.latency_ms(concurrency))] = float(
                self.requests_per_tick
            )
            out[ref.key] = RevisionObservation(
                t_s=now_s,
                interval_s=self.interval_s,
                ready_replicas=max(1, ref.ready_replicas or 1),
                avg_concurrency_per_replica=concurrency,
                request_count=self.requests_per_tick,
                latency_counts=tuple(counts),
                applied_target=ref.applied_target,
                target_utilization_percentage=ref.target_utilization_percentage,
            )
        return out

    async def sample(self, revisions: Sequence[RevisionRef], now_s: float) -> None:
        self.sampled.append(
            (now_s, [(r.revision, tuple(p.pod for p in r.replicas)) for r in revisions])
        )

    async def close(self) -> None:
        return None


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningAPIServer]:
    with running_apiserver(tmp_path, extra_crds=[MODELSCALER_CRD]) as handle:
        yield handle


@pytest.fixture
def cluster(server: RunningAPIServer) -> Cluster:
    c = Cluster(server)
    c.tuner_config({"tick_period_s": str(TICK_S), "min_apply_interval_s": "0"})
    return c


@pytest.fixture
def source() -> FakeMetricSource:
    return FakeMetricSource()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(start=1000.0)


FAST_BACKOFF = Backoff(base_s=0.01, cap_s=0.2, attempts=4)


@pytest.fixture
async def make_controller(
    cluster: Cluster, source: FakeMetricSource, clock: ManualClock
) -> AsyncIterator[Callable[..., Controller]]:
    """Build started, synced controllers; all are stopped at the end."""
    made: list[Controller] = []

    def make(
        *,
        identity: str = "tuner-0",
        election: ElectionConfig | None = None,
        clock_: Any = None,
        **settings: Any,
    ) -> Controller:
        s = ControllerSettings(
            identity=identity, write_backoff=FAST_BACKOFF, request_timeout_s=5.0, **settings
        )
        the_clock = clock_ or clock
        elector = (
            LeaderElector(cluster.server.api_client(), election, the_clock) if election else None
        )
        ctl = Controller(cluster.server.api_client(), source, s, the_clock, elector=elector)
        ctl.start()
        assert ctl.wait_synced(10.0)
        made.append(ctl)
        return ctl

    yield make
    for ctl in made:
        await ctl.stop(release=False)


@pytest.fixture
def relay(server: RunningAPIServer) -> Iterator[Relay]:
    url = urlparse(server.url)
    r = Relay((url.hostname or "127.0.0.1", url.port or 443))
    yield r
    r.close()


@pytest.fixture
def relayed(server: RunningAPIServer, relay: Relay) -> Iterator[Any]:
    """An ``ApiClient`` of the server that connects through the relay."""
    configuration = copy.deepcopy(server.api_client().configuration)
    configuration.host = f"https://127.0.0.1:{relay.port}"
    # the kubeconfig's refresh hook would set the server's own address again at each request
    configuration.refresh_api_key_hook = None
    api = client.ApiClient(configuration)
    yield api
    api.close()
