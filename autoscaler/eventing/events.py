"""CloudEvents on the wire: decoding what producers send, encoding what the broker delivers.

Parsing uses the ``cloudevents`` SDK (1.x: ``cloudevents.http.from_http``) and adds the checks
a broker ingress owes its clients, each with a reason fit for a 400 body: the four required
attributes present and non-empty, a known ``specversion``, well-formed JSON, attribute names of
lowercase letters and digits, attribute values of CloudEvents' types: the optional core
attributes strings, ``time`` an RFC 3339 timestamp, ``dataschema`` an absolute URI, and an
extension in the JSON format a string, a boolean or an integral number (CloudEvents has Integer
but no floating-point type; ``1.0`` is kept as the integer 1). Batched mode
(``application/cloudevents-batch+json``) is refused.

Binary mode carries every attribute as a header holding its canonical string (Integer in
decimal, Boolean ``true``/``false``); structured mode (``encode_structured``) keeps the JSON
types and puts ``data`` in as JSON when it is JSON, as a string when it is text, else as
``data_base64``.

Inside the broker an event's ``data`` is always the exact bytes to put in a binary-mode body
(or None), with ``datacontenttype`` saying what they are, so delivery never re-interprets it.
Knative's broker extensions live here too: ``knativebrokerttl`` (loop guard for replies),
``knativearrivaltime`` (when the broker took an event: set on every event accepted and every
reply, replacing a sender's, as Knative's ingress does) and the ``knativeerror*`` extensions put on dead-lettered events (eventing
``pkg/kncloudevents/event_dispatcher.go``, ``pkg/channel/attributes``).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from cloudevents import exceptions as ce_exceptions
from cloudevents.conversion import to_binary
from cloudevents.http import CloudEvent, from_http

__all__ = [
    "ARRIVAL_TIME",
    "BATCH_CONTENT_TYPE",
    "CORE_ATTRIBUTES",
    "ERROR_DATA_MAX_CHARS",
    "STRUCTURED_CONTENT_TYPE",
    "TTL_ATTRIBUTE",
    "InvalidEvent",
    "arrival_time",
    "canonical_string",
    "decode_event",
    "decode_reply",
    "encode_binary",
    "encode_structured",
    "event_from_record",
    "event_to_record",
    "make_event",
    "with_dead_letter_extensions",
]

STRUCTURED_CONTENT_TYPE = "application/cloudevents+json"
BATCH_CONTENT_TYPE = "application/cloudevents-batch+json"
TTL_ATTRIBUTE = "knativebrokerttl"
# Knative's extension for when the broker's ingress took an event (broker.EventArrivalTime).
ARRIVAL_TIME = "knativearrivaltime"
# Knative caps knativeerrordata (base64 of the failed response body) at 1024 characters.
ERROR_DATA_MAX_CHARS = 1024
_REQUIRED = ("specversion", "id", "source", "type")
_SPECVERSIONS = ("1.0", "0.3")
_NAME = re.compile(r"^[a-z0-9]{1,}$")
_JSON_TYPES = re.compile(r"^(application|text)/(.+\+)?json(;.*)?$", re.IGNORECASE)
# Context attributes of the specification (1.0 and 0.3); every other attribute is an extension.
CORE_ATTRIBUTES = frozenset(
    {
        "specversion",
        "id",
        "source",
        "type",
        "datacontenttype",
        "dataschema",
        "subject",
        "time",
        "schemaurl",
        "datacontentencoding",
    }
)
_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$"
)


class InvalidEvent(ValueError):
    """A request that is not a valid CloudEvent; the message is the reason for the 400."""


def decode_event(headers: Mapping[str, str], body: bytes) -> CloudEvent:
    """The CloudEvent in an HTTP request (binary or structured mode), or ``InvalidEvent``."""
    lowered = {k.lower(): v for k, v in headers.items()}
    content_type = lowered.get("content-type", "").split(";")[0].strip().lower()
    if content_type == BATCH_CONTENT_TYPE:
        raise InvalidEvent("batched mode (application/cloudevents-batch+json) is not supported")
    if content_type == STRUCTURED_CONTENT_TYPE:
        return _decode_structured(lowered, body)
    return _decode_binary(lowered, body)


def decode_reply(headers: Mapping[str, str], body: bytes) -> CloudEvent | None:
    """The event in a subscriber's 2xx response, None when the response is not an event."""
    lowered = {k.lower(): v for k, v in headers.items()}
    content_type = lowered.get("content-type", "").split(";")[0].strip().lower()
    if content_type != STRUCTURED_CONTENT_TYPE and "ce-specversion" not in lowered:
        return None
    return decode_event(lowered, body)


def encode_binary(event: CloudEvent) -> tuple[dict[str, str], bytes]:
    """Binary-mode headers and body for ``event`` (whose data is bytes or None).

    Header values are the attributes' canonical strings: an event accepted in the JSON format
    keeps its booleans and integers, which a header cannot carry as such."""
    attributes = {k: canonical_string(v) for k, v in event.get_attributes().items()}
    headers, body = to_binary(make_event(attributes, event.get_data()), data_marshaller=_identity)
    return dict(headers), body if isinstance(body, bytes) else (body or b"")


def encode_structured(event: CloudEvent) -> tuple[dict[str, str], bytes]:
    """Structured-mode (``application/cloudevents+json``) headers and body for ``event``.

    JSON data goes in as is (its exact bytes), text data as a string, anything else as
    ``data_base64``."""
    attributes = dict(event.get_attributes())
    document = json.dumps(attributes, separators=(",", ":"), ensure_ascii=False)
    data = event.get_data()
    if data is not None:
        raw = data if isinstance(data, bytes) else str(data).encode("utf-8")
        content_type = str(attributes.get("datacontenttype") or "application/json")
        member = _structured_data_member(raw, content_type)
        document = f"{document[:-1]},{member}}}" if attributes else f"{{{member}}}"
    return {"Content-Type": STRUCTURED_CONTENT_TYPE}, document.encode("utf-8")


def canonical_string(value: Any) -> str:
    """An attribute value as CloudEvents' canonical string (Boolean ``true``/``false``,
    Integer in decimal); a string is returned as is."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def event_to_record(event: CloudEvent) -> tuple[str, bytes | None]:
    """(attributes as JSON, data bytes) for storage."""
    data = event.get_data()
    return json.dumps(dict(event.get_attributes()), separators=(",", ":")), data


def event_from_record(attributes_json: str, data: bytes | None) -> CloudEvent:
    """The event stored by ``event_to_record``."""
    return make_event(json.loads(attributes_json), data)


def with_dead_letter_extensions(
    event: CloudEvent, *, destination: str, status: int | None, body: bytes | None
) -> CloudEvent:
    """A copy of ``event`` carrying why its delivery failed, as Knative marks dead letters."""
    attributes = dict(event.get_attributes())
    attributes.pop(TTL_ATTRIBUTE, None)
    attributes["knativeerrordest"] = destination
    # Knative records 500 when there was no response at all (refused, timed out).
    attributes["knativeerrorcode"] = str(status if status is not None else 500)
    if body:
        attributes["knativeerrordata"] = base64.b64encode(body).decode("ascii")[
            :ERROR_DATA_MAX_CHARS
        ]
    return make_event(attributes, event.get_data())


def make_event(attributes: Mapping[str, Any], data: bytes | None) -> CloudEvent:
    """A CloudEvent with exactly these attributes: the SDK stamps a ``time`` when there is
    none, which a broker must not add to someone else's event."""
    event = CloudEvent.create(dict(attributes), data)
    if "time" not in attributes:
        del event["time"]
    return event


def _decode_binary(headers: dict[str, str], body: bytes) -> CloudEvent:
    missing = [name for name in _REQUIRED if not headers.get(f"ce-{name}", "").strip()]
    if missing:
        listed = ", ".join(f"ce-{m}" for m in missing)
        raise InvalidEvent(
            f"missing required attribute header(s) {listed}; send a binary-mode event with "
            f"all of ce-specversion, ce-id, ce-source, ce-type, or a structured event with "
            f"Content-Type: {STRUCTURED_CONTENT_TYPE}"
        )
    _check_specversion(headers["ce-specversion"])
    for key in headers:
        if key.startswith("ce-"):
            _check_name(key[3:])
    event = _sdk_parse(headers, body)
    attributes = dict(event.get_attributes())
    if "ce-time" not in headers:
        attributes.pop("time", None)  # the SDK stamped a time the producer did not send
    _check_typed_attributes(attributes)
    return make_event(attributes, body or None)


def _decode_structured(headers: dict[str, str], body: bytes) -> CloudEvent:
    try:
        raw = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidEvent(f"structured event is not valid JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise InvalidEvent(f"structured event must be a JSON object, got {type(raw).__name__}")
    missing = [name for name in _REQUIRED if not (isinstance(raw.get(name), str) and raw[name])]
    if missing:
        raise InvalidEvent(
            f"missing required attribute(s) {', '.join(missing)} (non-empty strings)"
        )
    _check_specversion(raw["specversion"])
    for key, value in raw.items():
        if key in ("data", "data_base64"):
            continue
        _check_name(key)
        if isinstance(value, (dict, list)) or value is None:
            raise InvalidEvent(
                f"attribute {key!r} must be a string, number or boolean, got {value!r}"
            )
        if key in CORE_ATTRIBUTES and not isinstance(value, str):
            raise InvalidEvent(f"attribute {key!r} must be a string, got {value!r}")
        if isinstance(value, float) and not value.is_integer():
            raise InvalidEvent(
                f"extension {key!r} is {value!r}: CloudEvents extension values are strings, "
                f"booleans or integers (there is no floating-point type); send it as a string"
            )
    data = _structured_data(raw)
    event = _sdk_parse(headers, body)
    attributes = dict(event.get_attributes())
    if "time" not in raw:
        attributes.pop("time", None)
    for key, value in attributes.items():
        if isinstance(value, float):  # integral, checked above: JSON's 1.0 is the Integer 1
            attributes[key] = int(value)
    _check_typed_attributes(attributes)
    if "data" in raw and data is not None and "datacontenttype" not in attributes:
        # In the JSON event format an absent datacontenttype means application/json.
        attributes["datacontenttype"] = "application/json"
    return make_event(attributes, data)


def _structured_data(raw: Mapping[str, Any]) -> bytes | None:
    if "data_base64" in raw:
        if "data" in raw:
            raise InvalidEvent("structured event has both data and data_base64")
        try:
            return base64.b64decode(str(raw["data_base64"]), validate=True)
        except ValueError as exc:
            raise InvalidEvent(f"data_base64 is not valid base64: {exc}") from None
    if "data" not in raw or raw["data"] is None:
        return None
    value = raw["data"]
    content_type = str(raw.get("datacontenttype") or "application/json")
    if isinstance(value, str) and not _JSON_TYPES.match(content_type):
        return value.encode("utf-8")
    return json.dumps(value, separators=(",", ":")).encode("utf-8")


def _structured_data_member(raw: bytes, content_type: str) -> str:
    if _JSON_TYPES.match(content_type):
        try:
            json.loads(raw)
            return '"data":' + raw.decode("utf-8")
        except ValueError:
            pass
    elif content_type.lower().startswith("text/"):
        try:
            return '"data":' + json.dumps(raw.decode("utf-8"), ensure_ascii=False)
        except UnicodeDecodeError:
            pass
    return '"data_base64":"' + base64.b64encode(raw).decode("ascii") + '"'


def _check_typed_attributes(attributes: Mapping[str, Any]) -> None:
    """The core attributes with a type beyond String: ``time`` (Timestamp, RFC 3339) and
    ``dataschema`` (URI, absolute)."""
    if "time" in attributes and not _is_rfc3339(str(attributes["time"])):
        raise InvalidEvent(
            f"attribute 'time' is {attributes['time']!r}, not an RFC 3339 timestamp "
            f"(e.g. 2024-05-01T12:00:00Z)"
        )
    for name in ("dataschema", "schemaurl"):
        if name in attributes:
            value = str(attributes[name])
            if not value or not urlsplit(value).scheme or any(c.isspace() for c in value):
                raise InvalidEvent(f"attribute {name!r} is {value!r}, not an absolute URI")


def _is_rfc3339(value: str) -> bool:
    match = _RFC3339.match(value)
    if match is None:
        return False
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    offset = match.group(8).upper()
    try:
        dt.datetime(year, month, day, hour, minute, min(second, 59))  # 60: a leap second
        if offset != "Z":
            dt.datetime.strptime(offset.replace(":", ""), "%z")
    except ValueError:
        return False
    return second <= 60


def _sdk_parse(headers: Mapping[str, str], body: bytes) -> CloudEvent:
    try:
        return from_http(dict(headers), body, data_unmarshaller=_identity)
    except ce_exceptions.GenericException as exc:
        raise InvalidEvent(str(exc)) from None


def _check_specversion(value: str) -> None:
    if value not in _SPECVERSIONS:
        raise InvalidEvent(
            f"specversion {value!r} is not supported (expected one of {', '.join(_SPECVERSIONS)})"
        )


def _check_name(name: str) -> None:
    if not _NAME.match(name):
        raise InvalidEvent(
            f"attribute name {name!r} is invalid: CloudEvents attribute names are lowercase letters and digits"
        )


def _identity(value: Any) -> Any:
    return value


def arrival_time(wall_s: float) -> str:
    """``wall_s`` (seconds since the epoch) as ``knativearrivaltime`` carries it: RFC 3339, UTC."""
    at = dt.datetime.fromtimestamp(wall_s, dt.UTC)
    return at.isoformat(timespec="microseconds").replace("+00:00", "Z")
