"""Broker and Trigger status, as the reconciler will write it."""

from __future__ import annotations

from typing import Any

import pytest

from autoscaler.eventing import broker_status, trigger_status
from autoscaler.eventing.routes import InvalidObject, RouteTable
from autoscaler.eventing.status import condition_status
from tests.eventing.fakes import broker_obj, trigger_obj

NOW = 1_700_000_000.0
INGRESS = "http://127.0.0.1:8180"


def conditions(status: dict[str, Any]) -> dict[str, str]:
    return {c["type"]: c["status"] for c in status["conditions"]}


def test_ready_broker_is_addressable_at_its_ingress_path() -> None:
    status = broker_status(broker_obj(), ingress_base_url=INGRESS, dead_letter_uri=None, now=NOW)
    assert status["address"]["url"] == "http://127.0.0.1:8180/models/default"
    assert conditions(status) == {
        "Addressable": "True",
        "DeadLetterSinkResolved": "True",
        "DeliveryValid": "True",
        "Ready": "True",
    }
    assert status["observedGeneration"] == 1


@pytest.mark.parametrize(
    ("delivery", "ingress", "dls_uri", "reason"),
    [
        pytest.param(None, None, None, "NoIngress", id="no-ingress"),
        pytest.param(
            {"backoffDelay": "1s"}, INGRESS, None, "InvalidDelivery", id="bad-backoff-delay"
        ),
        pytest.param(
            {"deadLetterSink": {"ref": {"kind": "Service", "name": "dls"}}},
            INGRESS,
            None,
            "Unable to get the DeadLetterSink's URI",
            id="unresolved-dls",
        ),
    ],
)
def test_broker_not_ready_says_why(
    delivery: Any, ingress: str | None, dls_uri: str | None, reason: str
) -> None:
    status = broker_status(
        broker_obj(delivery=delivery), ingress_base_url=ingress, dead_letter_uri=dls_uri, now=NOW
    )
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", reason)


def ready_broker() -> dict[str, Any]:
    broker = broker_obj()
    broker["status"] = broker_status(
        broker, ingress_base_url=INGRESS, dead_letter_uri=None, now=NOW
    )
    return broker


@pytest.mark.parametrize(
    ("broker", "subscriber_uri", "trigger_delivery", "failing"),
    [
        pytest.param("ready", "http://127.0.0.1:9/", None, None, id="ready"),
        pytest.param(None, "http://127.0.0.1:9/", None, "BrokerReady", id="no-broker"),
        pytest.param("ready", None, None, "SubscriberResolved", id="unresolved-subscriber"),
        pytest.param(
            "ready",
            "http://127.0.0.1:9/",
            {"backoffPolicy": "random"},
            "DeliveryValid",
            id="bad-delivery",
        ),
        pytest.param(
            "ready", "http://127.0.0.1:9/", {"format": "json"}, None, id="structured-format"
        ),
        pytest.param(
            "ready", "http://127.0.0.1:9/", {"format": "xml"}, "DeliveryValid", id="bad-format"
        ),
    ],
)
def test_trigger_conditions(
    broker: str | None, subscriber_uri: str | None, trigger_delivery: Any, failing: str | None
) -> None:
    trigger = trigger_obj("t", "http://127.0.0.1:9/", delivery=trigger_delivery)
    status = trigger_status(
        trigger,
        broker=ready_broker() if broker else None,
        subscriber_uri=subscriber_uri,
        dead_letter_uri=None,
        now=NOW,
    )
    found = conditions(status)
    if failing is None:
        assert set(found.values()) == {"True"}
        assert status["subscriberUri"] == subscriber_uri
    else:
        assert found[failing] == "False"
        assert found["Ready"] == "False"


def test_unchanged_conditions_keep_their_transition_time() -> None:
    first = broker_status(broker_obj(), ingress_base_url=INGRESS, dead_letter_uri=None, now=NOW)
    again = broker_status(
        broker_obj(), ingress_base_url=INGRESS, dead_letter_uri=None, now=NOW + 60, previous=first
    )
    assert again == first
    lost = broker_status(
        broker_obj(), ingress_base_url=None, dead_letter_uri=None, now=NOW + 60, previous=first
    )
    assert condition_status(lost, "Ready") == "False"
    ready = next(c for c in lost["conditions"] if c["type"] == "Ready")
    assert ready["lastTransitionTime"] == "2023-11-14T22:14:20Z"


def test_unknown_delivery_format_is_named_in_the_trigger_condition() -> None:
    ready = ready_of(trigger_obj("t", "http://127.0.0.1:9/", delivery={"format": "avro"}))
    assert ready["status"] == "False"
    assert ready["reason"] == "InvalidDelivery"
    assert ready["message"] == "spec.delivery.format: 'avro' is not one of json, binary"


@pytest.mark.parametrize("name", ["Type", "my-ext", "1st", "my_ext"])
def test_a_filter_attribute_name_that_is_not_a_cloudevents_name_is_refused(name: str) -> None:
    """Knative's webhook refuses names not matching ^[a-z][a-z0-9]*$: the Trigger is refused
    with the name, and says so on its FilterValid condition; it is not matched lower-cased."""
    trigger = trigger_obj("t", "http://127.0.0.1:9/", filter_attributes={name: "x"})
    table = RouteTable()
    table.apply_broker(broker_obj())
    with pytest.raises(InvalidObject, match=f"invalid attribute name {name!r}"):
        table.apply_trigger(trigger)
    assert table.route("models/t") is None
    ready = ready_of(trigger)
    assert (ready["status"], ready["reason"]) == ("False", "InvalidFilter")
    assert f"invalid attribute name {name!r}" in ready["message"]


def ready_of(trigger: dict[str, Any]) -> dict[str, Any]:
    """The Ready condition of ``trigger``'s status on a ready Broker with its subscriber found."""
    status = trigger_status(
        trigger,
        broker=ready_broker(),
        subscriber_uri="http://127.0.0.1:9/",
        dead_letter_uri=None,
        now=NOW,
    )
    return next(c for c in status["conditions"] if c["type"] == "Ready")
