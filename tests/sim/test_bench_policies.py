"""bench/policies.py without its traces: one line naming the missing path and
MODELSCALE_SHARED, exit code 2, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def run_bench(shared: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MODELSCALE_SHARED": str(shared), "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, str(REPO / "bench" / "policies.py"), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_a_missing_functions_trace_is_one_line_naming_the_path(tmp_path: Path) -> None:
    out = run_bench(tmp_path)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert str(tmp_path / "traces" / "azure_functions_2019") in lines[0]
    assert "MODELSCALE_SHARED" in lines[0]
    assert "Traceback" not in out.stderr and out.stdout == ""


def test_a_missing_llm_trace_is_named_before_anything_runs(tmp_path: Path) -> None:
    (tmp_path / "traces" / "azure_functions_2019").mkdir(parents=True)
    out = run_bench(tmp_path)
    assert out.returncode == 2
    assert str(tmp_path / "traces" / "AzureLLMInferenceTrace_code.csv") in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    out = run_bench(tmp_path, "--skip-llm")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "functions_run.csv" in out.stderr or "functions_inv.csv" in out.stderr, out.stderr
