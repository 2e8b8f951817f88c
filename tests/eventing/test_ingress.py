"""The ingress answers: 202 once stored, 400 with the reason, 404, 405 and 413."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from autoscaler.clock import ManualClock
from autoscaler.eventing import BrokerCore, BrokerSettings
from tests.eventing.fakes import NAMESPACE, broker_obj, no_refs, trigger_obj

GOOD = {"ce-specversion": "1.0", "ce-id": "1", "ce-source": "/s", "ce-type": "t"}


async def send(
    url: str, headers: dict[str, str], body: bytes, method: str = "POST"
) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, url, headers=headers, data=body) as response,
    ):
        text = await response.text()
        return response.status, json.loads(
            text
        ) if response.content_type == "application/json" else text


@pytest.mark.parametrize(
    ("headers", "body", "reason"),
    [
        pytest.param(
            {"ce-type": "t"},
            b"",
            "missing required attribute header(s) ce-specversion, ce-id, ce-source",
            id="missing-attributes",
        ),
        pytest.param(
            {**GOOD, "ce-specversion": "9.9"},
            b"",
            "specversion '9.9' is not supported",
            id="bad-specversion",
        ),
        pytest.param(
            {"Content-Type": "application/cloudevents+json"},
            b'{"specversion": "1.0", "id": ',
            "not valid JSON",
            id="malformed-json",
        ),
        pytest.param(
            {"Content-Type": "application/cloudevents+json"},
            b'{"specversion": "1.0", "id": "1", "source": "/s", "type": "t", "score": 0.5}',
            "extension 'score' is 0.5",
            id="non-integral-extension",
        ),
        pytest.param(
            {**GOOD, "ce-time": "yesterday"},
            b"",
            "attribute 'time' is 'yesterday', not an RFC 3339 timestamp",
            id="binary-bad-time",
        ),
        pytest.param(
            {"Content-Type": "application/cloudevents+json"},
            b'{"specversion": "1.0", "id": "1", "source": "/s", "type": "t", "time": "yesterday"}',
            "attribute 'time' is 'yesterday', not an RFC 3339 timestamp",
            id="structured-bad-time",
        ),
    ],
)
async def test_invalid_event_is_answered_400_with_the_reason(
    core: BrokerCore, headers: dict[str, str], body: bytes, reason: str
) -> None:
    status, answer = await send(core.broker_url(NAMESPACE, "default"), headers, body)
    assert status == 400
    assert reason in answer["error"]
    assert await core.delivery_counts() == {}


async def test_unknown_broker_is_404(core: BrokerCore) -> None:
    status, answer = await send(core.broker_url(NAMESPACE, "nowhere"), GOOD, b"")
    assert status == 404
    assert answer == {"error": f"broker {NAMESPACE}/nowhere does not exist"}


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
async def test_other_methods_are_405_in_json_naming_the_allowed_ones(
    core: BrokerCore, method: str
) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, core.broker_url(NAMESPACE, "default")) as response,
    ):
        assert response.status == 405
        assert response.headers["Allow"] == "POST, OPTIONS"
        assert (await response.json())["error"] == (
            f"method {method} not allowed: events are POSTed"
        )


async def test_options_is_the_webhook_validation(core: BrokerCore) -> None:
    """As Knative's ingress: 200 with the webhook headers on any path, and ``Allow`` on every
    answer."""
    async with aiohttp.ClientSession() as session:
        for path in (f"/{NAMESPACE}/default", "/anything"):
            async with session.options(
                core.url + path, headers={"WebHook-Request-Origin": "example.com"}
            ) as response:
                assert response.status == 200
                assert response.headers["WebHook-Allowed-Origin"] == "*"
                assert response.headers["WebHook-Allowed-Rate"] == "*"
                assert response.headers["Allow"] == "POST, OPTIONS"
        async with session.post(core.broker_url(NAMESPACE, "default"), headers=GOOD) as response:
            assert (response.status, response.headers["Allow"]) == (202, "POST, OPTIONS")
    assert await core.delivery_counts() == {}


async def test_event_over_the_size_limit_is_413(tmp_path: Path) -> None:
    core = BrokerCore(
        tmp_path / "b.db",
        no_refs,
        clock=ManualClock(),
        settings=BrokerSettings(max_event_bytes=2048),
    )
    core.apply_broker(broker_obj())
    await core.start(deliver=False)
    try:
        status, answer = await send(core.broker_url(NAMESPACE, "default"), GOOD, b"x" * 4096)
        assert status == 413
        assert "over the limit of 2048 bytes" in answer["error"]
        status, _ = await send(core.broker_url(NAMESPACE, "default"), GOOD, b"x" * 1000)
        assert status == 202
    finally:
        await core.stop()


async def test_metrics_and_health_are_served(core: BrokerCore) -> None:
    await send(core.broker_url(NAMESPACE, "default"), GOOD, b"")
    status, text = await send(core.url + "/metrics", {}, b"", method="GET")
    assert status == 200
    assert (
        'modelscale_broker_events_accepted_total{broker="default",namespace="models"} 1.0' in text
    )
    assert (await send(core.url + "/healthz", {}, b"", method="GET"))[0] == 200


@pytest.mark.parametrize(
    ("ttl", "structured"),
    [
        pytest.param("0", False, id="zero"),
        pytest.param("-1", False, id="negative"),
        pytest.param("many", False, id="not-a-number"),
        pytest.param("1.5", False, id="fraction"),
        pytest.param(0, True, id="structured-zero"),
    ],
)
async def test_event_with_used_up_or_unreadable_ttl_is_400_and_not_stored(
    core: BrokerCore, ttl: Any, structured: bool
) -> None:
    core.apply_trigger(trigger_obj("t", "http://127.0.0.1:9/"))
    if structured:
        attributes = {"specversion": "1.0", "id": "1", "source": "/s", "type": "t"}
        headers = {"Content-Type": "application/cloudevents+json"}
        body = json.dumps({**attributes, "knativebrokerttl": ttl}).encode()
    else:
        headers, body = {**GOOD, "ce-knativebrokerttl": ttl}, b""
    status, answer = await send(core.broker_url(NAMESPACE, "default"), headers, body)
    assert status == 400
    assert "knativebrokerttl must be an integer above 0" in answer["error"]
    assert repr(str(ttl)) in answer["error"]
    assert await core.delivery_counts() == {}


async def test_event_with_hops_left_is_accepted(core: BrokerCore) -> None:
    core.apply_trigger(trigger_obj("t", "http://127.0.0.1:9/"))
    headers = {**GOOD, "ce-knativebrokerttl": "1"}
    assert (await send(core.broker_url(NAMESPACE, "default"), headers, b""))[0] == 202
    assert await core.delivery_counts() == {"subscriber": 1}


async def test_a_trailing_slash_on_the_broker_address_is_accepted(core: BrokerCore) -> None:
    core.apply_trigger(trigger_obj("t", "http://127.0.0.1:9/"))
    status, _ = await send(f"{core.url}/{NAMESPACE}/default/", GOOD, b"")
    assert status == 202
    assert await core.delivery_counts() == {"subscriber": 1}


@pytest.mark.parametrize(
    "path",
    [
        pytest.param(f"/{NAMESPACE}/default/extra", id="extra-segment"),
        pytest.param(f"/{NAMESPACE}/default//", id="two-trailing-slashes"),
        pytest.param(f"/{NAMESPACE}", id="namespace-only"),
        pytest.param(f"/{NAMESPACE}//", id="empty-broker"),
        pytest.param("/", id="root"),
    ],
)
async def test_a_path_other_than_namespace_and_broker_is_400(core: BrokerCore, path: str) -> None:
    core.apply_trigger(trigger_obj("t", "http://127.0.0.1:9/"))
    status, answer = await send(core.url + path, GOOD, b"")
    assert status == 400
    assert answer == {"error": f"malformed URI {path!r}: an event is sent to /<namespace>/<broker>"}
    assert await core.delivery_counts() == {}
