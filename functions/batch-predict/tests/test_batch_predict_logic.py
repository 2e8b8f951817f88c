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
            400, {"error": "bad shape"}, [(200, ERROR_TYPE, None)] * 2, id="model-refuses"
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
