"""What batch-predict decides, with no I/O: parsing, merging a batch, splitting the answer.

A batch is the V1 ``instances`` of several events for one model, concatenated in arrival order;
the model's ``predictions`` are cut back into one slice per event by the instance counts. Error
semantics follow predict-on-event: bad data (a model or namespace that is not a DNS-1123 label
among it), a model URL that cannot be used and a model's 4xx are a 200 with a
``modelscale.inference.error`` event (a retry cannot fix them); a failed or unreachable model is
a 502/503/504 so the broker retries each event.

A model that refuses a batch of several events (a 4xx, or the 500 of KServe's model servers,
whose predict fails so on input the estimator refuses: one event's rows may have the wrong
shape) has not said which event it refuses, so the batch is not answered as a whole:
``ask_each_alone`` says to send each event again in a predict call of its own, and each gets the
outcome predict-on-event would give it, a prediction or its own error. A model that is out of
reach or out of capacity (502, 503, 504, 408, 429, no answer) answers the whole batch with one
retryable error: the broker retries each event, and the retry may batch it with others again.

Each outcome carries ``batch_size``, the number of events in the predict call whose answer it
is (the ``modelscalebatchsize`` extension of the reply): 1 for an event asked alone.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

__all__ = [
    "BATCH_SIZE_EXTENSION",
    "CORRELATION_EXTENSION",
    "ERROR_TYPE",
    "REQUEST_TYPE",
    "RESPONSE_TYPE",
    "BadRequest",
    "BatchItem",
    "Outcome",
    "ask_each_alone",
    "bad_data",
    "check_name",
    "merge",
    "outcomes_for_answer",
    "outcomes_for_unreachable",
    "outcomes_for_unusable_url",
    "parse_item",
]

REQUEST_TYPE = "modelscale.inference.request"
RESPONSE_TYPE = "modelscale.inference.response"
ERROR_TYPE = "modelscale.inference.error"
CORRELATION_EXTENSION = "modelscalecorrelation"
BATCH_SIZE_EXTENSION = "modelscalebatchsize"
# Model and namespace names are Kubernetes DNS-1123 labels: they become host names
# (``{model}-predictor.{namespace}.svc...``), where "a..b" or 70 characters cannot resolve.
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_LABEL_MAX = 63
_RETRYABLE_MODEL_STATUSES = frozenset({408, 429})


class BadRequest(ValueError):
    """An event that cannot join a batch; the message is the reason."""


@dataclass(frozen=True)
class BatchItem:
    """One event's share of a batch."""

    model: str
    namespace: str
    instances: Sequence[Any]


@dataclass(frozen=True)
class Outcome:
    """One event's reply: the HTTP status to answer with, its event type and data, and the
    number of events in the predict call that decided it (0: none was made)."""

    http_status: int
    event_type: str
    data: Mapping[str, Any]
    batch_size: int = 0


def parse_item(event_type: str, data: Any, default_namespace: str) -> BatchItem:
    """The batchable request in an event, or ``BadRequest``."""
    if event_type != REQUEST_TYPE:
        raise BadRequest(f"event type {event_type!r} is not {REQUEST_TYPE!r}")
    if isinstance(data, (bytes, str)):
        try:
            data = json.loads(data)
        except ValueError as exc:
            raise BadRequest(f"data is not JSON: {exc}") from None
    if not isinstance(data, Mapping):
        raise BadRequest("data must be a JSON object with 'model' and 'instances'")
    model = check_name("model", data.get("model"))
    namespace = check_name("namespace", data.get("namespace", default_namespace))
    if "inputs" in data:
        raise BadRequest(
            "batch-predict batches V1 'instances'; send V2 'inputs' to predict-on-event"
        )
    instances = data.get("instances")
    if not isinstance(instances, list) or not instances:
        raise BadRequest("data.instances must be a non-empty list")
    return BatchItem(str(model), str(namespace), instances)


def check_name(key: str, value: Any) -> str:
    """``value`` when it is a DNS-1123 label, else ``BadRequest`` naming ``key`` and the value."""
    if not isinstance(value, str) or len(value) > _DNS_LABEL_MAX or _DNS_LABEL.match(value) is None:
        raise BadRequest(
            f"data.{key} must be a DNS-1123 label (at most {_DNS_LABEL_MAX} lowercase letters, "
            f"digits or '-', starting and ending with a letter or digit), got {value!r}"
        )
    return value


def merge(items: Sequence[BatchItem]) -> dict[str, Any]:
    """The V1 payload of a whole batch."""
    return {"instances": [instance for item in items for instance in item.instances]}


def ask_each_alone(items: Sequence[BatchItem], status: int) -> bool:
    """Whether the model's ``status`` for ``merge(items)`` calls for one predict call per event.

    True for more than one event and a refusal (a 4xx other than 408 and 429) or a 500: either
    may be about one event's instances only (2 features where the model takes 4: KServe's own
    model servers answer a predict that raises with 500, a model may also refuse it with 400),
    and the others must still get their predictions. An event alone then gets the answer it would get alone: a 4xx is its
    non-retryable error, a 500 a retryable one, retried by the broker for that event only.

    Not for 404: every event of a batch names the same model, so the model missing from its
    server is the answer to each of them alone as well. Not for 502, 503, 504, 408 or 429 (nor
    no answer): the model's server or the way to it is down or full, whatever the input, and
    more calls would only add to its load.
    """
    if len(items) < 2 or status == 404:
        return False
    return status == 500 or (400 <= status < 500 and not _is_failure(status))


def outcomes_for_answer(items: Sequence[BatchItem], status: int, body: bytes) -> list[Outcome]:
    """One outcome per item for the model's answer to ``merge(items)``."""
    model, size = items[0].model, len(items)
    if 200 <= status < 300:
        try:
            predictions = json.loads(body)["predictions"]
        except (ValueError, KeyError, TypeError):
            return _all(
                items, _failure(model, status, "model answered without a JSON 'predictions' list")
            )
        total = sum(len(item.instances) for item in items)
        if not isinstance(predictions, list) or len(predictions) != total:
            return _all(
                items,
                _failure(
                    model,
                    status,
                    f"model returned {len(predictions) if isinstance(predictions, list) else 'no'} predictions for {total} instances",
                ),
            )
        outcomes, start = [], 0
        for item in items:
            part = predictions[start : start + len(item.instances)]
            start += len(item.instances)
            outcomes.append(
                Outcome(200, RESPONSE_TYPE, {"model": model, "predictions": part}, size)
            )
        return outcomes
    reason = _error_text(body) or f"HTTP {status}"
    if _is_failure(status):
        return _all(items, _failure(model, status, f"model {model!r} failed: {reason}"))
    what = "the request" if size == 1 else f"the batch of {size} events"
    return _all(items, bad_data(model, f"model {model!r} refused {what}: {reason}", status))


def outcomes_for_unreachable(
    items: Sequence[BatchItem], reason: str, *, timed_out: bool
) -> list[Outcome]:
    error = {"model": items[0].model, "reason": reason, "status": None, "retryable": True}
    return _all(items, Outcome(504 if timed_out else 503, ERROR_TYPE, error))


def outcomes_for_unusable_url(items: Sequence[BatchItem], reason: str) -> list[Outcome]:
    """A model URL that cannot be called at all: no retry can help, for any event."""
    return _all(items, bad_data(items[0].model, f"model {items[0].model!r}: {reason}"))


def bad_data(model: str | None, reason: str, status: int | None = None) -> Outcome:
    return Outcome(
        200, ERROR_TYPE, {"model": model, "reason": reason, "status": status, "retryable": False}
    )


def _is_failure(status: int) -> bool:
    # Worth a retry: the model failed, timed out (408) or shed load (429); any other answer that
    # is not a 2xx is a refusal that a retry cannot fix.
    return status >= 500 or status in _RETRYABLE_MODEL_STATUSES


def _failure(model: str, status: int, reason: str) -> Outcome:
    return Outcome(
        502, ERROR_TYPE, {"model": model, "reason": reason, "status": status, "retryable": True}
    )


def _all(items: Sequence[BatchItem], outcome: Outcome) -> list[Outcome]:
    # The same reply for every event of the batch, each counting the whole batch's call.
    shared = replace(outcome, batch_size=len(items))
    return [shared for _ in items]


def _error_text(body: bytes) -> str:
    try:
        decoded = json.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace")[:500]
    if isinstance(decoded, Mapping) and "error" in decoded:
        return str(decoded["error"])[:500]
    return str(decoded)[:500]
