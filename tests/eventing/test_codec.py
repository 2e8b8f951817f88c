"""Decoding CloudEvents at the ingress and matching them against Trigger filters."""

from __future__ import annotations

import base64
import json

import pytest
from cloudevents.http import CloudEvent

from autoscaler.eventing import InvalidEvent, decode_event, encode_binary, matches
from autoscaler.eventing.events import with_dead_letter_extensions

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
    ],
)
def test_exact_attribute_filter(filter_attributes: dict[str, str], passes: bool) -> None:
    event = CloudEvent.create(
        {"id": "1", "source": "/s", "type": "t", "model": "iris", "priority": 1}, None
    )
    assert matches(filter_attributes, event.get_attributes()) is passes


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
