"""Eventing on one-machine mode end to end, with the samples applied by kubectl.

A binary and a structured ``modelscale.inference.request`` posted to the Broker with the
cloudevents SDK go through the ``inference-requests`` Trigger to the predict-on-event function
(a Knative Service run as a replica process), which calls the iris InferenceService at its
cluster address; the function's reply re-enters the Broker and the ``inference-responses``
Trigger brings it to a recording sink. Filters that match and do not; the function scaled to
zero wakes on an event; Broker and Trigger status; an unknown function is refused at admission.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from cloudevents.conversion import to_binary, to_structured
from cloudevents.http import CloudEvent

from autoscaler.clock import SystemClock
from autoscaler.examples.build import build_iris
from autoscaler.runtime.spec import RevisionKey
from autoscaler.runtime.testing import RunningOneMachine, running_onemachine
from tests.eventing.fakes import Subscriber

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

SAMPLES = Path(__file__).resolve().parents[2] / "manifests" / "samples" / "eventing"
FUNCTION_REVISION = RevisionKey("default", "predict-on-event-00001")
REQUEST = "modelscale.inference.request"
RESPONSE = "modelscale.inference.response"


def load(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((SAMPLES / name).read_text()) if d]


def apply(om: RunningOneMachine, docs: list[dict[str, Any]]) -> None:
    out = om.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(docs))
    assert out.returncode == 0, out.stderr


def get_obj(om: RunningOneMachine, kind: str, name: str) -> dict[str, Any]:
    out = om.kubectl("get", kind, name, "-o", "json")
    return json.loads(out.stdout) if out.returncode == 0 else {}


def ready(obj: dict[str, Any]) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (obj.get("status") or {}).get("conditions", [])
    )


def send(url: str, event: CloudEvent, structured: bool = False) -> int:
    headers, body = (to_structured if structured else to_binary)(event)
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as err:
        return int(err.code)


def request_event(event_id: str, data: dict[str, Any]) -> CloudEvent:
    return CloudEvent({"type": REQUEST, "source": "/tests/e2e", "id": event_id}, data)


@pytest.fixture(scope="module")
def om(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningOneMachine]:
    tmp = tmp_path_factory.mktemp("eventing")
    with running_onemachine(
        tmp, tuner=False, autoscaler_config={"scale-to-zero-grace-period": "6s"}
    ) as running:
        yield running


@pytest.fixture(scope="module")
def sink(om: RunningOneMachine) -> Iterator[Subscriber]:
    subscriber = om.call(Subscriber(clock=SystemClock()).start())
    yield subscriber
    om.call(subscriber.stop())


@pytest.fixture(scope="module")
def deployed(
    om: RunningOneMachine, sink: Subscriber, tmp_path_factory: pytest.TempPathFactory
) -> str:
    """The samples applied, with the response Trigger sent to the recording sink and the
    function's stable window shortened; the Broker's address."""
    model, _ = build_iris(tmp_path_factory.mktemp("models"))
    isvc = {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": "iris", "namespace": "default"},
        "spec": {
            "predictor": {"minReplicas": 1, "sklearn": {"storageUri": f"file://{model.parent}"}}
        },
    }
    functions = load("functions.yaml")
    for ksvc in functions:
        annotations = ksvc["spec"]["template"]["metadata"]["annotations"]
        annotations["autoscaling.knative.dev/window"] = "6s"
    triggers = load("triggers.yaml")
    for trigger in triggers:
        if trigger["metadata"]["name"] == "inference-responses":
            trigger["spec"]["subscriber"] = {"uri": sink.url}
    apply(om, [isvc, *functions, *load("broker.yaml"), *triggers])
    om.wait(lambda: ready(get_obj(om, "isvc", "iris")), 120, "iris ready")
    om.wait(lambda: ready(get_obj(om, "ksvc", "predict-on-event")), 120, "function ready")
    om.wait(lambda: ready(get_obj(om, "broker", "default")), 60, "broker ready")
    for name in ("inference-requests", "inference-responses", "inference-errors"):
        om.wait(lambda n=name: ready(get_obj(om, "trigger", n)), 60, f"trigger {name} ready")
    return str(get_obj(om, "broker", "default")["status"]["address"]["url"])


def responses(sink: Subscriber) -> dict[str, CloudEvent]:
    """Responses at the sink by the request id they answer."""
    return {
        str(r.event["modelscalecorrelation"]): r.event
        for r in list(sink.received)
        if r.event["type"] == RESPONSE and "modelscalecorrelation" in r.event.get_attributes()
    }


def test_status_of_broker_and_triggers(om: RunningOneMachine, deployed: str) -> None:
    assert deployed == f"{om.machine.eventing.url}/default/default"
    assert deployed.startswith("http://127.0.0.1:")
    trigger = get_obj(om, "trigger", "inference-requests")
    assert trigger["status"]["subscriberUri"] == (
        "http://predict-on-event.default.svc.cluster.local"
    )
    table = om.kubectl("get", "brokers")
    assert deployed in table.stdout and "True" in table.stdout


@pytest.mark.parametrize("structured", [False, True], ids=["binary", "structured"])
def test_request_reaches_model_and_reply_reaches_sink(
    om: RunningOneMachine, deployed: str, sink: Subscriber, structured: bool
) -> None:
    event_id = f"req-{'structured' if structured else 'binary'}"
    data = {"model": "iris", "instances": [[6.8, 2.8, 4.8, 1.4], [5.1, 3.5, 1.4, 0.2]]}
    assert send(deployed, request_event(event_id, data), structured=structured) == 202
    om.wait(lambda: event_id in responses(sink), 120, f"the response to {event_id}")
    reply = responses(sink)[event_id]
    payload = reply.get_data()
    payload = json.loads(payload) if isinstance(payload, (bytes, str)) else payload
    assert payload["predictions"] == [1, 0]
    assert reply["modelscalemodel"] == "iris"


def test_filters_deliver_only_matching_events(
    om: RunningOneMachine, deployed: str, sink: Subscriber
) -> None:
    matching = CloudEvent({"type": RESPONSE, "source": "/tests/e2e", "id": "direct-response"}, {})
    unmatched = CloudEvent(
        {"type": "modelscale.inference.other", "source": "/tests/e2e", "id": "no-trigger"}, {}
    )
    assert send(deployed, unmatched) == 202
    assert send(deployed, matching) == 202
    om.wait(lambda: "direct-response" in sink.ids(), 60, "the matching event at the sink")
    counts = om.call(om.machine.eventing.core.delivery_counts())
    assert "no-trigger" not in sink.ids()
    # The unmatched event was stored with no delivery at all: nothing pending for it.
    assert counts.get("subscriber", 0) == 0, counts


def test_function_scaled_to_zero_wakes_on_an_event(
    om: RunningOneMachine, deployed: str, sink: Subscriber
) -> None:
    dataplane = om.machine.dataplane
    om.wait(lambda: dataplane.status(FUNCTION_REVISION).ready == 0, 120, "function at zero")
    data = {"model": "iris", "instances": [[6.7, 3.0, 5.2, 2.3]]}
    assert send(deployed, request_event("after-zero", data)) == 202
    om.wait(lambda: "after-zero" in responses(sink), 120, "the response after waking")
    assert dataplane.status(FUNCTION_REVISION).ready >= 1 or "after-zero" in responses(sink)


def test_unknown_function_is_refused_at_admission(om: RunningOneMachine) -> None:
    ksvc = {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Service",
        "metadata": {"name": "nope", "namespace": "default"},
        "spec": {"template": {"spec": {"containers": [{"image": "ghcr.io/x/no-such-fn:1"}]}}},
    }
    out = om.kubectl("apply", "-f", "-", input=json.dumps(ksvc))
    assert out.returncode != 0
    assert "no-such-fn" in out.stderr and "not a local function" in out.stderr


def http_get(om: RunningOneMachine, url: str) -> tuple[int, Any]:
    """GET a Knative Service's URL through the one-machine ingress (its host as Host)."""
    host = urllib.parse.urlsplit(url).netloc
    path = urllib.parse.urlsplit(url).path or "/"
    request = urllib.request.Request(om.ingress_url + path, headers={"Host": host})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return int(answer.status), json.loads(answer.read())
    except urllib.error.HTTPError as err:
        return int(err.code), json.loads(err.read() or b"null")


def test_event_log_lists_events_through_the_ingress(om: RunningOneMachine, deployed: str) -> None:
    """A Knative Service gets every path and method: event-log's ``GET /events`` and its health
    endpoint answer through the ingress; the same path on the InferenceService's host reaches its
    model server too, which answers its own 404."""
    url = str(get_obj(om, "ksvc", "event-log")["status"]["url"])
    error = CloudEvent(
        {"type": "modelscale.inference.error", "source": "/tests/e2e", "id": "logged-error"},
        {"reason": "a test error"},
    )
    assert send(deployed, error) == 202

    def logged() -> list[str]:
        status, events = http_get(om, url + "/events")
        return [e["id"] for e in events] if status == 200 else []

    om.wait(lambda: "logged-error" in logged(), 60, "the error event in event-log's /events")
    assert http_get(om, url + "/health/readiness") == (200, {"status": "ok"})
    isvc_url = str(get_obj(om, "isvc", "iris")["status"]["url"])
    status, body = http_get(om, isvc_url + "/events")
    assert status == 404, body  # the model server's own answer
