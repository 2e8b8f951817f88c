"""batch-predict end to end on one-machine mode: its Knative Service from the samples, request
events posted at once to a Broker, one predict call to the iris InferenceService per batch, and
one reply per event (correlated to its request, carrying its own predictions) at a recording
sink through a second Trigger.

The batch window is widened to 500 ms (``BATCH_WINDOW_MS``) so that events the Broker delivers
side by side, or that the activator releases together when the function wakes from zero, share a
batch. Predict calls are counted at the iris replica's queue-proxy (``revision_request_count``).
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction
from typing import Any

import pytest
from cloudevents.http import CloudEvent
from prometheus_client.parser import text_string_to_metric_families

from autoscaler.clock import SystemClock
from autoscaler.examples.build import build_iris
from autoscaler.runtime.spec import RevisionKey
from autoscaler.runtime.testing import RunningOneMachine, running_onemachine
from tests.eventing.fakes import Subscriber
from tests.eventing.test_e2e_eventing_onemachine import apply, get_obj, load, ready, send

pytestmark = [pytest.mark.slow, pytest.mark.e2e, pytest.mark.timeout(300)]

REQUEST, RESPONSE = "modelscale.inference.request", "modelscale.inference.response"
IRIS = RevisionKey("default", "iris-predictor-00001")
# Iris flowers and the class the sample model predicts for each.
FLOWERS = [([6.8, 2.8, 4.8, 1.4], 1), ([5.1, 3.5, 1.4, 0.2], 0), ([6.7, 3.0, 5.2, 2.3], 2)]
EVENTS = 6


def batch_service() -> dict[str, Any]:
    (ksvc,) = [d for d in load("functions.yaml") if d["metadata"]["name"] == "batch-predict"]
    template = ksvc["spec"]["template"]
    template["metadata"]["annotations"]["autoscaling.knative.dev/window"] = "6s"
    env = template["spec"]["containers"][0]["env"]
    for var in env:
        if var["name"] == "BATCH_WINDOW_MS":
            var["value"] = "500"
    return dict(ksvc)


def trigger(name: str, event_type: str, subscriber: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "eventing.knative.dev/v1",
        "kind": "Trigger",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "broker": "default",
            "filter": {"attributes": {"type": event_type}},
            "subscriber": subscriber,
        },
    }


@pytest.fixture(scope="module")
def om(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningOneMachine]:
    with running_onemachine(tmp_path_factory.mktemp("batch"), tuner=False) as running:
        yield running


@pytest.fixture(scope="module")
def sink(om: RunningOneMachine) -> Iterator[Subscriber]:
    subscriber = om.call(Subscriber(clock=SystemClock()).start())
    yield subscriber
    om.call(subscriber.stop())


@pytest.fixture(scope="module")
def broker_url(
    om: RunningOneMachine, sink: Subscriber, tmp_path_factory: pytest.TempPathFactory
) -> str:
    model, _ = build_iris(tmp_path_factory.mktemp("models"))
    isvc = {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": "iris", "namespace": "default"},
        "spec": {
            "predictor": {
                "minReplicas": 1,
                "maxReplicas": 1,
                "sklearn": {"storageUri": f"file://{model.parent}"},
            }
        },
    }
    function_ref = {"ref": {"apiVersion": "serving.knative.dev/v1", "kind": "Service",
                            "name": "batch-predict"}}  # fmt: skip
    broker = {
        "apiVersion": "eventing.knative.dev/v1",
        "kind": "Broker",
        "metadata": {"name": "default", "namespace": "default"},
    }
    apply(
        om,
        [
            isvc,
            batch_service(),
            broker,
            trigger("batch-requests", REQUEST, function_ref),
            trigger("batch-responses", RESPONSE, {"uri": sink.url}),
        ],
    )
    om.wait(lambda: ready(get_obj(om, "isvc", "iris")), 120, "iris ready")
    om.wait(lambda: ready(get_obj(om, "ksvc", "batch-predict")), 120, "batch-predict ready")
    for name in ("batch-requests", "batch-responses"):
        om.wait(lambda n=name: ready(get_obj(om, "trigger", n)), 60, f"trigger {name} ready")
    return str(get_obj(om, "broker", "default")["status"]["address"]["url"])


def predict_calls(om: RunningOneMachine) -> float:
    """Requests the iris replica's queue-proxy has let through."""
    (replica,) = om.machine.dataplane.pool(IRIS).ready_targets()
    url = f"http://127.0.0.1:{replica.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as answer:
        text = answer.read().decode()
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "revision_request_count"
        for sample in family.samples
        if sample.name == "revision_request_count_total"
    )


def test_events_are_batched_into_one_predict_call_per_batch(
    om: RunningOneMachine, broker_url: str, sink: Subscriber
) -> None:
    before = predict_calls(om)
    requests = {
        f"batch-{n}": CloudEvent(
            {"type": REQUEST, "source": "/tests/batch", "id": f"batch-{n}"},
            {"model": "iris", "instances": [FLOWERS[n % len(FLOWERS)][0]]},
        )
        for n in range(EVENTS)
    }
    with ThreadPoolExecutor(EVENTS) as pool:
        statuses = list(pool.map(lambda e: send(broker_url, e), requests.values()))
    assert statuses == [202] * EVENTS

    def replies() -> dict[str, CloudEvent]:
        return {
            str(r.event["modelscalecorrelation"]): r.event
            for r in list(sink.received)
            if r.event["type"] == RESPONSE
        }

    om.wait(lambda: set(replies()) == set(requests), 120, "a reply to every request")
    sizes: list[int] = []
    for n in range(EVENTS):
        reply = replies()[f"batch-{n}"]
        assert json.loads(reply.get_data()) == {
            "model": "iris",
            "predictions": [FLOWERS[n % len(FLOWERS)][1]],
        }
        sizes.append(int(reply["modelscalebatchsize"]))
    # Each batch of size k answers k events: the number of batches is the sum of 1/k.
    batches = sum(Fraction(1, k) for k in sizes)
    assert batches.denominator == 1, sizes
    assert batches < EVENTS, f"no two events shared a batch: {sizes}"
    om.wait(lambda: predict_calls(om) - before >= batches, 30, "the queue-proxy's counts")
    assert predict_calls(om) - before == batches, sizes
