"""Fixtures for the data-plane tests: the example models, replica specs, a shared DataPlane.

Integration tests start real KServe model server processes on 127.0.0.1 and wait on conditions
with deadlines (``wait_until``); never a bare sleep.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import pytest_asyncio

from autoscaler.examples.build import build_iris
from autoscaler.runtime.dataplane import DataPlane
from autoscaler.runtime.pool import PoolSettings
from autoscaler.runtime.spec import PredictorKind, ReplicaSpec

NS = "default"
CAPACITY_CLASS = "autoscaler.examples.capacity:CapacityLimitedModel"


@pytest.fixture(scope="session")
def iris_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path, _ = build_iris(tmp_path_factory.mktemp("models"))
    return path.parent


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


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def dataplane(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[DataPlane]:
    dp = DataPlane(
        pool_settings=FAST_POOL,
        log_dir=tmp_path_factory.mktemp("logs"),
        max_body_bytes=64 * 1024,
    )
    await dp.start()
    try:
        yield dp
    finally:
        await dp.close()
