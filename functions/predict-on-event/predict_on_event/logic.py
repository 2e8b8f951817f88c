"""What predict-on-event decides, with no I/O: request parsing, model paths, outcome events.

Event contract:

- in: ``modelscale.inference.request``, data ``{"model": "iris", "namespace"?: "ns",
  "instances": [...]}`` (KServe V1) or ``{"model": ..., "inputs": [...], "parameters"?: {...}}``
  (Open Inference Protocol, V2);
- out: ``modelscale.inference.response`` with the model's JSON answer as data, or
  ``modelscale.inference.error`` with ``{"model", "reason", "status", "retryable"}``; both carry
  the request's id in the ``modelscalecorrelation`` extension and the model in ``modelscalemodel``.

HTTP status of the answer, chosen so the broker retries only what a retry can fix:

- bad data (wrong type, not JSON, no model, a model or namespace that is not a DNS-1123
  label, neither or both of instances/inputs), a model URL that cannot be used (an invalid
  host name) and a model that refuses the input (its 4xx): **200 with an error event**. A retry cannot fix these, and an
  event, unlike a 4xx, reaches whoever sent the request through a Trigger on the error type.
- a model that failed or could not be reached (5xx, 408, 429, refused, timed out): **502, 503
  or 504 with the error event as body**, so the broker retries and, when retries run out, the
  dead-letter sink gets the event with the error in ``knativeerrordata``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "CORRELATION_EXTENSION",
    "ERROR_TYPE",
    "MODEL_EXTENSION",
    "REQUEST_TYPE",
    "RESPONSE_TYPE",
    "BadRequest",
    "Outcome",
    "PredictRequest",
    "check_name",
    "model_failure",
    "model_unreachable",
    "outcome_of_model_answer",
    "parse_request",
]

REQUEST_TYPE = "modelscale.inference.request"
RESPONSE_TYPE = "modelscale.inference.response"
ERROR_TYPE = "modelscale.inference.error"
CORRELATION_EXTENSION = "modelscalecorrelation"
MODEL_EXTENSION = "modelscalemodel"
_RETRYABLE_MODEL_STATUSES = frozenset({408, 429})
# Model and namespace names are Kubernetes DNS-1123 labels: they become host names
# (``{model}-predictor.{namespace}.svc...``), where "a..b" or 70 characters cannot resolve.
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_LABEL_MAX = 63


class BadRequest(ValueError):
    """An inference request event that cannot be served; the message is the reason."""


@dataclass(frozen=True)
class PredictRequest:
    """A request for one model, in the protocol the event used."""

    model: str
    namespace: str
    protocol: Literal["v1", "v2"]
    payload: Mapping[str, Any]

    @property
    def path(self) -> str:
        if self.protocol == "v1":
            return f"/v1/models/{self.model}:predict"
        return f"/v2/models/{self.model}/infer"


@dataclass(frozen=True)
class Outcome:
    """The reply: its event type and data, the HTTP status to answer with, and why."""

    http_status: int
    event_type: str
    data: Mapping[str, Any]
    reason: str


def parse_request(event_type: str, data: Any, default_namespace: str) -> PredictRequest:
    """The request in an event's type and data, or ``BadRequest`` with the reason."""
    if event_type != REQUEST_TYPE:
        raise BadRequest(f"event type {event_type!r} is not {REQUEST_TYPE!r}")
    if isinstance(data, (bytes, str)):
        try:
            data = json.loads(data)
        except ValueError as exc:
            raise BadRequest(f"data is not JSON: {exc}") from None
    if not isinstance(data, Mapping):
        raise BadRequest(
            f"data must be a JSON object with 'model' and 'instances' or 'inputs', got {type(data).__name__}"
        )
    model = check_name("model", data.get("model"))
    namespace = check_name("namespace", data.get("namespace", default_namespace))
    has_v1, has_v2 = "instances" in data, "inputs" in data
    if has_v1 == has_v2:
        raise BadRequest("data must carry exactly one of 'instances' (V1) or 'inputs' (V2)")
    if has_v1:
        instances = data["instances"]
        if not isinstance(instances, list) or not instances:
            raise BadRequest("data.instances must be a non-empty list")
        return PredictRequest(model, namespace, "v1", {"instances": instances})
    inputs = data["inputs"]
    if (
        not isinstance(inputs, list)
        or not inputs
        or not all(isinstance(i, Mapping) for i in inputs)
    ):
        raise BadRequest(
            "data.inputs must be a non-empty list of tensors (objects with name, shape, datatype, data)"
        )
    payload: dict[str, Any] = {"inputs": inputs}
    if isinstance(data.get("parameters"), Mapping):
        payload["parameters"] = data["parameters"]
    return PredictRequest(model, namespace, "v2", payload)


def check_name(key: str, value: Any) -> str:
    """``value`` when it is a DNS-1123 label, else ``BadRequest`` naming ``key`` and the value."""
    if not isinstance(value, str) or len(value) > _DNS_LABEL_MAX or _DNS_LABEL.match(value) is None:
        raise BadRequest(
            f"data.{key} must be a DNS-1123 label (at most {_DNS_LABEL_MAX} lowercase letters, "
            f"digits or '-', starting and ending with a letter or digit), got {value!r}"
        )
    return value


def outcome_of_model_answer(request: PredictRequest, status: int, body: bytes) -> Outcome:
    """The reply for the model server's HTTP answer."""
    if 200 <= status < 300:
        try:
            answer = json.loads(body)
        except ValueError:
            return model_failure(
                request.model, status, "model answered with a body that is not JSON"
            )
        return Outcome(200, RESPONSE_TYPE, answer, "predicted")
    reason = _error_text(body) or f"HTTP {status}"
    if status >= 500 or status in _RETRYABLE_MODEL_STATUSES:
        return model_failure(request.model, status, f"model {request.model!r} failed: {reason}")
    return bad_data(request.model, f"model {request.model!r} refused the request: {reason}", status)


def bad_data(model: str | None, reason: str, status: int | None = None) -> Outcome:
    """Not retryable: 200 with an error event."""
    return Outcome(200, ERROR_TYPE, _error(model, reason, status, retryable=False), reason)


def model_failure(model: str, status: int | None, reason: str) -> Outcome:
    """Worth retrying: 502 so the broker retries."""
    return Outcome(502, ERROR_TYPE, _error(model, reason, status, retryable=True), reason)


def model_unreachable(model: str, reason: str, *, timed_out: bool) -> Outcome:
    """No answer from the model: 504 for a timeout, 503 otherwise; both retried."""
    return Outcome(
        504 if timed_out else 503, ERROR_TYPE, _error(model, reason, None, retryable=True), reason
    )


def _error(
    model: str | None, reason: str, status: int | None, *, retryable: bool
) -> dict[str, Any]:
    return {"model": model, "reason": reason, "status": status, "retryable": retryable}


def _error_text(body: bytes) -> str:
    try:
        decoded = json.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace")[:500]
    if isinstance(decoded, Mapping) and "error" in decoded:
        return str(decoded["error"])[:500]
    return str(decoded)[:500]
