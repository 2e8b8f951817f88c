"""Running the API server from tests: ``running_apiserver(tmp_path)`` starts it on its own event
loop in a background thread and yields a handle with ``url``, ``token``, ``kubeconfig_path``,
``api_client()`` (a configured ``kubernetes.client.ApiClient``) and ``kubectl(*args)``
(``/usr/bin/kubectl`` with that kubeconfig and a private discovery cache).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import threading
from collections.abc import Coroutine, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from autoscaler.apiserver.server import APIServer

T = TypeVar("T")
KUBECTL = shutil.which("kubectl", path="/usr/bin") or shutil.which("kubectl") or "/usr/bin/kubectl"


class RunningAPIServer:
    """A started server on a background event loop."""

    def __init__(self, server: APIServer, loop: asyncio.AbstractEventLoop, cache_dir: Path) -> None:
        self.server = server
        self.loop = loop
        self.cache_dir = cache_dir

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def token(self) -> str:
        return self.server.token

    @property
    def kubeconfig_path(self) -> Path:
        return self.server.kubeconfig_path

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        """Run a coroutine on the server's loop and wait for its result."""
        fut: Future[T] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return fut.result(timeout)

    def api_client(self) -> Any:
        """A ``kubernetes.client.ApiClient`` configured from the kubeconfig."""
        from kubernetes import client, config

        configuration = client.Configuration()
        config.load_kube_config(
            config_file=str(self.kubeconfig_path), client_configuration=configuration
        )
        return client.ApiClient(configuration)

    def kubectl(
        self, *args: str, input: str | None = None, timeout: float = 60.0
    ) -> subprocess.CompletedProcess[str]:
        """Run kubectl against this server; never raises on a non-zero exit."""
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig_path), "HOME": str(self.cache_dir)}
        return subprocess.run(
            [KUBECTL, f"--cache-dir={self.cache_dir / 'kube-cache'}", *args],
            input=input,
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
            check=False,
        )

    def kubectl_cmd(self, *args: str) -> tuple[list[str], dict[str, str]]:
        """The argv and environment to start kubectl yourself (for ``get -w``)."""
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig_path), "HOME": str(self.cache_dir)}
        return [KUBECTL, f"--cache-dir={self.cache_dir / 'kube-cache'}", *args], env


@contextmanager
def running_apiserver(tmp_path: Path, **kw: Any) -> Iterator[RunningAPIServer]:
    """Start an ``APIServer`` on ``tmp_path/apiserver`` (or ``data_dir=``) in a thread."""
    data_dir = Path(kw.pop("data_dir", tmp_path / "apiserver"))
    loop = asyncio.new_event_loop()
    started = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=run, name="apiserver", daemon=True)
    thread.start()
    started.wait()
    server = APIServer(data_dir, **kw)
    handle = RunningAPIServer(server, loop, tmp_path)
    try:
        handle.call(server.start(), timeout=120.0)
        yield handle
    finally:
        try:
            handle.call(server.stop())
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)
            loop.close()


def open_crd(plural: str, kind: str, group: str = "example.com") -> dict[str, Any]:
    """A namespaced CRD of one served and stored version, ``v1``, that keeps any field (its
    schema preserves unknown fields): for tests of what the server does with custom resources
    whatever their content."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {
            "group": group,
            "names": {"plural": plural, "kind": kind},
            "scope": "Namespaced",
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "x-kubernetes-preserve-unknown-fields": True,
                        }
                    },
                }
            ],
        },
    }
