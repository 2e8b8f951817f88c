"""predict-on-event's HTTP surface: what is not an event at ``POST /`` is answered in JSON."""

from __future__ import annotations

from typing import Any

import pytest
from predict_on_event import FunctionConfig, create_app

IN_CLUSTER = "http://{model}-predictor.{namespace}.svc.cluster.local"


@pytest.mark.parametrize(
    ("method", "path", "status", "error", "allows"),
    [
        pytest.param("GET", "/", 405, "method GET is not allowed on /", "POST", id="get-events"),
        pytest.param(
            "DELETE", "/", 405, "method DELETE is not allowed on /", "POST", id="delete-events"
        ),
        pytest.param(
            "PUT",
            "/health/readiness",
            405,
            "method PUT is not allowed on /health/readiness",
            "GET",
            id="put-health",
        ),
        pytest.param("GET", "/nope", 404, "no such path: GET /nope", None, id="unknown-path"),
    ],
)
def test_a_method_or_path_the_function_does_not_take_is_a_json_error(
    method: str, path: str, status: int, error: str, allows: str | None, json_error: Any
) -> None:
    client = create_app(FunctionConfig(model_url_template=IN_CLUSTER)).test_client()
    answer = client.open(path, method=method)
    json_error(answer, status, error, allows)
