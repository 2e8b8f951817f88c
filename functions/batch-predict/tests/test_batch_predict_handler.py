"""batch-predict against a real KServe model server: concurrent events become one predict call."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from batch_predict import BatchConfig, create_app
from batch_predict.client import post_json
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


def counting(calls: list[int], then: Callable[..., Any] = post_json) -> Callable[..., Any]:
    """The real model client, noting the number of instances of each call in ``calls``."""

    def post(url: str, payload: Any, **kwargs: Any) -> Any:
        calls.append(len(payload["instances"]))
        return then(url, payload, **kwargs)

    return post


def send_all(app: Any, events: dict[str, Any]) -> dict[str, tuple[int, CloudEvent]]:
    """Each (id, data) sent at once from its own thread, as the broker delivers side by side."""
    with ThreadPoolExecutor(max_workers=len(events)) as pool:
        answers = pool.map(lambda eid: send(app, eid, events[eid]), events)
        return dict(zip(events, answers, strict=True))


def test_concurrent_events_share_one_predict_call_and_get_their_own_answers(
    kserve_iris: Any,
) -> None:
    calls: list[int] = []
    counting_post = counting(calls)

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


def alone(server: Any, instances: list[Any]) -> Any:
    """What the model answers to ``instances`` sent alone, as predict-on-event sends an event."""
    url = f"{server.url}/v1/models/{server.model}:predict"
    answer = post_json(url, {"instances": instances}, headers={}, timeout_s=30)
    return answer.status, json.loads(answer.body)


def test_a_refused_batch_is_asked_event_by_event_so_valid_events_are_predicted(
    kserve_iris: Any,
) -> None:
    calls: list[int] = []
    # max_batch closes the batch; the window is long so that timing cannot split it instead.
    app = create_app(
        BatchConfig(model_url_template=kserve_iris.url, batch_window_ms=10_000, max_batch=3),
        counting(calls),
    )
    events = {
        "setosa": [FLOWERS["setosa"][0]],
        "bad": [[1.0, 2.0]],  # 2 features where the model takes 4
        "virginica": [FLOWERS["virginica"][0], FLOWERS["versicolor"][0]],
    }
    answers = send_all(
        app, {eid: {"model": "iris", "instances": rows} for eid, rows in events.items()}
    )

    assert calls[0] == 4 and sorted(calls[1:]) == [1, 1, 2], "the batch, then each event alone"
    for eid, (_, reply) in answers.items():
        assert reply["modelscalecorrelation"] == eid
        assert reply["modelscalebatchsize"] == "1"
    for eid in ("setosa", "virginica"):
        status, reply = answers[eid]
        assert (status, reply["type"]) == (200, "modelscale.inference.response")
        assert reply.get_data() == {"model": "iris", **alone(kserve_iris, events[eid])[1]}
    assert answers["virginica"][1].get_data()["predictions"] == [2, 1]
    # The bad event gets what its answer alone gives it: a 400 is final, a 500 (as KServe's
    # sklearn server answers such input) is retried for this event only.
    status, reply = answers["bad"]
    model_status, model_error = alone(kserve_iris, events["bad"])
    assert model_status in (400, 500) and "2 features" in model_error["error"]
    final = model_status == 400
    assert (status, reply["type"]) == (200 if final else 502, "modelscale.inference.error")
    assert reply.get_data() == {
        "model": "iris",
        "reason": f"model 'iris' {'refused the request' if final else 'failed'}: "
        + model_error["error"],
        "status": model_status,
        "retryable": not final,
    }


def test_a_batch_for_a_model_that_does_not_exist_is_not_asked_again_event_by_event(
    kserve_iris: Any,
) -> None:
    calls: list[int] = []
    app = create_app(
        BatchConfig(model_url_template=kserve_iris.url, batch_window_ms=10_000, max_batch=2),
        counting(calls),
    )
    answers = send_all(
        app, {eid: {"model": "nosuchmodel", "instances": [[1.0]]} for eid in ("a", "b")}
    )
    assert calls == [2], "every event names the missing model: one call tells them all"
    for eid, (status, reply) in answers.items():
        assert (status, reply["modelscalecorrelation"], reply["modelscalebatchsize"]) == (
            200,
            eid,
            "2",
        )
        assert reply.get_data()["status"] == 404
        assert "refused the batch of 2 events" in reply.get_data()["reason"]


def test_events_arriving_while_a_refused_batch_is_asked_event_by_event_batch_apart(
    kserve_iris: Any,
) -> None:
    calls: list[int] = []
    later: dict[str, tuple[int, CloudEvent]] = {}
    ran_later = threading.Event()

    def post(url: str, payload: Any, **kwargs: Any) -> Any:
        # During the first call alone (the refused batch already closed), two more events come.
        if len(calls) == 2 and not later:
            sender = threading.Thread(
                target=lambda: later.update(send_all(app, {"c": good, "d": good}))
            )
            sender.start()
            sender.join(timeout=30)  # a deadline, not a pause: it ends when both are answered
            ran_later.set()
        return post_json(url, payload, **kwargs)

    app = create_app(
        BatchConfig(model_url_template=kserve_iris.url, batch_window_ms=10_000, max_batch=2),
        counting(calls, post),
    )
    good = {"model": "iris", "instances": [FLOWERS["setosa"][0]]}
    first = send_all(app, {"a": good, "b": {"model": "iris", "instances": [[1.0, 2.0]]}})

    assert ran_later.is_set()
    assert set(later) == {"c", "d"}, "the later events were answered while the first batch ran"
    assert calls == [2, 1, 2, 1]
    assert {eid: r["modelscalebatchsize"] for eid, (_, r) in later.items()} == {"c": "2", "d": "2"}
    assert [later[e][1].get_data()["predictions"] for e in ("c", "d")] == [[0], [0]]
    assert first["a"][1].get_data()["predictions"] == [0]
    assert first["b"][1]["type"] == "modelscale.inference.error"


class _StubModel(BaseHTTPRequestHandler):
    """A V1 model server that predicts class 0 for rows of 4 features and answers any call with
    another row as KServe's sklearn server does (500, the estimator's message), or, when
    ``down`` is set, every call with that status; it counts the calls."""

    url = ""
    calls = 0
    down: int | None = None

    def do_POST(self) -> None:
        rows = json.loads(self.rfile.read(int(self.headers["Content-Length"])))["instances"]
        type(self).calls += 1
        if self.down is not None:
            self._answer(self.down, {"error": "model server unavailable"})
        elif all(len(row) == 4 for row in rows):
            self._answer(200, {"predictions": [0 for _ in rows]})
        else:
            self._answer(500, {"error": "X has 2 features, but the model is expecting 4"})

    def _answer(self, status: int, payload: Any) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def stub_model() -> Iterator[type[_StubModel]]:
    _StubModel.url, _StubModel.calls, _StubModel.down = "", 0, None
    server = ThreadingHTTPServer(("127.0.0.1", 0), _StubModel)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        _StubModel.url = f"http://127.0.0.1:{server.server_address[1]}"
        yield _StubModel
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_a_batch_the_model_fails_with_500_is_asked_event_by_event(stub_model: Any) -> None:
    calls: list[int] = []
    app = create_app(
        BatchConfig(model_url_template=stub_model.url, batch_window_ms=10_000, max_batch=2),
        counting(calls),
    )
    answers = send_all(
        app,
        {
            "good": {"model": "iris", "instances": [FLOWERS["setosa"][0]]},
            "bad": {"model": "iris", "instances": [[1.0, 2.0]]},
        },
    )
    assert calls == [2, 1, 1]
    status, reply = answers["good"]
    assert (status, reply["type"], reply["modelscalebatchsize"]) == (
        200,
        "modelscale.inference.response",
        "1",
    )
    assert (reply["modelscalecorrelation"], reply.get_data()["predictions"]) == ("good", [0])
    status, reply = answers["bad"]
    assert (status, reply["type"], reply["modelscalecorrelation"]) == (
        502,
        "modelscale.inference.error",
        "bad",
    )
    assert reply.get_data() == {
        "model": "iris",
        "reason": "model 'iris' failed: X has 2 features, but the model is expecting 4",
        "status": 500,
        "retryable": True,
    }


def _closed_port_url() -> str:
    with socket.socket() as sock:  # a port that nobody listens on
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.mark.parametrize(
    ("down", "status"),
    [
        pytest.param(502, 502, id="bad-gateway"),
        pytest.param(503, 502, id="model-unavailable"),
        pytest.param(429, 502, id="model-sheds-load"),
        pytest.param(None, 503, id="unreachable"),
    ],
)
def test_a_batch_the_model_cannot_take_is_retried_whole_not_asked_event_by_event(
    stub_model: Any, down: int | None, status: int
) -> None:
    stub_model.down = down
    url = stub_model.url if down is not None else _closed_port_url()
    calls: list[int] = []
    app = create_app(
        BatchConfig(
            model_url_template=url, batch_window_ms=10_000, max_batch=2, predict_timeout_s=5
        ),
        counting(calls),
    )
    answers = send_all(
        app, {eid: {"model": "iris", "instances": [FLOWERS["setosa"][0]]} for eid in ("a", "b")}
    )
    assert calls == [2]
    assert stub_model.calls == (1 if down is not None else 0)
    for eid, (got, reply) in answers.items():
        assert (got, reply["modelscalecorrelation"], reply["modelscalebatchsize"]) == (
            status,
            eid,
            "2",
        )
        assert reply["type"] == "modelscale.inference.error"
        assert reply.get_data()["retryable"] is True


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
