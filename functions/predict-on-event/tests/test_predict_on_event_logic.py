"""predict-on-event's pure parts: request parsing, outcome classification, configuration."""

from __future__ import annotations

import json
from typing import Any

import pytest
from predict_on_event.config import ConfigError, FunctionConfig
from predict_on_event.logic import (
    ERROR_TYPE,
    RESPONSE_TYPE,
    BadRequest,
    PredictRequest,
    outcome_of_model_answer,
    parse_request,
)

REQUEST = "modelscale.inference.request"


@pytest.mark.parametrize(
    ("data", "protocol", "path"),
    [
        pytest.param(
            {"model": "iris", "instances": [[1, 2, 3, 4]]}, "v1", "/v1/models/iris:predict", id="v1"
        ),
        pytest.param(
            {
                "model": "iris",
                "inputs": [
                    {"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}
                ],
            },
            "v2",
            "/v2/models/iris/infer",
            id="v2",
        ),
        pytest.param(
            json.dumps({"model": "iris", "instances": [[1]]}).encode(),
            "v1",
            "/v1/models/iris:predict",
            id="bytes",
        ),
    ],
)
def test_requests_parse(data: Any, protocol: str, path: str) -> None:
    request = parse_request(REQUEST, data, "models")
    assert (request.protocol, request.path, request.namespace) == (protocol, path, "models")


@pytest.mark.parametrize(
    ("event_type", "data", "reason"),
    [
        pytest.param("other.type", {}, "is not 'modelscale.inference.request'", id="wrong-type"),
        pytest.param(REQUEST, b"{nope", "not JSON", id="not-json"),
        pytest.param(REQUEST, [1, 2], "must be a JSON object", id="array"),
        pytest.param(REQUEST, {"instances": [[1]]}, "data.model", id="no-model"),
        pytest.param(
            REQUEST, {"model": "Iris!", "instances": [[1]]}, "data.model", id="bad-model-name"
        ),
        pytest.param(REQUEST, {"model": "iris"}, "exactly one of", id="no-input"),
        pytest.param(
            REQUEST, {"model": "iris", "instances": [], "inputs": []}, "exactly one of", id="both"
        ),
        pytest.param(
            REQUEST, {"model": "iris", "instances": []}, "non-empty list", id="empty-instances"
        ),
        pytest.param(REQUEST, {"model": "iris", "inputs": [1]}, "list of tensors", id="bad-inputs"),
    ],
)
def test_bad_requests_say_why(event_type: str, data: Any, reason: str) -> None:
    with pytest.raises(BadRequest, match=reason):
        parse_request(event_type, data, "default")


V1 = PredictRequest("iris", "models", "v1", {"instances": [[1]]})


@pytest.mark.parametrize(
    ("status", "body", "http_status", "event_type", "retryable"),
    [
        pytest.param(200, b'{"predictions": [0]}', 200, RESPONSE_TYPE, None, id="ok"),
        pytest.param(200, b"<html>", 502, ERROR_TYPE, True, id="ok-but-not-json"),
        pytest.param(
            400, b'{"error": "bad shape"}', 200, ERROR_TYPE, False, id="model-refuses-input"
        ),
        pytest.param(404, b'{"error": "no model"}', 200, ERROR_TYPE, False, id="unknown-model"),
        pytest.param(500, b'{"error": "boom"}', 502, ERROR_TYPE, True, id="model-error"),
        pytest.param(503, b"", 502, ERROR_TYPE, True, id="model-unavailable"),
        pytest.param(429, b"", 502, ERROR_TYPE, True, id="throttled"),
    ],
)
def test_model_answers_become_outcomes(
    status: int, body: bytes, http_status: int, event_type: str, retryable: bool | None
) -> None:
    outcome = outcome_of_model_answer(V1, status, body)
    assert (outcome.http_status, outcome.event_type) == (http_status, event_type)
    if retryable is not None:
        assert outcome.data["retryable"] is retryable
        assert outcome.data["status"] == status


@pytest.mark.parametrize(
    ("env", "complaint"),
    [
        pytest.param({}, "exactly one of MODEL_URL_TEMPLATE or INGRESS_URL", id="nothing"),
        pytest.param(
            {"MODEL_URL_TEMPLATE": "http://{model}.{ns}"},
            "unknown placeholder",
            id="bad-placeholder",
        ),
        pytest.param(
            {"MODEL_URL_TEMPLATE": "{model}.svc"},
            r"'\{model\}.svc': expected an absolute http\(s\) URL",
            id="not-a-url",
        ),
        pytest.param(
            {"INGRESS_URL": "http://127.0.0.1:80"},
            "MODEL_HOST_TEMPLATE is required",
            id="ingress-without-host",
        ),
        pytest.param(
            {"MODEL_URL_TEMPLATE": "http://x", "PREDICT_TIMEOUT_S": "soon"},
            "PREDICT_TIMEOUT_S='soon'",
            id="timeout-not-number",
        ),
        pytest.param(
            {"MODEL_URL_TEMPLATE": "http://x", "PREDICT_TIMEOUT_S": "0"},
            r"PREDICT_TIMEOUT_S=0.0: must be in \(0, 3600\]",
            id="timeout-zero",
        ),
    ],
)
def test_bad_configuration_is_refused_at_start(env: dict[str, str], complaint: str) -> None:
    with pytest.raises(ConfigError, match=complaint):
        FunctionConfig.from_env(env)


def test_endpoint_modes() -> None:
    direct = FunctionConfig.from_env(
        {"MODEL_URL_TEMPLATE": "http://{model}.{namespace}.example.com/"}
    )
    assert direct.endpoint("iris", "models") == ("http://iris.models.example.com", {})
    ingress = FunctionConfig.from_env(
        {
            "INGRESS_URL": "http://127.0.0.1:8080",
            "MODEL_HOST_TEMPLATE": "{model}.{namespace}.example.com",
        }
    )
    assert ingress.endpoint("iris", "models") == (
        "http://127.0.0.1:8080",
        {"Host": "iris.models.example.com"},
    )


@pytest.mark.parametrize("name", ["a..b", ".", "x" * 64, "-iris", "iris-", "Iris", "ir_is", ""])
@pytest.mark.parametrize("key", ["model", "namespace"])
def test_model_and_namespace_must_be_dns_labels(key: str, name: str) -> None:
    data = {"model": "iris", "instances": [[1]], key: name}
    with pytest.raises(BadRequest) as info:
        parse_request(REQUEST, data, "default")
    assert str(info.value).startswith(f"data.{key} must be a DNS-1123 label")
    assert str(info.value).endswith(f"got {name!r}")


@pytest.mark.parametrize("name", ["iris", "x" * 63, "1-model", "a"])
def test_dns_label_names_are_accepted(name: str) -> None:
    request = parse_request(REQUEST, {"model": name, "namespace": name, "instances": [[1]]}, "d")
    assert (request.model, request.namespace) == (name, name)
