"""Fixtures for the API server tests: one running server per module, raw HTTP helpers."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from autoscaler.apiserver.testing import RunningAPIServer, running_apiserver

SHARED = Path(
    os.environ.get("MODELSCALE_SHARED", Path(__file__).resolve().parents[2] / ".." / "shared")
)
UPSTREAM_CRDS = SHARED / "crds"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningAPIServer]:
    with running_apiserver(tmp_path_factory.mktemp("apiserver")) as handle:
        yield handle


class Raw:
    """Plain HTTP against the server, for what kubectl and the client hide."""

    def __init__(self, handle: RunningAPIServer) -> None:
        self.handle = handle
        self.session = requests.Session()
        self.session.trust_env = False  # a CA bundle from the environment would override ours
        self.session.verify = str(handle.server.ca_path)
        self.session.headers["Authorization"] = f"Bearer {handle.token}"

    def __call__(self, method: str, path: str, **kw: Any) -> requests.Response:
        return self.session.request(method, self.handle.url + path, timeout=30, **kw)

    def close(self) -> None:
        self.session.close()


@pytest.fixture
def raw(server: RunningAPIServer) -> Iterator[Raw]:
    r = Raw(server)
    yield r
    r.close()
