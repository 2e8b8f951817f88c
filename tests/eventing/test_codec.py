"""Decoding CloudEvents at the ingress and matching them against Trigger filters."""

from __future__ import annotations

import base64
import json

import pytest
from cloudevents.http import CloudEvent

from autoscaler.eventing import InvalidEvent, decode_event, encode_binary, matches
from autoscaler.eventing.events import encode_structured, with_dead_letter_extensions

BINARY = {"ce-specversion": "1.0", "ce-id": "1", "ce-source": "/s", "ce-type": "t"}


def structured(**fields: object) -> tuple[dict[str, str], bytes]:
    doc = {"specversion": "1.0", "id": "1", "source": "/s", "type": "t", **fields}
    return {"content-type": "application/cloudevents+json"}, json.dumps(doc).encode()


def test_binary_event_keeps_its_bytes_and_adds_no_time() -> None:
    event = decode_event(
        {**BINARY, "Content-Type": "application/json", "ce-model": "iris"}, b'{"a": 1}'
    )
    assert event.get_data() == b'{"a": 1}'
    assert event["model"] == "iris"
    assert "time" not in event.get_attributes()


@pytest.mark.parametrize(
    ("fields", "data", "content_type"),
    [
        pytest.param({"data": {"a": 1}}, b'{"a":1}', "application/json", id="json-object"),
        pytest.param(
            {"data": "hi", "datacontenttype": "text/plain"}, b"hi", "text/plain", id="text"
        ),
        pytest.param(
            {"data_base64": base64.b64encode(b"\x00\x01").decode()}, b"\x00\x01", None, id="base64"
        ),
        pytest.param({}, None, None, id="no-data"),
    ],
)
def test_structured_event_data_becomes_binary_body(
    fields: dict[str, object], data: bytes | None, content_type: str | None
) -> None:
    event = decode_event(*structured(**fields))
    assert event.get_data() == data
    assert event.get_attributes().get("datacontenttype") == content_type
    headers, body = encode_binary(event)
    assert body == (data or b"")
    assert headers["ce-id"] == "1"


@pytest.mark.parametrize(
    ("headers", "body", "reason"),
    [
        pytest.param(
            {"ce-type": "t"}, b"", "missing required attribute header", id="binary-missing"
        ),
        pytest.param(
            {**BINARY, "ce-specversion": "2.0"}, b"", "specversion '2.0'", id="bad-specversion"
        ),
        pytest.param(
            {**BINARY, "ce-Bad_Name": "x"},
            b"",
            "attribute name 'bad_name'",
            id="bad-extension-name",
        ),
        pytest.param(
            {"content-type": "application/cloudevents+json"},
            b"{nope",
            "not valid JSON",
            id="malformed-json",
        ),
        pytest.param(
            {"content-type": "application/cloudevents+json"}, b"[1]", "JSON object", id="json-array"
        ),
        pytest.param(
            *structured(id=""), "missing required attribute(s) id", id="structured-empty-id"
        ),
        pytest.param(
            *structured(specversion="0.1"), "specversion '0.1'", id="structured-bad-specversion"
        ),
        pytest.param(*structured(ext={"nested": 1}), "must be a string", id="nested-attribute"),
        pytest.param(
            *structured(priority=1.5), "extension 'priority' is 1.5", id="non-integral-extension"
        ),
        pytest.param(*structured(subject=7), "attribute 'subject' must be a string", id="subject"),
        pytest.param(
            {**BINARY, "ce-time": "yesterday"},
            b"",
            "attribute 'time' is 'yesterday', not an RFC 3339 timestamp",
            id="binary-bad-time",
        ),
        pytest.param(
            *structured(time="2024-02-30T10:00:00Z"),
            "attribute 'time' is '2024-02-30T10:00:00Z'",
            id="structured-impossible-date",
        ),
        pytest.param(
            *structured(time="2024-05-01 10:00:00"), "not an RFC 3339", id="time-without-offset"
        ),
        pytest.param(
            {**BINARY, "ce-dataschema": "schema.json"},
            b"",
            "attribute 'dataschema' is 'schema.json', not an absolute URI",
            id="relative-dataschema",
        ),
        pytest.param(*structured(data_base64="!!"), "not valid base64", id="bad-base64"),
        pytest.param(
            {"content-type": "application/cloudevents-batch+json"},
            b"[]",
            "batched mode",
            id="batch",
        ),
    ],
)
def test_invalid_events_have_a_reason(headers: dict[str, str], body: bytes, reason: str) -> None:
    with pytest.raises(InvalidEvent, match=reason.replace("(", r"\(").replace(")", r"\)")):
        decode_event(headers, body)


@pytest.mark.parametrize(
    ("filter_attributes", "passes"),
    [
        pytest.param({}, True, id="empty-filter-matches-all"),
        pytest.param({"type": "t"}, True, id="type-equal"),
        pytest.param({"type": "T"}, False, id="case-sensitive"),
        pytest.param({"type": "t", "source": "/s"}, True, id="all-must-match"),
        pytest.param({"type": "t", "source": "/other"}, False, id="one-differs"),
        pytest.param({"model": "iris"}, True, id="extension"),
        pytest.param({"priority": "1"}, True, id="number-as-string"),
        pytest.param({"missing": "x"}, False, id="absent-attribute"),
        pytest.param({"type": "", "model": ""}, True, id="any-value-of-present-attributes"),
        pytest.param({"missing": ""}, False, id="any-value-of-an-absent-extension"),
        pytest.param({"subject": ""}, False, id="any-value-of-an-absent-core-attribute"),
        pytest.param({"empty": ""}, False, id="any-value-of-an-empty-extension"),
        pytest.param({"empty": "x"}, False, id="empty-extension-is-not-x"),
        pytest.param({"subject": "x"}, False, id="absent-core-attribute-is-empty"),
    ],
)
def test_exact_attribute_filter(filter_attributes: dict[str, str], passes: bool) -> None:
    event = CloudEvent.create(
        {"id": "1", "source": "/s", "type": "t", "model": "iris", "priority": 1, "empty": ""},
        None,
    )
    assert matches(filter_attributes, event.get_attributes()) is passes


def test_the_any_filter_needs_a_binary_mode_extension_with_a_value() -> None:
    """``""`` (any value) passes an extension header with a value, not an empty one."""
    headers = {"ce-specversion": "1.0", "ce-id": "1", "ce-source": "/s", "ce-type": "t"}
    assert matches({"myext": ""}, decode_event({**headers, "ce-myext": "v"}, b"").get_attributes())
    empty = decode_event({**headers, "ce-myext": ""}, b"")
    assert matches({"myext": ""}, empty.get_attributes()) is False


def test_dead_letter_extensions_record_the_failure() -> None:
    event = CloudEvent.create(
        {"id": "1", "source": "/s", "type": "t", "knativebrokerttl": "255"}, b"x"
    )
    marked = with_dead_letter_extensions(
        event, destination="http://127.0.0.1:9/", status=None, body=b"boom" * 500
    )
    attributes = marked.get_attributes()
    assert attributes["knativeerrordest"] == "http://127.0.0.1:9/"
    assert attributes["knativeerrorcode"] == "500"
    assert len(attributes["knativeerrordata"]) == 1024
    assert "knativebrokerttl" not in attributes


def test_number_and_boolean_extensions_travel_as_canonical_strings() -> None:
    event = decode_event(*structured(priority=1, flag=True, off=False, count=2.0))
    attributes = event.get_attributes()
    assert (attributes["priority"], attributes["flag"], attributes["count"]) == (1, True, 2)
    headers, _ = encode_binary(event)
    assert headers["ce-priority"] == "1"
    assert headers["ce-flag"] == "true"
    assert headers["ce-off"] == "false"
    assert headers["ce-count"] == "2"  # JSON 2.0 is the Integer 2
    assert all(isinstance(value, str) for value in headers.values())
    assert matches({"flag": "true", "count": "2"}, attributes)


@pytest.mark.parametrize(
    "time",
    [
        "2024-05-01T12:00:00Z",
        "2024-05-01t12:00:00.123456789z",
        "2024-05-01T12:00:00+05:30",
        "2016-12-31T23:59:60Z",
    ],
)
def test_rfc3339_times_are_accepted_as_sent(time: str) -> None:
    assert decode_event({**BINARY, "ce-time": time}, b"")["time"] == time
    assert decode_event(*structured(time=time))["time"] == time


@pytest.mark.parametrize(
    ("fields", "data"),
    [
        pytest.param({"data": {"a": [1, 2]}}, b'{"a":[1,2]}', id="json"),
        pytest.param({"data": "hi", "datacontenttype": "text/plain"}, b"hi", id="text"),
        pytest.param(
            {"data_base64": base64.b64encode(b"\xff\x00").decode()}, b"\xff\x00", id="bytes"
        ),
        pytest.param({}, None, id="no-data"),
    ],
)
def test_structured_encoding_round_trips(fields: dict[str, object], data: bytes | None) -> None:
    event = decode_event(*structured(priority=3, flag=True, **fields))
    headers, body = encode_structured(event)
    assert headers["Content-Type"] == "application/cloudevents+json"
    document = json.loads(body)
    assert (document["priority"], document["flag"]) == (3, True)
    again = decode_event(headers, body)
    assert again.get_attributes() == event.get_attributes()
    assert again.get_data() == data
