"""event-log: binary and structured events are kept newest last, bounded; bad input is refused
in JSON."""

from __future__ import annotations

from typing import Any

import pytest
from cloudevents.conversion import to_binary, to_structured
from cloudevents.http import CloudEvent
from event_log.app import ConfigError, create_app, keep_events


def _event(n: int) -> CloudEvent:
    return CloudEvent({"type": "t", "source": "/s", "id": f"e{n}"}, {"n": n})


@pytest.mark.parametrize("encode", [to_binary, to_structured], ids=["binary", "structured"])
def test_events_are_kept_newest_last_and_bounded(encode) -> None:
    client = create_app(keep=2).test_client()
    for n in range(3):
        headers, body = encode(_event(n))
        assert client.post("/", headers=headers, data=body).status_code == 202
    listed = client.get("/events").get_json()
    assert [e["id"] for e in listed] == ["e1", "e2"]
    assert listed[-1]["data"] == {"n": 2}


def test_not_an_event_is_400() -> None:
    answer = create_app().test_client().post("/", data=b"{}", content_type="application/json")
    assert answer.status_code == 400
    assert "not a CloudEvent" in answer.get_json()["error"]


@pytest.mark.parametrize(
    ("method", "path", "status", "error", "allows"),
    [
        pytest.param("GET", "/", 405, "method GET is not allowed on /", "POST", id="get-events"),
        pytest.param(
            "POST", "/events", 405, "method POST is not allowed on /events", "GET", id="post-list"
        ),
        pytest.param("GET", "/nope", 404, "no such path: GET /nope", None, id="unknown-path"),
    ],
)
def test_a_method_or_path_the_sink_does_not_take_is_a_json_error(
    method: str, path: str, status: int, error: str, allows: str | None, json_error: Any
) -> None:
    answer = create_app().test_client().open(path, method=method)
    json_error(answer, status, error, allows)


@pytest.mark.parametrize(
    ("raw", "message"), [("x", "expected an integer"), ("0", "must be in [1, 100000]")]
)
def test_keep_events_errors_name_the_variable(raw: str, message: str) -> None:
    with pytest.raises(ConfigError, match=r"KEEP_EVENTS") as info:
        keep_events({"KEEP_EVENTS": raw})
    assert message in str(info.value)
