"""The route table: which Brokers exist and which Triggers listen to them, in memory.

Driven by plain ``eventing.knative.dev/v1`` Broker and Trigger object dicts, as the API server
watcher will hand them over. Each Trigger becomes a ``Route`` with its filter, subscriber and
effective delivery policy worked out once, when the object (or its Broker) is applied, so the
hot path only compares attributes. Invalid objects are refused with the reason, and the route
they would replace stays as it was. No I/O here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cloudevents.http import CloudEvent

from autoscaler.eventing.delivery import DeliveryPolicy, effective_delivery, parse_delivery
from autoscaler.eventing.events import event_to_record
from autoscaler.eventing.filtering import attribute_filter, matches
from autoscaler.eventing.store import NewEvent

__all__ = ["InvalidObject", "Route", "RouteTable", "object_key"]


class InvalidObject(ValueError):
    """A Broker or Trigger object the broker core cannot use; the message says why."""


@dataclass(frozen=True)
class Route:
    """A Trigger, ready for delivery."""

    key: str
    namespace: str
    name: str
    broker: str
    filter_attributes: Mapping[str, str]
    subscriber: Mapping[str, Any]
    policy: DeliveryPolicy


def object_key(obj: Mapping[str, Any]) -> tuple[str, str]:
    """(namespace, name) of an object; the namespace defaults to ``default``."""
    meta = obj.get("metadata") or {}
    name = meta.get("name")
    if not name:
        raise InvalidObject("metadata.name is required")
    return str(meta.get("namespace") or "default"), str(name)


class RouteTable:
    """Brokers by (namespace, name) and Trigger routes by ``namespace/name``."""

    def __init__(self) -> None:
        self._brokers: dict[tuple[str, str], Mapping[str, Any]] = {}
        self._triggers: dict[str, Mapping[str, Any]] = {}
        self._routes: dict[str, Route] = {}

    # -- objects --------------------------------------------------------------------------

    def apply_broker(self, broker: Mapping[str, Any]) -> None:
        """Add or replace a Broker; its Triggers' policies are worked out again."""
        key = object_key(broker)
        spec = broker.get("spec") or {}
        try:
            parse_delivery(spec.get("delivery"), where="spec.delivery")
        except ValueError as exc:
            raise InvalidObject(f"Broker {key[0]}/{key[1]}: {exc}") from None
        self._brokers[key] = broker
        for trigger_key, trigger in self._triggers.items():
            if (
                self._routes[trigger_key].namespace == key[0]
                and self._routes[trigger_key].broker == key[1]
            ):
                self._routes[trigger_key] = self._route(trigger)

    def delete_broker(self, namespace: str, name: str) -> list[str]:
        """Forget a Broker; the keys of its Triggers (which stay, waiting for it)."""
        self._brokers.pop((namespace, name), None)
        keys = [
            r.key for r in self._routes.values() if r.namespace == namespace and r.broker == name
        ]
        for key in keys:
            self._routes[key] = self._route(self._triggers[key])
        return keys

    def apply_trigger(self, trigger: Mapping[str, Any]) -> Route:
        """Add or replace a Trigger; its route."""
        route = self._route(trigger)
        self._triggers[route.key] = trigger
        self._routes[route.key] = route
        return route

    def delete_trigger(self, namespace: str, name: str) -> str:
        """Forget a Trigger; its key."""
        key = f"{namespace}/{name}"
        self._triggers.pop(key, None)
        self._routes.pop(key, None)
        return key

    # -- queries --------------------------------------------------------------------------

    def has_broker(self, namespace: str, name: str) -> bool:
        return (namespace, name) in self._brokers

    def broker(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        return self._brokers.get((namespace, name))

    def route(self, key: str) -> Route | None:
        return self._routes.get(key)

    def keys(self) -> list[str]:
        return sorted(self._routes)

    def plan(self, namespace: str, broker: str, event: CloudEvent) -> NewEvent:
        """The store record of an event accepted by a Broker, with the Triggers it matches."""
        attributes = event.get_attributes()
        keys = tuple(
            route.key
            for route in sorted(self._routes.values(), key=lambda r: r.key)
            if route.namespace == namespace
            and route.broker == broker
            and matches(route.filter_attributes, attributes)
        )
        attributes_json, data = event_to_record(event)
        return NewEvent(namespace, broker, attributes_json, data, keys)

    def _route(self, trigger: Mapping[str, Any]) -> Route:
        namespace, name = object_key(trigger)
        where = f"Trigger {namespace}/{name}"
        spec = trigger.get("spec") or {}
        broker = spec.get("broker")
        if not broker:
            raise InvalidObject(
                f"{where}: spec.broker is required (spec.brokerRef is not supported)"
            )
        subscriber = spec.get("subscriber")
        if not isinstance(subscriber, Mapping) or not (
            subscriber.get("uri") or subscriber.get("ref")
        ):
            raise InvalidObject(
                f"{where}: spec.subscriber needs a 'ref' or a 'uri', got {subscriber!r}"
            )
        try:
            filter_attributes = attribute_filter(trigger)
            policy = effective_delivery(trigger, self._brokers.get((namespace, str(broker))))
        except ValueError as exc:
            raise InvalidObject(f"{where}: {exc}") from None
        return Route(
            key=f"{namespace}/{name}",
            namespace=namespace,
            name=name,
            broker=str(broker),
            filter_attributes=filter_attributes,
            subscriber=subscriber,
            policy=policy,
        )
