"""batch-predict's pure parts: parsing, merging, splitting, configuration."""

from __future__ import annotations

import json
from typing import Any

import pytest
from batch_predict.config import BatchConfig, ConfigError
from batch_predict.logic import (
    ERROR_TYPE,
    RESPONSE_TYPE,
    BadRequest,
    BatchItem,
    ask_each_alone,
    merge,
    outcomes_for_answer,
    parse_item,
)

ITEMS = [BatchItem("iris", "models", [[1], [2]]), BatchItem("iris", "models", [[3]])]


def test_merge_concatenates_in_arrival_order() -> None:
    assert merge(ITEMS) == {"instances": [[1], [2], [3]]}


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        pytest.param(
            200,
            {"predictions": [0, 1, 2]},
            [(200, RESPONSE_TYPE, [0, 1]), (200, RESPONSE_TYPE, [2])],
            id="split-by-count",
        ),
        pytest.param(
            200, {"predictions": [0, 1]}, [(502, ERROR_TYPE, None)] * 2, id="count-mismatch"
        ),
        pytest.param(
            404, {"error": "no model"}, [(200, ERROR_TYPE, None)] * 2, id="model-not-found"
        ),
        pytest.param(500, {"error": "boom"}, [(502, ERROR_TYPE, None)] * 2, id="model-fails"),
    ],
)
def test_answer_becomes_one_outcome_per_event(
    status: int, body: Any, expected: list[tuple[int, str, Any]]
) -> None:
    outcomes = outcomes_for_answer(ITEMS, status, json.dumps(body).encode())
    got = [(o.http_status, o.event_type, o.data.get("predictions")) for o in outcomes]
    assert got == expected
    assert [o.batch_size for o in outcomes] == [2, 2]


@pytest.mark.parametrize(
    ("events", "status", "alone"),
    [
        pytest.param(2, 400, True, id="refused-batch"),
        pytest.param(2, 422, True, id="unprocessable-batch"),
        pytest.param(2, 413, True, id="batch-too-large"),
        pytest.param(1, 400, False, id="refused-single-event"),
        pytest.param(2, 404, False, id="model-not-found"),
        pytest.param(2, 408, False, id="model-timed-out"),
        pytest.param(2, 429, False, id="model-sheds-load"),
        pytest.param(2, 500, True, id="model-fails-on-the-batch"),
        pytest.param(1, 500, False, id="model-fails-on-a-single-event"),
        pytest.param(2, 502, False, id="bad-gateway"),
        pytest.param(2, 503, False, id="model-unavailable"),
        pytest.param(2, 504, False, id="gateway-timeout"),
        pytest.param(2, 200, False, id="predicted"),
    ],
)
def test_only_a_batch_of_several_events_refused_or_failed_by_the_model_is_asked_event_by_event(
    events: int, status: int, alone: bool
) -> None:
    assert ask_each_alone(ITEMS[:events], status) is alone


@pytest.mark.parametrize(
    ("items", "refused"),
    [
        pytest.param(ITEMS[:1], "model 'iris' refused the request: bad shape", id="one-event"),
        pytest.param(
            ITEMS, "model 'iris' refused the batch of 2 events: bad shape", id="two-events"
        ),
    ],
)
def test_a_refusal_names_what_was_refused_and_why(items: list[BatchItem], refused: str) -> None:
    outcomes = outcomes_for_answer(items, 400, b'{"error": "bad shape"}')
    assert {o.data["reason"] for o in outcomes} == {refused}
    assert {(o.data["status"], o.data["retryable"]) for o in outcomes} == {(400, False)}


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        pytest.param(
            {"model": "iris", "inputs": []}, "send V2 'inputs' to predict-on-event", id="v2"
        ),
        pytest.param({"model": "iris", "instances": []}, "non-empty list", id="empty"),
        pytest.param({"instances": [[1]]}, "data.model", id="no-model"),
        pytest.param(
            {"model": "a..b", "instances": [[1]]},
            "data.model must be a DNS-1123 label .* got 'a..b'",
            id="model-not-a-dns-label",
        ),
        pytest.param(
            {"model": "x" * 64, "instances": [[1]]}, "data.model must be", id="model-too-long"
        ),
        pytest.param(
            {"model": "iris", "namespace": ".", "instances": [[1]]},
            "data.namespace must be a DNS-1123 label .* got '.'",
            id="namespace-not-a-dns-label",
        ),
    ],
)
def test_unbatchable_events_say_why(data: Any, reason: str) -> None:
    with pytest.raises(BadRequest, match=reason):
        parse_item("modelscale.inference.request", data, "default")


@pytest.mark.parametrize(
    ("env", "complaint"),
    [
        pytest.param(
            {"MODEL_URL_TEMPLATE": "http://x", "MAX_BATCH": "0"},
            r"MAX_BATCH=0: must be in \[1, 10000\]",
            id="max-batch",
        ),
        pytest.param(
            {"MODEL_URL_TEMPLATE": "http://x", "BATCH_WINDOW_MS": "0"},
            r"BATCH_WINDOW_MS=0.0: must be in \(0, 10000\]",
            id="window",
        ),
        pytest.param({"MODEL_URL_TEMPLATE": "x.svc"}, "expected an absolute http", id="not-a-url"),
        pytest.param({}, "exactly one of", id="no-endpoint"),
        pytest.param(
            {"MODEL_URL_TEMPLATE": "http://x", "MODEL_NAMESPACE": "a..b"},
            "MODEL_NAMESPACE='a..b': must be a namespace name",
            id="namespace",
        ),
    ],
)
def test_bad_configuration_is_refused(env: dict[str, str], complaint: str) -> None:
    with pytest.raises(ConfigError, match=complaint):
        BatchConfig.from_env(env)
