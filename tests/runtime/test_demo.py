"""The main job, ``modelscale demo``, end to end as a user runs it: it applies its manifests with
kubectl, wakes the gpu model from zero, and under load the tuner writes a lower target on the
same revision; every request is answered and it exits 0."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slow


def test_demo_runs_clean_and_the_tuner_lowers_the_target(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "autoscaler.cli", "demo", "--data-dir", str(tmp_path),
         "--load-seconds", "15"],
        capture_output=True, text=True, timeout=420, check=False,
        env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    text = out.stdout + out.stderr
    assert out.returncode == 0, text[-3000:]
    # the manifests it applied are written for the user to read and reuse
    docs = list(yaml.safe_load_all((tmp_path / "demo" / "models.yaml").read_text()))
    assert [(d["kind"], d["metadata"]["name"]) for d in docs] == [
        ("InferenceService", "iris"),
        ("InferenceService", "gpu"),
        ("ModelScaler", "gpu"),
    ]
    done = re.search(r"done: (\d+) requests answered, (\d+) failed", text)
    assert done is not None, text[-3000:]
    assert int(done.group(1)) > 50 and int(done.group(2)) == 0
    tuned = re.search(
        r"gpu-predictor-00001 \(the same revision throughout\): target 100 \(Knative's default\) "
        r"-> ([0-9.]+) \(the tuner's\); replicas 0 -> (\d+) -> 0",
        " ".join(text.split()),
    )
    assert tuned is not None, text[-3000:]
    assert float(tuned.group(1)) < 100 and int(tuned.group(2)) >= 1
    assert "gpu-predictor-00002" not in text  # the tuner made no new revision
