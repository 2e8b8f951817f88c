"""batch-predict's HTTP surface: what is not an event at ``POST /`` is answered in JSON."""

from __future__ import annotations

from typing import Any

import pytest
from batch_predict import BatchConfig, create_app
from cloudevents.conversion import to_binary
from cloudevents.http import CloudEvent

IN_CLUSTER = "http://{model}-predictor.{namespace}.svc.cluster.local"


@pytest.mark.parametrize(
    ("method", "path", "status", "error", "allows"),
    [
        pytest.param("GET", "/", 405, "method GET is not allowed on /", "POST", id="get-events"),
        pytest.param("PUT", "/", 405, "method PUT is not allowed on /", "POST", id="put-events"),
        pytest.param(
            "POST",
            "/health/liveness",
            405,
            "method POST is not allowed on /health/liveness",
            "GET",
            id="post-health",
        ),
        pytest.param("GET", "/nope", 404, "no such path: GET /nope", None, id="unknown-path"),
        pytest.param("POST", "/v1/x", 404, "no such path: POST /v1/x", None, id="unknown-post"),
    ],
)
def test_a_method_or_path_the_function_does_not_take_is_a_json_error(
    method: str, path: str, status: int, error: str, allows: str | None, json_error: Any
) -> None:
    client = create_app(BatchConfig(model_url_template=IN_CLUSTER)).test_client()
    answer = client.open(path, method=method)
    json_error(answer, status, error, allows)


def test_an_unexpected_failure_is_a_json_500() -> None:
    def broken_transport(url: str, payload: Any, **kwargs: Any) -> Any:
        raise RuntimeError("transport broke")

    client = create_app(
        BatchConfig(model_url_template=IN_CLUSTER, batch_window_ms=1), broken_transport
    ).test_client()
    headers, body = to_binary(
        CloudEvent(
            {"type": "modelscale.inference.request", "source": "/t", "id": "e"},
            {"model": "iris", "instances": [[1.0]]},
        )
    )
    answer = client.post("/", headers=headers, data=body)
    assert (answer.status_code, answer.mimetype) == (500, "application/json")
    assert answer.get_json()["error"].startswith("Internal Server Error (POST /): ")
    assert "transport broke" not in answer.get_json()["error"]
