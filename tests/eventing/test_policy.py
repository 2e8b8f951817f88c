"""Pure parts of delivery: ISO 8601 durations, retry schedules, retryable answers, overrides."""

from __future__ import annotations

import pytest

from autoscaler.eventing import (
    DeliveryConfigError,
    DurationError,
    effective_delivery,
    is_retryable,
    parse_delivery,
    parse_duration_s,
)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        pytest.param("PT0.2S", 0.2, id="fraction-of-second"),
        pytest.param("PT1S", 1.0, id="one-second"),
        pytest.param("PT1M30S", 90.0, id="minutes-and-seconds"),
        pytest.param("PT2H", 7200.0, id="hours"),
        pytest.param("P1DT1S", 86401.0, id="day-and-second"),
        pytest.param("P1W", 604800.0, id="week"),
        pytest.param("PT0,5S", 0.5, id="comma-fraction"),
        pytest.param("PT1.5M", 90.0, id="fraction-on-last-component"),
        pytest.param("pt3s", 3.0, id="lowercase"),
    ],
)
def test_durations_parse(text: str, seconds: float) -> None:
    assert parse_duration_s(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        pytest.param("0.2", "not an ISO 8601 duration", id="bare-number"),
        pytest.param("200ms", "not an ISO 8601 duration", id="go-style"),
        pytest.param("P", "not an ISO 8601 duration", id="empty-period"),
        pytest.param("PT", "not an ISO 8601 duration", id="empty-time"),
        pytest.param("P1DT", "not an ISO 8601 duration", id="dangling-T"),
        pytest.param("-PT1S", "not an ISO 8601 duration", id="negative"),
        pytest.param("PT1.5M2S", "only the last component", id="fraction-not-last"),
        pytest.param("P1M", "years or months", id="months"),
        pytest.param("P1Y", "years or months", id="years"),
    ],
)
def test_bad_durations_are_refused_clearly(text: str, complaint: str) -> None:
    with pytest.raises(DurationError, match=complaint) as info:
        parse_duration_s(text, key="spec.delivery.backoffDelay")
    assert "spec.delivery.backoffDelay" in str(info.value)


@pytest.mark.parametrize(
    ("delivery", "offsets_s"),
    [
        pytest.param(
            {"retry": 3, "backoffPolicy": "exponential", "backoffDelay": "PT0.2S"},
            [0.0, 0.2, 0.6, 1.4],
            id="exponential-0.2s",
        ),
        pytest.param(
            {"retry": 3, "backoffPolicy": "linear", "backoffDelay": "PT0.2S"},
            [0.0, 0.0, 0.2, 0.6],
            id="linear-0.2s",
        ),
        pytest.param({"retry": 2}, [0.0, 0.0, 0.0], id="no-backoff-retries-at-once"),
        pytest.param(
            {"retry": 2, "backoffDelay": "PT1S"}, [0.0, 0.0, 0.0], id="delay-without-policy"
        ),
        pytest.param({}, [0.0], id="no-retry"),
    ],
)
def test_retry_schedule_follows_knative(
    delivery: dict[str, object], offsets_s: list[float]
) -> None:
    assert parse_delivery(delivery).schedule_s() == pytest.approx(offsets_s)


@pytest.mark.parametrize(
    ("delivery", "complaint"),
    [
        pytest.param({"backoffDelay": "0.2s"}, "backoffDelay", id="bad-delay"),
        pytest.param({"backoffPolicy": "fibonacci"}, "backoffPolicy", id="bad-policy"),
        pytest.param({"retry": -1}, "retry", id="negative-retry"),
        pytest.param({"retry": "three"}, "retry", id="retry-not-a-number"),
        pytest.param({"deadLetterSink": {}}, "deadLetterSink", id="empty-sink"),
        pytest.param({"format": "xml"}, "format: 'xml' is not one of json, binary", id="format"),
    ],
)
def test_bad_delivery_names_the_field(delivery: dict[str, object], complaint: str) -> None:
    with pytest.raises(DeliveryConfigError, match=complaint):
        parse_delivery(delivery)


@pytest.mark.parametrize(
    ("status", "retry"),
    [
        pytest.param(None, True, id="no-response"),
        pytest.param(500, True, id="500"),
        pytest.param(503, True, id="503"),
        pytest.param(404, True, id="404-starting-pod"),
        pytest.param(408, True, id="408"),
        pytest.param(409, True, id="409"),
        pytest.param(429, True, id="429"),
        pytest.param(400, False, id="400"),
        pytest.param(401, False, id="401"),
        pytest.param(302, False, id="302"),
    ],
)
def test_which_answers_are_retried(status: int | None, retry: bool) -> None:
    assert is_retryable(status) is retry


BROKER = {"spec": {"delivery": {"retry": 5, "deadLetterSink": {"uri": "http://127.0.0.1:1/dls"}}}}


def test_trigger_delivery_replaces_the_brokers_but_keeps_its_dead_letter_sink() -> None:
    trigger = {
        "spec": {"delivery": {"retry": 1, "backoffPolicy": "linear", "backoffDelay": "PT1S"}}
    }
    policy = effective_delivery(trigger, BROKER)
    assert (policy.retry, policy.backoff_policy, policy.backoff_delay_s) == (1, "linear", 1.0)
    assert policy.dead_letter_sink == {"uri": "http://127.0.0.1:1/dls"}


def test_trigger_without_delivery_uses_the_brokers() -> None:
    policy = effective_delivery({"spec": {}}, BROKER)
    assert policy.retry == 5
