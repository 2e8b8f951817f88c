"""Delivery through a real broker ingress to real subscribers, timed by a ManualClock.

The broker core runs with ``deliver=False`` and the test calls ``deliver_due()`` (the tick) after
moving the clock, so retry and backoff timelines are checked exactly, without sleeping.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import aiohttp
import pytest
from cloudevents.conversion import to_binary, to_structured
from cloudevents.http import CloudEvent
from prometheus_client import CollectorRegistry

from autoscaler.clock import ManualClock
from autoscaler.eventing import BrokerCore
from autoscaler.eventing.events import arrival_time
from tests.eventing.fakes import NAMESPACE, broker_obj, trigger_obj


def request(**attributes: Any) -> CloudEvent:
    attributes.setdefault("type", "modelscale.inference.request")
    attributes.setdefault("source", "/tests")
    return CloudEvent(attributes, {"model": "iris", "instances": [[1, 2, 3, 4]]})


async def post(
    core: BrokerCore, event: CloudEvent, *, structured: bool = False, broker: str = "default"
) -> int:
    headers, body = (to_structured if structured else to_binary)(event)
    async with (
        aiohttp.ClientSession() as session,
        session.post(core.broker_url(NAMESPACE, broker), headers=headers, data=body) as response,
    ):
        return response.status


def metric(core: BrokerCore, name: str, **labels: str) -> float:
    registry: CollectorRegistry = core.metrics.registry
    return (
        registry.get_sample_value(name, {"namespace": NAMESPACE, "broker": "default", **labels})
        or 0.0
    )


async def test_binary_and_structured_events_are_accepted_and_delivered(
    core: BrokerCore, subscribers: Any
) -> None:
    sub = await subscribers()
    core.apply_trigger(trigger_obj("all", sub.url))
    binary, structured = request(id="b-1"), request(id="s-1")
    assert await post(core, binary) == 202
    assert await post(core, structured, structured=True) == 202
    await core.deliver_due()
    assert sorted(sub.ids()) == ["b-1", "s-1"]
    for received in sub.received:
        assert received.headers["ce-type"] == "modelscale.inference.request"  # binary mode
        assert received.headers["Prefer"] == "reply"
        assert "knativebrokerttl" not in received.event.get_attributes()
        # when the ingress took it, on the broker's clock (Knative's knativearrivaltime)
        assert received.headers["ce-knativearrivaltime"] == arrival_time(core.clock.wall())
    assert metric(core, "modelscale_broker_events_accepted_total") == 2
    assert metric(core, "modelscale_broker_events_delivered_total", trigger="all") == 2


async def test_filters_pick_the_events_of_each_trigger(core: BrokerCore, subscribers: Any) -> None:
    iris, other, everything = await subscribers(), await subscribers(), await subscribers()
    core.apply_trigger(
        trigger_obj(
            "iris",
            iris.url,
            filter_attributes={"type": "modelscale.inference.request", "model": "iris"},
        )
    )
    core.apply_trigger(
        trigger_obj("other", other.url, filter_attributes={"type": "something.else"})
    )
    core.apply_trigger(trigger_obj("everything", everything.url))
    assert await post(core, request(id="1", model="iris")) == 202
    assert await post(core, request(id="2", model="resnet")) == 202
    await core.deliver_due()
    assert iris.ids() == ["1"]
    assert other.ids() == []
    assert sorted(everything.ids()) == ["1", "2"]


async def test_failing_twice_then_succeeding_follows_the_exponential_backoff(
    core: BrokerCore, subscribers: Any, clock: ManualClock
) -> None:
    sub = await subscribers(statuses=[503, 500])
    delivery = {"retry": 3, "backoffPolicy": "exponential", "backoffDelay": "PT0.2S"}
    core.apply_trigger(trigger_obj("flaky", sub.url, delivery=delivery))
    assert await post(core, request(id="r-1")) == 202
    timeline = [(0.0, 1), (0.19, 1), (0.2, 2), (0.59, 2), (0.6, 3), (5.0, 3)]
    for at, expected in timeline:
        clock.set(at)
        await core.deliver_due()
        assert len(sub.received) == expected, f"at t={at}"
    assert [round(r.at, 6) for r in sub.received] == [0.0, 0.2, 0.6]
    assert await core.delivery_counts() == {"delivered": 1}
    assert metric(core, "modelscale_broker_delivery_retries_total", trigger="flaky") == 2


async def test_always_failing_subscriber_lands_in_the_dead_letter_sink_after_the_retries(
    core: BrokerCore, subscribers: Any, clock: ManualClock
) -> None:
    broken, dls = await subscribers(statuses=[503] * 10), await subscribers()
    delivery = {
        "retry": 2,
        "backoffPolicy": "linear",
        "backoffDelay": "PT0.1S",
        "deadLetterSink": {"uri": dls.url},
    }
    core.apply_trigger(trigger_obj("broken", broken.url, delivery=delivery))
    assert await post(core, request(id="d-1")) == 202
    for at in (0.0, 0.1, 0.3):
        clock.set(at)
        await core.deliver_due()
    # linear: retry 1 at once (0 × 0.1 s), retry 2 after 1 × 0.1 s
    assert [round(r.at, 6) for r in broken.received] == [0.0, 0.0, 0.1]
    assert dls.ids() == ["d-1"]
    dead = dls.received[0].event.get_attributes()
    assert dead["knativeerrorcode"] == "503"
    assert dead["knativeerrordest"] == broken.url
    assert base64.b64decode(dead["knativeerrordata"]) == b"scripted answer"
    assert await core.delivery_counts() == {"dead_lettered": 1}
    assert metric(core, "modelscale_broker_events_dead_lettered_total", trigger="broken") == 1


async def test_non_retryable_answer_goes_to_the_dead_letter_sink_at_once(
    core: BrokerCore, subscribers: Any
) -> None:
    rejecting, dls = await subscribers(statuses=[400]), await subscribers()
    delivery = {
        "retry": 5,
        "backoffPolicy": "linear",
        "backoffDelay": "PT1S",
        "deadLetterSink": {"uri": dls.url},
    }
    core.apply_trigger(trigger_obj("rejecting", rejecting.url, delivery=delivery))
    assert await post(core, request(id="n-1")) == 202
    await core.deliver_due()
    assert len(rejecting.received) == 1
    assert dls.ids() == ["n-1"]


async def test_without_dead_letter_sink_the_event_is_dropped_and_counted(
    core: BrokerCore, subscribers: Any, caplog: pytest.LogCaptureFixture
) -> None:
    broken = await subscribers(statuses=[500, 500])
    core.apply_trigger(trigger_obj("broken", broken.url, delivery={"retry": 1}))
    assert await post(core, request(id="x-1")) == 202
    await core.deliver_due()
    assert len(broken.received) == 2
    assert await core.delivery_counts() == {"dropped": 1}
    assert (
        metric(
            core,
            "modelscale_broker_events_dropped_total",
            trigger="broken",
            reason="retries_exhausted_no_dead_letter_sink",
        )
        == 1
    )
    assert "dropped event" in caplog.text


async def test_broker_delivery_applies_when_the_trigger_has_none(
    tmp_path: Any, clock: ManualClock, subscribers: Any
) -> None:
    broken, dls = await subscribers(statuses=[500] * 5), await subscribers()
    core = BrokerCore(tmp_path / "b.db", lambda ref, ns: None, clock=clock)
    core.apply_broker(broker_obj(delivery={"retry": 1, "deadLetterSink": {"uri": dls.url}}))
    core.apply_trigger(trigger_obj("t", broken.url))
    await core.start(deliver=False)
    try:
        assert await post(core, request(id="b-1")) == 202
        await core.deliver_due()
        assert len(broken.received) == 2
        assert dls.ids() == ["b-1"]
    finally:
        await core.stop()


async def test_a_reply_goes_back_into_the_broker_and_reaches_a_second_trigger(
    core: BrokerCore, subscribers: Any
) -> None:
    def respond(event: CloudEvent) -> CloudEvent:
        return CloudEvent(
            {
                "type": "modelscale.inference.response",
                "source": "/predictor",
                "modelscalecorrelation": event["id"],
                "knativearrivaltime": "2000-01-01T00:00:00Z",  # the broker's own replaces it
            },
            b'{"predictions": [1]}',
        )

    predictor, listener = await subscribers(reply=respond), await subscribers()
    core.apply_trigger(
        trigger_obj(
            "predict", predictor.url, filter_attributes={"type": "modelscale.inference.request"}
        )
    )
    core.apply_trigger(
        trigger_obj(
            "listen", listener.url, filter_attributes={"type": "modelscale.inference.response"}
        )
    )
    accepted_at = core.clock.wall()
    assert await post(core, request(id="q-1")) == 202
    core.clock.advance(5.0)  # type: ignore[attr-defined]
    await core.deliver_due()
    assert predictor.ids() == ["q-1"]
    assert predictor.received[0].event["knativearrivaltime"] == arrival_time(accepted_at)
    assert len(listener.received) == 1
    answer = listener.received[0].event
    assert answer["modelscalecorrelation"] == "q-1"
    assert answer["knativearrivaltime"] == arrival_time(accepted_at + 5.0)
    assert answer.get_data() == b'{"predictions": [1]}'
    assert metric(core, "modelscale_broker_replies_total", trigger="predict") == 1


async def test_reply_loops_stop_at_the_ttl(
    tmp_path: Any, clock: ManualClock, subscribers: Any
) -> None:
    from autoscaler.eventing import BrokerSettings

    echo = await subscribers(
        reply=lambda e: CloudEvent({"type": e["type"], "source": "/echo"}, b"again")
    )
    core = BrokerCore(
        tmp_path / "b.db", lambda ref, ns: None, clock=clock, settings=BrokerSettings(default_ttl=3)
    )
    core.apply_broker(broker_obj())
    core.apply_trigger(trigger_obj("echo", echo.url))
    await core.start(deliver=False)
    try:
        assert await post(core, request(id="loop")) == 202
        await core.deliver_due()
        assert len(echo.received) == 3  # the original and two replies; the third reply has TTL 0
    finally:
        await core.stop()


async def test_subscriber_ref_is_resolved_by_the_callback(
    tmp_path: Any, clock: ManualClock, subscribers: Any
) -> None:
    sub = await subscribers()
    seen: list[tuple[str, str]] = []

    def resolve(ref: Any, namespace: str) -> str | None:
        seen.append((ref["name"], namespace))
        return sub.url.rstrip("/") if ref["name"] == "predict-on-event" else None

    core = BrokerCore(tmp_path / "b.db", resolve, clock=clock)
    core.apply_broker(broker_obj())
    trigger = trigger_obj("ref", "unused")
    trigger["spec"]["subscriber"] = {
        "ref": {
            "apiVersion": "serving.knative.dev/v1",
            "kind": "Service",
            "name": "predict-on-event",
        },
        "uri": "/events",
    }
    core.apply_trigger(trigger)
    await core.start(deliver=False)
    try:
        assert await post(core, request(id="ref-1")) == 202
        await core.deliver_due()
        assert sub.ids() == ["ref-1"]
        assert seen == [("predict-on-event", NAMESPACE)]
    finally:
        await core.stop()


async def test_number_and_boolean_extensions_are_delivered_as_header_strings(
    core: BrokerCore, subscribers: Any
) -> None:
    sub = await subscribers()
    core.apply_trigger(trigger_obj("flags", sub.url, filter_attributes={"flag": "true"}))
    body = json.dumps(
        {"specversion": "1.0", "id": "n-1", "source": "/t", "type": "x", "priority": 1}
        | {"flag": True, "data": {"a": 1}}
    )
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            core.broker_url(NAMESPACE, "default"),
            data=body,
            headers={"Content-Type": "application/cloudevents+json"},
        ) as response,
    ):
        assert response.status == 202
    assert await core.deliver_due() == 1
    assert sub.ids() == ["n-1"]
    assert sub.received[0].headers["ce-priority"] == "1"
    assert sub.received[0].headers["ce-flag"] == "true"
    assert await core.delivery_counts() == {"delivered": 1}


async def test_an_unexpected_error_is_a_failed_attempt_retried_then_dead_lettered(
    tmp_path: Any, clock: ManualClock, subscribers: Any, caplog: pytest.LogCaptureFixture
) -> None:
    dls = await subscribers()

    def broken_resolver(ref: Any, namespace: str) -> str | None:
        raise RuntimeError("the informer cache is broken")

    core = BrokerCore(tmp_path / "b.db", broken_resolver, clock=clock)
    core.apply_broker(broker_obj())
    trigger = trigger_obj(
        "t",
        "unused",
        delivery={
            "retry": 2,
            "backoffPolicy": "exponential",
            "backoffDelay": "PT1S",
            "deadLetterSink": {"uri": dls.url},
        },
    )
    trigger["spec"]["subscriber"] = {
        "ref": {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "fn"}
    }
    core.apply_trigger(trigger)
    await core.start(deliver=False)
    try:
        assert await post(core, request(id="u-1")) == 202
        # one attempt per tick, never the same row again at once; 0, 1 and 3 s (exponential)
        made = []
        for at in (0.0, 0.5, 1.0, 2.9, 3.0):
            clock.set(at)
            made.append(await core.deliver_due())
        assert made == [1, 0, 1, 0, 2]  # the last tick: the third attempt and the dead letter
        assert dls.ids() == ["u-1"]
        dead = dls.received[0].event.get_attributes()
        assert dead["knativeerrorcode"] == "500"  # no response, as Knative records it
        assert dead["knativeerrordest"] == "trigger models/t"
        assert b"RuntimeError: the informer cache is broken" in base64.b64decode(
            dead["knativeerrordata"]
        )
        assert await core.delivery_counts() == {"dead_lettered": 1}
        assert metric(core, "modelscale_broker_delivery_retries_total", trigger="t") == 2
        assert caplog.text.count("failed unexpectedly") == 3  # once per attempt
    finally:
        await core.stop()


def big_reply(size: int) -> Any:
    payload = json.dumps({"predictions": ["x" * 100] * (size // 103)}).encode()

    def respond(event: CloudEvent) -> CloudEvent:
        return CloudEvent(
            {
                "type": "modelscale.inference.response",
                "source": "/f",
                "datacontenttype": "application/json",
            },
            payload,
        )

    return payload, respond


async def test_a_large_reply_is_read_whole(core: BrokerCore, subscribers: Any) -> None:
    payload, respond = big_reply(600_000)  # many read chunks, under the 4 MiB limit
    fn, listener = await subscribers(reply=respond), await subscribers()
    core.apply_trigger(
        trigger_obj("predict", fn.url, filter_attributes={"type": "modelscale.inference.request"})
    )
    core.apply_trigger(
        trigger_obj(
            "listen", listener.url, filter_attributes={"type": "modelscale.inference.response"}
        )
    )
    assert await post(core, request(id="big-1")) == 202
    await core.deliver_due()
    assert len(listener.received) == 1
    assert listener.received[0].event.get_data() == payload
    assert await core.delivery_counts() == {"delivered": 2}


async def test_a_reply_over_the_size_limit_is_a_failed_delivery(
    tmp_path: Any, clock: ManualClock, subscribers: Any
) -> None:
    from autoscaler.eventing import BrokerSettings

    _, respond = big_reply(100_000)
    fn, listener, dls = (
        await subscribers(reply=respond),
        await subscribers(),
        await subscribers(),
    )
    core = BrokerCore(
        tmp_path / "b.db",
        lambda ref, ns: None,
        clock=clock,
        settings=BrokerSettings(max_event_bytes=64 * 1024),
    )
    core.apply_broker(broker_obj())
    core.apply_trigger(
        trigger_obj(
            "predict",
            fn.url,
            filter_attributes={"type": "modelscale.inference.request"},
            delivery={"retry": 1, "deadLetterSink": {"uri": dls.url}},
        )
    )
    core.apply_trigger(
        trigger_obj(
            "listen", listener.url, filter_attributes={"type": "modelscale.inference.response"}
        )
    )
    await core.start(deliver=False)
    try:
        assert await post(core, request(id="huge-1")) == 202
        await core.deliver_due()
        assert fn.ids() == ["huge-1", "huge-1"]  # retried like a 502
        assert listener.received == []  # no prefix of the reply was stored
        assert dls.ids() == ["huge-1"]
        dead = dls.received[0].event.get_attributes()
        assert dead["knativeerrorcode"] == "502"
        assert b"over the limit of 65536 bytes" in base64.b64decode(dead["knativeerrordata"])
        assert await core.delivery_counts() == {"dead_lettered": 1}
    finally:
        await core.stop()


@pytest.mark.parametrize(
    ("headers", "body", "complaint"),
    [
        pytest.param(
            {"Content-Type": "application/json"},
            b'{"predictions": [1]}',
            b"body that is not a CloudEvent",
            id="not-an-event",
        ),
        pytest.param(
            {"ce-specversion": "1.0", "ce-type": "reply", "Content-Type": "application/json"},
            b"{}",
            b"not a valid CloudEvent: missing required attribute header(s) ce-id, ce-source",
            id="malformed-event",
        ),
    ],
)
async def test_a_2xx_that_is_neither_empty_nor_an_event_is_a_failed_delivery(
    core: BrokerCore, subscribers: Any, headers: dict[str, str], body: bytes, complaint: bytes
) -> None:
    odd, dls = await subscribers(raw_answer=(headers, body)), await subscribers()
    core.apply_trigger(
        trigger_obj("odd", odd.url, delivery={"retry": 1, "deadLetterSink": {"uri": dls.url}})
    )
    assert await post(core, request(id="o-1")) == 202
    await core.deliver_due()
    assert odd.ids() == ["o-1", "o-1"]
    assert dls.ids() == ["o-1"]
    dead = dls.received[0].event.get_attributes()
    assert dead["knativeerrorcode"] == "502"
    assert complaint in base64.b64decode(dead["knativeerrordata"])
    assert await core.delivery_counts() == {"dead_lettered": 1}


async def test_a_202_answer_is_delivered_and_its_body_is_not_a_reply(
    core: BrokerCore, subscribers: Any
) -> None:
    fn = await subscribers(
        statuses=[202], reply=lambda e: CloudEvent({"type": "status.monitor", "source": "/f"}, b"x")
    )
    watcher = await subscribers()
    core.apply_trigger(
        trigger_obj("predict", fn.url, filter_attributes={"type": "modelscale.inference.request"})
    )
    core.apply_trigger(
        trigger_obj("monitor", watcher.url, filter_attributes={"type": "status.monitor"})
    )
    assert await post(core, request(id="a-1")) == 202
    await core.deliver_due()
    assert fn.ids() == ["a-1"]
    assert watcher.received == []
    assert await core.delivery_counts() == {"delivered": 1}
    assert metric(core, "modelscale_broker_replies_total", trigger="predict") == 0


@pytest.mark.parametrize("event_format", ["json", "binary", None])
async def test_delivery_format_picks_structured_or_binary_mode(
    core: BrokerCore, subscribers: Any, event_format: str | None
) -> None:
    sub, dls = await subscribers(statuses=[400]), await subscribers()
    delivery: dict[str, Any] = {"deadLetterSink": {"uri": dls.url}}
    if event_format is not None:
        delivery["format"] = event_format
    core.apply_trigger(trigger_obj("t", sub.url, delivery=delivery))
    event = request(id="f-1", priority="high", datacontenttype="application/json")
    assert await post(core, event) == 202
    await core.deliver_due()
    for received in (sub.received[0], dls.received[0]):  # the dead letter in the same format
        content_type = received.headers["Content-Type"]
        if event_format == "json":
            assert content_type == "application/cloudevents+json"
            assert "ce-id" not in received.headers
        else:
            assert content_type == "application/json"
            assert received.headers["ce-id"] == "f-1"
        data = json.loads(received.event.get_data())
        assert data == {"model": "iris", "instances": [[1, 2, 3, 4]]}
        assert received.event["id"] == "f-1"
        assert received.event["priority"] == "high"
