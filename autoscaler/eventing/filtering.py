"""Trigger filters: which events of a Broker a Trigger receives, pure.

Mirrors Knative Eventing's attribute filter (``pkg/eventfilter/attributes``): ``filter.attributes``
is an exact, case-sensitive match of string values against the event's context attributes and
extensions, whose names must be CloudEvents attribute names (``^[a-z][a-z0-9]*$``, as Knative's
webhook requires: ``Type`` is refused, not read as ``type``); every listed attribute must be
present and equal; an empty or missing filter matches every event. The value ``""`` matches
any value (Knative's ``TriggerAnyFilter``) of an attribute the event has: an event without the
attribute (an extension, or an optional core attribute such as ``subject``), or with it empty,
does not pass, as in Knative's current filter (``pkg/eventfilter/attributes/filter.go``). The
newer ``filters`` (SQL and prefix expressions) are not implemented.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from autoscaler.eventing.events import canonical_string

__all__ = ["ANY_VALUE", "FilterConfigError", "attribute_filter", "matches"]

# A filter value that matches any value of the attribute (Knative's TriggerAnyFilter).
ANY_VALUE = ""
# What Knative's Trigger webhook allows as a filter attribute name ("Invalid attribute name").
_ATTRIBUTE_NAME = re.compile(r"[a-z][a-z0-9]*")


class FilterConfigError(ValueError):
    """A ``filter`` block that cannot be used."""


def attribute_filter(trigger: Mapping[str, Any]) -> dict[str, str]:
    """The exact-match attributes of a Trigger object, checked."""
    spec = trigger.get("spec") or {}
    if spec.get("filters"):
        raise FilterConfigError(
            "spec.filters: only spec.filter.attributes (exact match) is supported"
        )
    block = spec.get("filter") or {}
    attributes = block.get("attributes") or {}
    if not isinstance(attributes, Mapping):
        raise FilterConfigError(f"spec.filter.attributes: expected an object, got {attributes!r}")
    checked: dict[str, str] = {}
    for name, value in attributes.items():
        if not isinstance(value, str):
            raise FilterConfigError(
                f"spec.filter.attributes.{name}: only string values are supported, got {value!r}"
            )
        if not isinstance(name, str) or not _ATTRIBUTE_NAME.fullmatch(name):
            raise FilterConfigError(
                f"spec.filter.attributes: invalid attribute name {name!r}: a CloudEvents "
                "attribute name is lowercase letters and digits, starting with a letter "
                "(^[a-z][a-z0-9]*$)"
            )
        checked[name] = value
    return checked


def matches(filter_attributes: Mapping[str, str], event_attributes: Mapping[str, Any]) -> bool:
    """Whether an event with ``event_attributes`` passes an exact-match attribute filter."""
    for name, wanted in filter_attributes.items():
        actual = event_attributes.get(name)
        if actual is None:
            return False  # absent, with any filter value
        value = _as_string(actual)
        if not (value != "" if wanted == ANY_VALUE else value == wanted):
            return False
    return True


def _as_string(value: Any) -> str:
    # Binary mode carries every attribute as a header string; compare in that form so a
    # structured event with {"priority": 1} matches a filter "1" the same way.
    return canonical_string(value)
