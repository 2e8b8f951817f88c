"""Knative's delivery semantics through the API-driven path of one-machine mode.

A Broker and Triggers applied with kubectl, events posted to the Broker's address from its status
with the cloudevents SDK, recording sinks (``tests/eventing/fakes.py``) as subscribers and as the
dead-letter sink. Each Trigger's ``delivery`` is ``retry: 2``, ``backoffPolicy: linear``,
``backoffDelay: PT0.2S``: attempts at 0, 0 and 0.2 s (linear waits ``delay × retries made``).

- a subscriber that fails twice then succeeds gets three attempts, the last one answered 2xx,
  and the event once delivered: nothing reaches the dead-letter sink;
- a subscriber that always fails gets three attempts, then the event lands in the dead-letter
  sink with Knative's ``knativeerrordest`` / ``knativeerrorcode`` / ``knativeerrordata``;
- the Broker's ingress answers 400 for an invalid event and 404 for an unknown broker.
"""

from __future__ import annotations

import base64
import itertools
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from cloudevents.conversion import to_binary
from cloudevents.http import CloudEvent

from autoscaler.clock import SystemClock
from autoscaler.runtime.testing import RunningOneMachine, running_onemachine
from tests.eventing.fakes import Subscriber
from tests.eventing.test_e2e_eventing_onemachine import get_obj, ready, send

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

DELIVERY = {"retry": 2, "backoffPolicy": "linear", "backoffDelay": "PT0.2S"}
# Linear backoff of PT0.2S: the waits before retries 1 and 2.
EXPECTED_WAITS_S = (0.0, 0.2)
FLAKY, BROKEN = "modelscale.test.flaky", "modelscale.test.broken"


def broker() -> dict[str, Any]:
    return {
        "apiVersion": "eventing.knative.dev/v1",
        "kind": "Broker",
        "metadata": {"name": "default", "namespace": "default"},
    }


def trigger(name: str, event_type: str, subscriber: str, dead_letter: str) -> dict[str, Any]:
    return {
        "apiVersion": "eventing.knative.dev/v1",
        "kind": "Trigger",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "broker": "default",
            "filter": {"attributes": {"type": event_type}},
            "subscriber": {"uri": subscriber},
            "delivery": {**DELIVERY, "deadLetterSink": {"uri": dead_letter}},
        },
    }


@pytest.fixture(scope="module")
def om(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningOneMachine]:
    with running_onemachine(tmp_path_factory.mktemp("delivery"), tuner=False) as running:
        yield running


@pytest.fixture(scope="module")
def sinks(om: RunningOneMachine) -> Iterator[dict[str, Subscriber]]:
    clock = SystemClock()
    started = {
        "flaky": Subscriber(clock=clock, statuses=[500, 503]),
        "broken": Subscriber(clock=clock, statuses=[503] * 20),
        "dead": Subscriber(clock=clock),
    }
    for sub in started.values():
        om.call(sub.start())
    yield started
    for sub in started.values():
        om.call(sub.stop())


@pytest.fixture(scope="module")
def broker_url(om: RunningOneMachine, sinks: dict[str, Subscriber]) -> str:
    dead = sinks["dead"].url
    docs = [
        broker(),
        trigger("flaky", FLAKY, sinks["flaky"].url, dead),
        trigger("broken", BROKEN, sinks["broken"].url, dead),
    ]
    out = om.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(docs))
    assert out.returncode == 0, out.stderr
    for name in ("flaky", "broken"):
        om.wait(lambda n=name: ready(get_obj(om, "trigger", n)), 60, f"trigger {name} ready")
    return str(get_obj(om, "broker", "default")["status"]["address"]["url"])


def sample(om: RunningOneMachine, name: str, trigger_name: str) -> float:
    labels = {"namespace": "default", "broker": "default", "trigger": trigger_name}
    return om.machine.registry.get_sample_value(name, labels) or 0.0


def waits(sub: Subscriber) -> list[float]:
    times = [r.at for r in sub.received]
    return [b - a for a, b in itertools.pairwise(times)]


def test_retries_are_honoured_and_the_event_is_delivered_once(
    om: RunningOneMachine, broker_url: str, sinks: dict[str, Subscriber]
) -> None:
    flaky, dead = sinks["flaky"], sinks["dead"]
    event = CloudEvent({"type": FLAKY, "source": "/tests/delivery", "id": "flaky-1"}, {"n": 1})
    assert send(broker_url, event) == 202
    om.wait(
        lambda: sample(om, "modelscale_broker_events_delivered_total", "flaky") == 1,
        60,
        "the flaky subscriber's 2xx recorded",
    )
    assert flaky.ids() == ["flaky-1"] * 3, "two failures, then the one success"
    for waited, expected in zip(waits(flaky), EXPECTED_WAITS_S, strict=True):
        assert waited >= expected - 0.02, (waits(flaky), EXPECTED_WAITS_S)
    assert json.loads(flaky.received[-1].event.get_data()) == {"n": 1}
    assert sample(om, "modelscale_broker_delivery_retries_total", "flaky") == 2
    assert "flaky-1" not in dead.ids()
    counts = om.call(om.machine.eventing.core.delivery_counts())
    assert counts.get("subscriber", 0) == 0 and counts.get("dead_letter", 0) == 0, counts


def test_a_subscriber_that_always_fails_lands_in_the_dead_letter_sink(
    om: RunningOneMachine, broker_url: str, sinks: dict[str, Subscriber]
) -> None:
    broken, dead = sinks["broken"], sinks["dead"]
    event = CloudEvent({"type": BROKEN, "source": "/tests/delivery", "id": "broken-1"}, {"n": 2})
    assert send(broker_url, event) == 202
    om.wait(lambda: "broken-1" in dead.ids(), 60, "the event in the dead-letter sink")
    assert broken.ids() == ["broken-1"] * 3, "the first attempt and retry: 2"
    for waited, expected in zip(waits(broken), EXPECTED_WAITS_S, strict=True):
        assert waited >= expected - 0.02, (waits(broken), EXPECTED_WAITS_S)
    letter = next(r.event for r in dead.received if r.event["id"] == "broken-1")
    attributes = letter.get_attributes()
    assert attributes["type"] == BROKEN and attributes["source"] == "/tests/delivery"
    assert attributes["knativeerrordest"] == broken.url
    assert attributes["knativeerrorcode"] == "503"
    assert base64.b64decode(attributes["knativeerrordata"]) == b"scripted answer"
    assert json.loads(letter.get_data()) == {"n": 2}
    assert sample(om, "modelscale_broker_events_dead_lettered_total", "broken") == 1
    assert sample(om, "modelscale_broker_delivery_retries_total", "broken") == 2


def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return int(answer.status), answer.read().decode()
    except urllib.error.HTTPError as err:
        return int(err.code), err.read().decode()


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        ({"Content-Type": "application/json"}, b'{"no": "ce attributes"}'),
        (
            {"ce-specversion": "1.0", "ce-type": "t", "ce-id": "x", "Content-Type": "text/plain"},
            b"no source",
        ),
        ({"Content-Type": "application/cloudevents+json"}, b"{not json"),
    ],
    ids=["no-attributes", "binary-without-source", "structured-not-json"],
)
def test_an_invalid_event_is_answered_400(
    broker_url: str, headers: dict[str, str], body: bytes
) -> None:
    status, text = post(broker_url, body, headers)
    assert status == 400, text
    assert "invalid CloudEvent" in text


def test_an_unknown_broker_is_answered_404(broker_url: str) -> None:
    url = broker_url.rsplit("/", 1)[0] + "/no-such-broker"
    event = CloudEvent({"type": FLAKY, "source": "/tests/delivery", "id": "nowhere"}, {})
    headers, body = to_binary(event)
    status, text = post(url, body, dict(headers))
    assert status == 404, text
    assert json.loads(text) == {"error": "broker default/no-such-broker does not exist"}
    assert send(url, event, structured=True) == 404
