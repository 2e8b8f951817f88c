"""predict-on-event against a real KServe model server (the one-machine replica), via Flask."""

from __future__ import annotations

import json
import socket
from typing import Any

import pytest
from cloudevents.conversion import to_binary, to_structured
from cloudevents.http import CloudEvent, from_http
from predict_on_event import FunctionConfig, create_app

pytestmark = pytest.mark.slow

SETOSA = [5.1, 3.5, 1.4, 0.2]
VIRGINICA = [6.7, 3.0, 5.2, 2.3]


def app_for(config: FunctionConfig) -> Any:
    return create_app(config).test_client()


def send(
    client: Any,
    data: Any,
    *,
    structured: bool = False,
    event_type: str = "modelscale.inference.request",
) -> tuple[int, CloudEvent]:
    event = CloudEvent({"type": event_type, "source": "/tests", "id": "req-1"}, data)
    headers, body = (to_structured if structured else to_binary)(event)
    response = client.post("/", headers=headers, data=body)
    reply = from_http(dict(response.headers), response.get_data())
    return response.status_code, reply


@pytest.fixture
def direct(kserve_iris: Any) -> Any:
    return app_for(FunctionConfig(model_url_template=kserve_iris.url, model_namespace="models"))


def test_v1_request_gets_a_prediction_with_the_correlation_id(direct: Any) -> None:
    status, reply = send(direct, {"model": "iris", "instances": [SETOSA, VIRGINICA]})
    assert status == 200
    assert reply["type"] == "modelscale.inference.response"
    assert reply["modelscalecorrelation"] == "req-1"
    assert reply["modelscalemodel"] == "iris"
    assert reply.get_data() == {"predictions": [0, 2]}


def test_v2_request_in_structured_mode_gets_outputs(direct: Any) -> None:
    inputs = [{"name": "input-0", "shape": [1, 4], "datatype": "FP32", "data": [SETOSA]}]
    status, reply = send(direct, {"model": "iris", "inputs": inputs}, structured=True)
    assert status == 200
    assert reply["type"] == "modelscale.inference.response"
    assert reply.get_data()["outputs"][0]["data"] == [0]


def test_ingress_mode_reaches_the_model_with_a_host_header(kserve_iris: Any) -> None:
    client = app_for(
        FunctionConfig(
            ingress_url=kserve_iris.url, model_host_template="{model}.{namespace}.example.com"
        )
    )
    status, reply = send(client, {"model": "iris", "instances": [SETOSA]})
    assert (status, reply.get_data()) == (200, {"predictions": [0]})


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        pytest.param({"model": "iris"}, "exactly one of", id="no-instances"),
        pytest.param(
            {"model": "nosuchmodel", "instances": [SETOSA]},
            "refused the request",
            id="unknown-model",
        ),
    ],
)
def test_bad_data_is_a_2xx_error_event_not_retried(direct: Any, data: Any, reason: str) -> None:
    status, reply = send(direct, data)
    assert status == 200
    assert reply["type"] == "modelscale.inference.error"
    assert reply["modelscalecorrelation"] == "req-1"
    assert reason in reply.get_data()["reason"]
    assert reply.get_data()["retryable"] is False


def test_a_models_500_is_502_so_the_broker_retries(direct: Any) -> None:
    """KServe's sklearn server answers input its estimator refuses (a wrong number of features)
    with 500: a model failure, retried, then dead-lettered with the reason."""
    status, reply = send(direct, {"model": "iris", "instances": [[1.0, 2.0]]})
    assert status == 502
    assert reply["type"] == "modelscale.inference.error"
    assert reply["modelscalecorrelation"] == "req-1"
    assert "X has 2 features" in reply.get_data()["reason"]
    assert reply.get_data()["retryable"] is True


def test_unreachable_model_is_503_so_the_broker_retries() -> None:
    with socket.socket() as sock:  # a port that nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = app_for(
        FunctionConfig(model_url_template=f"http://127.0.0.1:{port}", predict_timeout_s=2)
    )
    status, reply = send(client, {"model": "iris", "instances": [SETOSA]})
    assert status == 503
    assert reply["type"] == "modelscale.inference.error"
    assert reply.get_data()["retryable"] is True


def test_not_a_cloudevent_is_400(direct: Any) -> None:
    response = direct.post("/", data=b"hello", headers={"Content-Type": "text/plain"})
    assert response.status_code == 400
    assert "not a CloudEvent" in json.loads(response.get_data())["error"]


def test_health_endpoints(direct: Any) -> None:
    assert direct.get("/health/liveness").status_code == 200
    assert direct.get("/health/readiness").status_code == 200


IN_CLUSTER = "http://{model}-predictor.{namespace}.svc.cluster.local"


@pytest.mark.parametrize("model", ["a..b", ".", "x" * 70])
def test_a_model_name_that_is_not_a_dns_label_is_a_2xx_error_event(model: str) -> None:
    client = app_for(FunctionConfig(model_url_template=IN_CLUSTER, predict_timeout_s=2))
    status, reply = send(client, {"model": model, "instances": [SETOSA]})
    assert status == 200
    assert reply["type"] == "modelscale.inference.error"
    assert "data.model must be a DNS-1123 label" in reply.get_data()["reason"]
    assert repr(model) in reply.get_data()["reason"]
    assert reply.get_data()["retryable"] is False


def test_a_model_url_that_cannot_be_called_is_a_2xx_error_event_not_a_500() -> None:
    model = "x" * 63  # a valid name, but "<63 x>-predictor" is too long for a host name label
    client = app_for(FunctionConfig(model_url_template=IN_CLUSTER, predict_timeout_s=2))
    status, reply = send(client, {"model": model, "instances": [SETOSA]})
    assert status == 200
    assert reply["type"] == "modelscale.inference.error"
    assert reply["modelscalemodel"] == model
    assert "cannot call http://" in reply.get_data()["reason"]
    assert reply.get_data()["retryable"] is False
