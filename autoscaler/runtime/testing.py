"""Running one-machine mode from tests: ``running_onemachine(tmp_path)`` starts API server, data
plane and serving controller on their own event loop in a background thread, so a test can use
kubectl, the kubernetes client and blocking HTTP clients against it."""

from __future__ import annotations

import asyncio
import gc
import os
import subprocess
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from autoscaler.runtime.onemachine import OneMachine, OneMachineSettings

T = TypeVar("T")


class RunningOneMachine:
    def __init__(self, machine: OneMachine, loop: asyncio.AbstractEventLoop, home: Path) -> None:
        self.machine = machine
        self.loop = loop
        self.home = home

    @property
    def ingress_url(self) -> str:
        return self.machine.ingress_url

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def kubectl(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            "KUBECONFIG": str(self.machine.kubeconfig_path),
            "HOME": str(self.home),
        }
        return subprocess.run(
            ["kubectl", *args],
            input=input,
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )

    def api_client(self) -> Any:
        return self.machine.api_client()

    def wait(self, cond: Callable[[], bool], timeout_s: float, what: str) -> None:
        """Poll a condition on real processes with a deadline."""
        deadline = time.monotonic() + timeout_s
        while not cond():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
            time.sleep(0.05)


@contextmanager
def running_onemachine(tmp_path: Path, **settings: Any) -> Iterator[RunningOneMachine]:
    # One-machine mode runs in this process, beside everything earlier tests left on the heap:
    # a full garbage collection walking all of it stalls the data plane (p95 spikes of a few
    # hundred ms late in a long test session). Frozen objects are not walked again.
    gc.collect()
    gc.freeze()
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="onemachine", daemon=True)
    thread.start()
    machine = OneMachine(OneMachineSettings(data_dir=tmp_path / "data", **settings))
    running = RunningOneMachine(machine, loop, tmp_path)
    running.call(machine.start())
    try:
        yield running
    finally:
        try:
            running.call(machine.stop())
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)
            loop.close()
            gc.unfreeze()
