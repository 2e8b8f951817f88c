"""The API server restarted under the one-machine tuner: the tuner keeps running through the
outage, its informers relist once the server is back, and a change made afterwards is seen and
acted on (a new bound on the ModelScaler reaches the live revision's annotation)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from autoscaler.kube.reconciler import MODELSCALERS
from autoscaler.runtime.testing import RunningOneMachine, running_onemachine
from tests.e2e.e2e_kit import (
    ClosedLoad,
    annotations,
    apply,
    capacity_isvc,
    get_obj,
    model_scaler,
    wait_ready,
)

pytestmark = [pytest.mark.slow, pytest.mark.e2e, pytest.mark.timeout(300)]

TARGET = "autoscaling.knative.dev/target"
REVISION = "back-predictor-00001"


@pytest.fixture
def om(tmp_path: Path) -> Iterator[RunningOneMachine]:
    config = {
        "tick_period_s": "2", "stale_after_s": "10", "min_apply_interval_s": "2",
        "min_requests": "10", "min_bin_requests": "10",
    }  # fmt: skip
    with running_onemachine(tmp_path, tuner_config=config) as running:
        yield running


def target(om: RunningOneMachine) -> float:
    return float(annotations(get_obj(om, "revision", REVISION)).get(TARGET) or 100)


def test_api_server_restarted_under_the_tuner(om: RunningOneMachine) -> None:
    apply(om, capacity_isvc("back", capacity=2, base_ms=100))
    wait_ready(om, "back")
    load = ClosedLoad(om, "back", 4).start()
    tuner = om.machine.tuner
    try:
        apply(om, model_scaler("back", 150, updateMode="Auto"))
        om.wait(lambda: target(om) < 100, 90, "the tuner applied a lower target")

        api = om.machine.apiserver
        om.call(api.stop())
        ticks = tuner.ticks
        # The loop survives the outage: it keeps ticking (and failing to read or write).
        om.wait(lambda: tuner.ticks >= ticks + 2, 60, "two ticks with the API server down")
        om.call(api.start())

        # A change made after the restart: the informers must relist to see it.
        patch = {"spec": {"target": {"max": 1}}}
        out = om.kubectl("patch", "modelscaler", "back", "--type=merge", "-p", json.dumps(patch))
        assert out.returncode == 0, out.stderr
        om.wait(
            lambda: (
                ((tuner.cached(MODELSCALERS, "default", "back") or {}).get("spec") or {})
                .get("target", {})
                .get("max")
                == 1
            ),
            60,
            "the tuner's cache has the new bound",
        )
        om.wait(lambda: target(om) <= 1, 60, "the bound applied to the live revision")
    finally:
        load.stop()
    status = get_obj(om, "modelscaler", "back")["status"]
    assert (
        status["observedGeneration"] == get_obj(om, "modelscaler", "back")["metadata"]["generation"]
    )
    errors = tuner.metrics.value("modelscale_tuner_errors_total", {"kind": "config"})
    print("RECOVERY", {"config_read_errors_during_outage": errors, "target_now": target(om)})
