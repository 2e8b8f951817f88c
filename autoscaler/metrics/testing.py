"""A real Prometheus server for tests: Debian's ``prometheus`` started on a free loopback port
with a generated configuration, either fixed targets or HTTP service discovery (one-machine
mode's admin server serves its replicas as ``/sd/replicas``).

Blocking on purpose (tests call it from a thread or before their event loop matters);
``PrometheusServer.query`` is a plain HTTP GET of the instant-query API.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "PROMETHEUS",
    "PrometheusServer",
    "free_port",
    "http_sd_config",
    "prometheus_installed",
    "start_prometheus",
    "static_config",
]

PROMETHEUS = "/usr/bin/prometheus"


def prometheus_installed() -> bool:
    return shutil.which(PROMETHEUS) is not None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _global(interval_s: float) -> str:
    return f"global:\n  scrape_interval: {interval_s:g}s\n  scrape_timeout: {interval_s:g}s\n"


def static_config(targets: Sequence[str], interval_s: float = 1.0) -> str:
    """Scrape ``targets`` (``host:port``) every ``interval_s``."""
    listed = ", ".join(f'"{t}"' for t in targets)
    return (
        _global(interval_s) + "scrape_configs:\n  - job_name: queue-proxy\n"
        f"    static_configs:\n      - targets: [{listed}]\n"
    )


def http_sd_config(sd_url: str, interval_s: float = 1.0, refresh_s: float = 1.0) -> str:
    """Scrape whatever ``sd_url`` (Prometheus HTTP SD) lists, re-read every ``refresh_s``."""
    return (
        _global(interval_s) + "scrape_configs:\n  - job_name: queue-proxy\n"
        "    http_sd_configs:\n"
        f"      - url: {json.dumps(sd_url)}\n        refresh_interval: {refresh_s:g}s\n"
    )


@dataclass
class PrometheusServer:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def query(self, promql: str, timeout_s: float = 5.0) -> list[dict[str, Any]]:
        """An instant query's result vector (raises on an error answer)."""
        url = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:
            body = json.loads(resp.read())
        if body.get("status") != "success":
            raise RuntimeError(f"Prometheus rejected {promql!r}: {body}")
        return list(body["data"]["result"])

    def log_tail(self, chars: int = 2000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_prometheus(
    workdir: Path,
    config_text: str,
    *extra_args: str,
    port: int | None = None,
    name: str = "prometheus",
    timeout_s: float = 30.0,
) -> PrometheusServer:
    """Start Prometheus with ``config_text`` under ``workdir``; return once ``/-/ready`` says so.

    Raises ``RuntimeError`` with the end of its log if it exits or is not ready in time.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / f"{name}.yml"
    config.write_text(config_text)
    port = port or free_port()
    log_path = workdir / f"{name}.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={config}",
                f"--storage.tsdb.path={workdir / f'{name}-tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
                *extra_args,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = PrometheusServer(f"http://127.0.0.1:{port}", proc, log_path)
    deadline = time.monotonic() + timeout_s
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"prometheus exited: {server.log_tail()}")
        try:
            with urllib.request.urlopen(f"{server.url}/-/ready", timeout=2) as resp:
                if resp.status == 200:
                    return server
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"prometheus not ready within {timeout_s:g} s: {server.log_tail()}")
        time.sleep(0.1)
