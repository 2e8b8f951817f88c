"""The tuner's ``modelscale.scaling.changed`` CloudEvents through the one-machine Broker.

One-machine mode with the tuner's sink set to the Broker's address (``/default/default``; the
sink is the notifier's attribute, set once the Broker's port is known), a Trigger filtering
``type: modelscale.scaling.changed`` to a recording sink, and a ModelScaler in Auto on an
InferenceService whose bounds force a change: ``target.max: 5`` under Knative's default target
of 100, and ``keepAlive`` fixed to 120 s (a 60 s retention), which the revision does not have yet. The tuner ticks
every second (``tick_period_s`` in its ConfigMap); its first applied change reaches the sink as
a CloudEvent naming the model, the revision, and the old and new values.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from autoscaler.clock import SystemClock
from autoscaler.examples.build import build_iris
from autoscaler.runtime.testing import RunningOneMachine, running_onemachine
from tests.eventing.fakes import Subscriber
from tests.eventing.test_e2e_eventing_onemachine import get_obj, ready

pytestmark = [pytest.mark.slow, pytest.mark.e2e, pytest.mark.timeout(300)]

CHANGED = "modelscale.scaling.changed"
TARGET = "autoscaling.knative.dev/target"
RETENTION = "autoscaling.knative.dev/scale-to-zero-pod-retention-period"
REVISION = "iris-predictor-00001"


def objects(model_dir: Path, sink_url: str) -> list[dict[str, Any]]:
    return [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "modelscale-tuner", "namespace": "default"},
            "data": {"tick_period_s": "1", "stale_after_s": "10"},
        },
        {
            "apiVersion": "eventing.knative.dev/v1",
            "kind": "Broker",
            "metadata": {"name": "default", "namespace": "default"},
        },
        {
            "apiVersion": "eventing.knative.dev/v1",
            "kind": "Trigger",
            "metadata": {"name": "scaling-changes", "namespace": "default"},
            "spec": {
                "broker": "default",
                "filter": {"attributes": {"type": CHANGED}},
                "subscriber": {"uri": sink_url},
            },
        },
        {
            "apiVersion": "serving.kserve.io/v1beta1",
            "kind": "InferenceService",
            "metadata": {"name": "iris", "namespace": "default"},
            "spec": {
                "predictor": {
                    "minReplicas": 1,
                    "sklearn": {"storageUri": f"file://{model_dir}"},
                }
            },
        },
    ]


SCALER = {
    "apiVersion": "modelscale.dev/v1alpha1",
    "kind": "ModelScaler",
    "metadata": {"name": "iris", "namespace": "default"},
    "spec": {
        "targetRef": {"name": "iris"},
        "objective": {"percentile": 95, "latencyMs": 1000},
        "updateMode": "Auto",
        "target": {"max": 5},
        "keepAlive": {"policy": "fixed", "fixedSeconds": 120},
    },
}


@pytest.fixture
def om(tmp_path: Path) -> Iterator[RunningOneMachine]:
    with running_onemachine(tmp_path) as running:
        yield running


def apply(om: RunningOneMachine, docs: list[dict[str, Any]]) -> None:
    out = om.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(docs))
    assert out.returncode == 0, out.stderr


def changes(sink: Subscriber) -> list[Any]:
    return [r.event for r in list(sink.received) if r.event["type"] == CHANGED]


def test_an_applied_change_reaches_the_sink_through_the_broker(
    om: RunningOneMachine, tmp_path: Path
) -> None:
    sink = om.call(Subscriber(clock=SystemClock()).start())
    try:
        model, _ = build_iris(tmp_path / "models")
        apply(om, objects(model.parent, sink.url))
        om.wait(lambda: ready(get_obj(om, "trigger", "scaling-changes")), 60, "trigger ready")
        broker_url = str(get_obj(om, "broker", "default")["status"]["address"]["url"])
        assert broker_url == f"{om.machine.eventing.url}/default/default"
        om.machine.tuner.notifier.sink_url = broker_url
        om.wait(lambda: ready(get_obj(om, "isvc", "iris")), 120, "iris ready")
        before = get_obj(om, "revision", REVISION)["metadata"].get("annotations") or {}

        apply(om, [SCALER])
        om.wait(lambda: bool(changes(sink)), 120, "a modelscale.scaling.changed event")

        event = changes(sink)[0]
        assert event["source"] == "modelscale/tuner"
        assert event["id"] and event["specversion"] == "1.0"
        data = json.loads(event.get_data())
        assert (data["namespace"], data["model"], data["revision"]) == ("default", "iris", REVISION)
        assert data["apply"] == "revision"
        assert data["new"][TARGET] == "5"
        # keepAlive fixed 120 s is Knative's 60 s stable window plus 60 s of retention.
        assert data["new"][RETENTION] == "60s"
        # The old values are what the revision carried before (None: not set).
        assert data["old"] == {k: before.get(k) for k in data["new"]}
        assert data["old"][TARGET] != "5" and data["old"][RETENTION] != "60s"
        assert data["reasons"], "the change says why"
        # What the event says is what the revision now carries.
        live = get_obj(om, "revision", REVISION)["metadata"]["annotations"]
        assert live[TARGET] == data["new"][TARGET]
        assert live[RETENTION] == data["new"][RETENTION]
    finally:
        om.call(sink.stop())
