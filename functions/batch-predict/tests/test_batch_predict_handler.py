"""batch-predict against a real KServe model server: concurrent events become one predict call."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from batch_predict import BatchConfig, create_app
from cloudevents.conversion import to_binary
from cloudevents.http import CloudEvent, from_http

pytestmark = pytest.mark.slow

FLOWERS = {
    "setosa": ([5.1, 3.5, 1.4, 0.2], 0),
    "versicolor": ([6.4, 3.2, 4.5, 1.5], 1),
    "virginica": ([6.7, 3.0, 5.2, 2.3], 2),
}


def send(app: Any, event_id: str, data: Any) -> tuple[int, CloudEvent]:
    headers, body = to_binary(
        CloudEvent({"type": "modelscale.inference.request", "source": "/t", "id": event_id}, data)
    )
    response = app.test_client().post("/", headers=headers, data=body)
    return response.status_code, from_http(dict(response.headers), response.get_data())


def test_concurrent_events_share_one_predict_call_and_get_their_own_answers(
    kserve_iris: Any,
) -> None:
    calls: list[int] = []

    def counting_post(url: str, payload: Any, **kwargs: Any) -> Any:
        from batch_predict.client import post_json

        calls.append(len(payload["instances"]))
        return post_json(url, payload, **kwargs)

    # A long window that only a full batch can end early: the test cannot pass by timing luck.
    app = create_app(
        BatchConfig(model_url_template=kserve_iris.url, batch_window_ms=10_000, max_batch=3),
        counting_post,
    )
    names = list(FLOWERS)
    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(
            pool.map(lambda n: send(app, n, {"model": "iris", "instances": [FLOWERS[n][0]]}), names)
        )
    assert calls == [3]
    for name, (status, reply) in zip(names, results, strict=True):
        assert status == 200
        assert reply["modelscalecorrelation"] == name
        assert reply["modelscalebatchsize"] == "3"
        assert reply.get_data()["predictions"] == [FLOWERS[name][1]]


def test_a_lone_event_is_answered_when_the_window_ends(kserve_iris: Any) -> None:
    app = create_app(
        BatchConfig(model_url_template=kserve_iris.url, batch_window_ms=20, max_batch=32)
    )
    status, reply = send(app, "alone", {"model": "iris", "instances": [FLOWERS["virginica"][0]]})
    assert (status, reply["modelscalebatchsize"], reply.get_data()["predictions"]) == (
        200,
        "1",
        [2],
    )


def test_bad_data_is_answered_at_once_with_an_error_event(kserve_iris: Any) -> None:
    app = create_app(BatchConfig(model_url_template=kserve_iris.url, batch_window_ms=10_000))
    status, reply = send(app, "bad", {"model": "iris", "inputs": []})
    assert status == 200
    assert reply["type"] == "modelscale.inference.error"
    assert reply.get_data()["retryable"] is False


def test_health_endpoints(kserve_iris: Any) -> None:
    client = create_app(BatchConfig(model_url_template=kserve_iris.url)).test_client()
    assert client.get("/health/liveness").status_code == 200
    assert client.get("/health/readiness").status_code == 200


IN_CLUSTER = "http://{model}-predictor.{namespace}.svc.cluster.local"


@pytest.mark.parametrize("model", ["a..b", ".", "x" * 70])
def test_a_model_name_that_is_not_a_dns_label_is_a_2xx_error_event(model: str) -> None:
    app = create_app(BatchConfig(model_url_template=IN_CLUSTER, batch_window_ms=1))
    status, reply = send(app, "bad-name", {"model": model, "instances": [[1]]})
    assert status == 200
    assert reply["type"] == "modelscale.inference.error"
    assert "data.model must be a DNS-1123 label" in reply.get_data()["reason"]
    assert repr(model) in reply.get_data()["reason"]
    assert reply.get_data()["retryable"] is False


def test_a_model_url_that_cannot_be_called_is_a_2xx_error_event_not_a_500() -> None:
    model = "x" * 63  # a valid name, but "<63 x>-predictor" is too long for a host name label
    app = create_app(BatchConfig(model_url_template=IN_CLUSTER, batch_window_ms=1))
    status, reply = send(app, "bad-url", {"model": model, "instances": [[1]]})
    assert status == 200
    assert reply["type"] == "modelscale.inference.error"
    assert "cannot call http://" in reply.get_data()["reason"]
    assert reply.get_data()["retryable"] is False
