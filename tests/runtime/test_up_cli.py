"""``modelscale up`` refusing to start: a port in use, a data dir another instance holds.

Either way one line on stderr that names the port or the dir, exit code 1, no traceback and no
kubeconfig written.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from autoscaler.apiserver.testing import running_apiserver

pytestmark = pytest.mark.slow


def up(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "autoscaler.cli", "up", "--data-dir", str(data), *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120)


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
