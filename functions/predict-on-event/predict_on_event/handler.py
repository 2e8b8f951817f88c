"""The event handler: decode the CloudEvent, call the logic and the model, encode the reply."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from cloudevents import exceptions as ce_exceptions
from cloudevents.conversion import to_binary
from cloudevents.http import CloudEvent, from_http

from predict_on_event.client import InvalidModelUrl, ModelAnswer, ModelUnreachable, post_json
from predict_on_event.config import FunctionConfig
from predict_on_event.logic import (
    CORRELATION_EXTENSION,
    MODEL_EXTENSION,
    BadRequest,
    Outcome,
    bad_data,
    model_unreachable,
    outcome_of_model_answer,
    parse_request,
)

__all__ = ["Poster", "handle"]

log = logging.getLogger(__name__)
# post(url, payload, headers=..., timeout_s=...) -> ModelAnswer; replaceable for other transports.
Poster = Callable[..., ModelAnswer]


def handle(
    config: FunctionConfig, headers: Mapping[str, str], body: bytes, post: Poster = post_json
) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) of the answer to one HTTP request carrying an event."""
    try:
        event = from_http(dict(headers), body, data_unmarshaller=lambda raw: raw)
    except ce_exceptions.GenericException as exc:
        return 400, {"Content-Type": "application/json"}, _json_error(f"not a CloudEvent: {exc}")
    outcome, model = decide(config, event, post)
    reply = CloudEvent(
        {
            "type": outcome.event_type,
            "source": config.event_source,
            "id": str(uuid.uuid4()),
            "datacontenttype": "application/json",
            CORRELATION_EXTENSION: event["id"],
            **({MODEL_EXTENSION: model} if model else {}),
        },
        dict(outcome.data),
    )
    reply_headers, reply_body = to_binary(reply)
    log.info("event %s: %s (%d)", event["id"], outcome.reason, outcome.http_status)
    return outcome.http_status, dict(reply_headers), reply_body


def decide(config: FunctionConfig, event: CloudEvent, post: Poster) -> tuple[Outcome, str | None]:
    """The outcome for one event, and the model it named (None when it named none)."""
    try:
        request = parse_request(event["type"], event.get_data(), config.model_namespace)
    except BadRequest as exc:
        return bad_data(None, str(exc)), None
    base, extra_headers = config.endpoint(request.model, request.namespace)
    try:
        answer = post(
            base + request.path,
            request.payload,
            headers=extra_headers,
            timeout_s=config.predict_timeout_s,
        )
    except ModelUnreachable as exc:
        return model_unreachable(request.model, str(exc), timed_out=exc.timed_out), request.model
    except InvalidModelUrl as exc:
        return bad_data(request.model, f"model {request.model!r}: {exc}"), request.model
    return outcome_of_model_answer(request, answer.status, answer.body), request.model


def _json_error(reason: str) -> bytes:
    import json

    payload: dict[str, Any] = {"error": reason}
    return json.dumps(payload).encode()
