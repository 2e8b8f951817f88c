"""``modelscale up`` again on the same data dir: revisions that had scaled to zero stay there.

Knative applies initial-scale only until a revision first becomes ready (the PodAutoscaler's
``ScaleTargetInitialized``); a restart must not start a replica for every stored revision.
"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest

from autoscaler.examples.build import build_iris
from autoscaler.runtime.spec import RevisionKey
from autoscaler.runtime.testing import RunningOneMachine, running_onemachine

pytestmark = pytest.mark.slow

KEY = RevisionKey("default", "iris-predictor-00001")
SETTINGS = {
    "autoscaler_config": {"scale-to-zero-grace-period": "6s"},
    "tuner": False,
    "eventing": False,
}


def revision_status(om: RunningOneMachine) -> dict[str, object]:
    out = om.kubectl("get", "revision", KEY.name, "-o", "json")
    return json.loads(out.stdout).get("status", {}) if out.returncode == 0 else {}


def predict(om: RunningOneMachine) -> tuple[int, object]:
    req = urllib.request.Request(
        om.ingress_url + "/v1/models/iris:predict",
        data=json.dumps({"instances": [[5.1, 3.5, 1.4, 0.2]]}).encode(),
        headers={"Host": "iris.default.example.com", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=60) as resp:
        return resp.status, json.loads(resp.read())


def test_a_revision_at_zero_stays_at_zero_after_a_restart(tmp_path: Path) -> None:
    model, _ = build_iris(tmp_path / "models")
    isvc = {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {
            "name": "iris",
            "namespace": "default",
            "annotations": {"autoscaling.knative.dev/window": "6s"},
        },
        "spec": {
            "predictor": {"minReplicas": 0, "sklearn": {"storageUri": f"file://{model.parent}"}}
        },
    }
    with running_onemachine(tmp_path, **SETTINGS) as om:
        applied = om.kubectl("apply", "-f", "-", input=json.dumps(isvc))
        assert applied.returncode == 0, applied.stderr
        om.wait(lambda: revision_status(om).get("actualReplicas") == 1, 60, "initial scale")
        om.wait(lambda: revision_status(om).get("actualReplicas") == 0, 90, "scaled to zero")

    with running_onemachine(tmp_path, **SETTINGS) as om:
        controller = om.machine.controller
        assert controller is not None
        om.wait(lambda: controller.scaling.last_decision(KEY) is not None, 30, "a decision")
        decision = controller.scaling.last_decision(KEY)
        assert decision is not None and decision.desired_pods == 0, decision
        status = om.machine.dataplane.status(KEY)
        assert (status.desired, status.actual) == (0, 0)
        assert status.activator_in_path
        # still at zero, not gone: the first request brings a replica up as before the restart
        assert predict(om) == (200, {"predictions": [0]})
