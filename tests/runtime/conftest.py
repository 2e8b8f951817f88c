"""Fixtures for the data-plane tests: the example model built once, a shared DataPlane (the
specs, waits and fakes the tests share are in ``dataplane_testkit``).

Integration tests start real KServe model server processes on 127.0.0.1 and wait on conditions
with deadlines (``wait_until``); never a bare sleep.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from dataplane_testkit import FAST_POOL

from autoscaler.examples.build import build_iris
from autoscaler.runtime.dataplane import DataPlane


@pytest.fixture(scope="session")
def iris_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path, _ = build_iris(tmp_path_factory.mktemp("models"))
    return path.parent


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
