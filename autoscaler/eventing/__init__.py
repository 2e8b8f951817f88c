"""Embedded Knative Eventing broker: CloudEvents ingress, durable store and Trigger delivery.

Driven by plain ``eventing.knative.dev/v1`` Broker and Trigger dicts and a subscriber resolver
callback; see ``BrokerCore``. Status for those objects comes from the pure functions in
``autoscaler.eventing.status``.
"""

from autoscaler.eventing.broker import BrokerCore, BrokerStarting, UnknownBroker
from autoscaler.eventing.delivery import (
    DeliveryConfigError,
    DeliveryPolicy,
    effective_delivery,
    is_retryable,
    parse_delivery,
)
from autoscaler.eventing.destination import Resolver, resolve_destination
from autoscaler.eventing.duration import DurationError, parse_duration_s
from autoscaler.eventing.events import InvalidEvent, decode_event, encode_binary
from autoscaler.eventing.filtering import matches
from autoscaler.eventing.routes import InvalidObject
from autoscaler.eventing.settings import BrokerSettings, SettingsError
from autoscaler.eventing.status import broker_status, broker_url, trigger_status

__all__ = [
    "BrokerCore",
    "BrokerSettings",
    "BrokerStarting",
    "DeliveryConfigError",
    "DeliveryPolicy",
    "DurationError",
    "InvalidEvent",
    "InvalidObject",
    "Resolver",
    "SettingsError",
    "UnknownBroker",
    "broker_status",
    "broker_url",
    "decode_event",
    "effective_delivery",
    "encode_binary",
    "is_retryable",
    "matches",
    "parse_delivery",
    "parse_duration_s",
    "resolve_destination",
    "trigger_status",
]
