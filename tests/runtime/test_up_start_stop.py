"""``modelscale up`` refusing to start (a port in use, a data dir another instance holds: one
line on stderr naming it, exit code 1, no traceback, no kubeconfig written) and stopping (a
second Ctrl-C exits at once)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from autoscaler.apiserver.testing import running_apiserver
from autoscaler.runtime.cli import StopOnSignal


def up(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "autoscaler.cli", "up", "--data-dir", str(data), *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_a_port_in_use_is_one_line_naming_it(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = up(data, "--ingress-port", str(port), "--no-eventing")
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"modelscale up: port {port} on 127.0.0.1 is in use (--ingress-port)"
    ]
    assert not (data / "kubeconfig").exists()


@pytest.mark.slow
def test_a_second_instance_on_the_data_dir_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with running_apiserver(tmp_path, data_dir=data) as first:
        kubeconfig = first.kubeconfig_path.read_text()
        proc = up(data, "--ingress-port", "0", "--no-eventing")
        assert first.kubeconfig_path.read_text() == kubeconfig
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"modelscale up: data dir {data} is in use by pid {os.getpid()}"
    ]


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_the_second_signal_kills_the_children_and_exits_at_once(sig: int, code: int) -> None:
    calls: list[object] = []
    stop = asyncio.Event()
    on_signal = StopOnSignal(stop, kill=lambda: calls.append("kill"), exit=calls.append)
    on_signal(sig)
    assert stop.is_set() and calls == []  # the first one stops in order
    on_signal(sig)
    assert calls == ["kill", code]
