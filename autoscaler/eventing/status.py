"""Status of Broker and Trigger objects, computed by pure functions for the reconciler to write.

Mirrors the condition sets of Knative Eventing ``pkg/apis/eventing/v1/broker_lifecycle.go`` and
``trigger_lifecycle.go``, reduced to what the embedded broker has: a Broker is Ready when it
is Addressable (its ingress URL is known), its delivery block is valid and its dead-letter sink,
if any, is resolved; a Trigger is Ready when its Broker is Ready, its subscriber is resolved,
its filter and delivery are valid and its dead-letter sink, if any, is resolved. A condition
keeps its ``lastTransitionTime`` while its status does not change, so writing the same status
twice is a no-op the reconciler can detect.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from autoscaler.eventing.delivery import DeliveryConfigError, effective_delivery, parse_delivery
from autoscaler.eventing.filtering import FilterConfigError, attribute_filter

__all__ = ["broker_status", "broker_url", "condition_status", "trigger_status"]


def broker_url(ingress_base_url: str, namespace: str, name: str) -> str:
    """The address events are posted to: ``<ingress>/<namespace>/<broker>``."""
    return f"{ingress_base_url.rstrip('/')}/{namespace}/{name}"


def broker_status(
    broker: Mapping[str, Any],
    *,
    ingress_base_url: str | None,
    dead_letter_uri: str | None,
    now: float,
    previous: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """``status`` of a Broker; ``now`` is wall seconds, ``previous`` the status it has."""
    meta = broker.get("metadata") or {}
    spec = broker.get("spec") or {}
    namespace, name = str(meta.get("namespace", "default")), str(meta.get("name", ""))
    url = broker_url(ingress_base_url, namespace, name) if ingress_base_url else None
    conditions = [
        _cond("Addressable", url is not None, "NoIngress", "the broker ingress is not running"),
        _delivery_condition(lambda: parse_delivery(spec.get("delivery"), where="spec.delivery")),
        _dead_letter_condition((spec.get("delivery") or {}).get("deadLetterSink"), dead_letter_uri),
    ]
    status: dict[str, Any] = {
        "observedGeneration": meta.get("generation", 0),
        "conditions": _with_ready(conditions, previous, now),
    }
    if url is not None:
        status["address"] = {"name": "http", "url": url}
        status["addresses"] = [{"name": "http", "url": url}]
    if dead_letter_uri is not None:
        status["deadLetterSinkUri"] = dead_letter_uri
    return status


def trigger_status(
    trigger: Mapping[str, Any],
    *,
    broker: Mapping[str, Any] | None,
    subscriber_uri: str | None,
    dead_letter_uri: str | None,
    now: float,
    previous: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """``status`` of a Trigger given its Broker object (with status) and resolved URLs."""
    meta = trigger.get("metadata") or {}
    spec = trigger.get("spec") or {}
    broker_name = spec.get("broker", "")
    if broker is None:
        broker_ready = _cond(
            "BrokerReady", False, "BrokerDoesNotExist", f"Broker {broker_name!r} does not exist"
        )
    else:
        ready = condition_status(broker.get("status") or {}, "Ready") == "True"
        broker_ready = _cond(
            "BrokerReady", ready, "BrokerNotReady", f"Broker {broker_name!r} is not ready"
        )
    try:
        attribute_filter(trigger)
        filter_ok = _cond("FilterValid", True, "", "")
    except FilterConfigError as exc:
        filter_ok = _cond("FilterValid", False, "InvalidFilter", str(exc))
    policy_sink = None
    try:
        policy_sink = effective_delivery(trigger, broker).dead_letter_sink
        delivery_ok = _cond("DeliveryValid", True, "", "")
    except DeliveryConfigError as exc:
        delivery_ok = _cond("DeliveryValid", False, "InvalidDelivery", str(exc))
    conditions = [
        broker_ready,
        filter_ok,
        delivery_ok,
        _cond(
            "SubscriberResolved",
            subscriber_uri is not None,
            "Unable to get the Subscriber's URI",
            f"cannot resolve subscriber {spec.get('subscriber')!r}",
        ),
        _dead_letter_condition(policy_sink, dead_letter_uri),
    ]
    status: dict[str, Any] = {
        "observedGeneration": meta.get("generation", 0),
        "conditions": _with_ready(conditions, previous, now),
    }
    if subscriber_uri is not None:
        status["subscriberUri"] = subscriber_uri
    if dead_letter_uri is not None:
        status["deadLetterSinkUri"] = dead_letter_uri
    return status


def condition_status(status: Mapping[str, Any], kind: str) -> str:
    """ "True", "False" or "Unknown" for the condition ``kind`` of a status block."""
    for condition in status.get("conditions") or ():
        if condition.get("type") == kind:
            return str(condition.get("status", "Unknown"))
    return "Unknown"


def _cond(kind: str, ok: bool, reason: str, message: str) -> dict[str, str]:
    if ok:
        return {"type": kind, "status": "True"}
    return {"type": kind, "status": "False", "reason": reason, "message": message}


def _delivery_condition(check: Any) -> dict[str, str]:
    try:
        check()
    except DeliveryConfigError as exc:
        return _cond("DeliveryValid", False, "InvalidDelivery", str(exc))
    return _cond("DeliveryValid", True, "", "")


def _dead_letter_condition(sink: Any, uri: str | None) -> dict[str, str]:
    if not sink:
        return {
            "type": "DeadLetterSinkResolved",
            "status": "True",
            "reason": "DeadLetterSinkNotConfigured",
            "message": "No dead letter sink is configured.",
        }
    return _cond(
        "DeadLetterSinkResolved",
        uri is not None,
        "Unable to get the DeadLetterSink's URI",
        f"cannot resolve dead letter sink {sink!r}",
    )


def _with_ready(
    conditions: Sequence[dict[str, str]], previous: Mapping[str, Any] | None, now: float
) -> list[dict[str, str]]:
    failing = [c for c in conditions if c["status"] != "True"]
    if failing:
        first = failing[0]
        ready = _cond("Ready", False, first.get("reason", "NotReady"), first.get("message", ""))
    else:
        ready = _cond("Ready", True, "", "")
    stamp = dt.datetime.fromtimestamp(now, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    before = {c.get("type"): c for c in (previous or {}).get("conditions") or ()}
    result = []
    for condition in [ready, *conditions]:
        old = before.get(condition["type"])
        same = old is not None and old.get("status") == condition["status"]
        when = str(old.get("lastTransitionTime", stamp)) if same and old is not None else stamp
        result.append({**condition, "lastTransitionTime": when})
    return sorted(result, key=lambda c: c["type"])
