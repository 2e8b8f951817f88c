"""The event handler: decode the CloudEvent, batch it, encode its own reply.

A batch is one predict call; when the model refuses or fails it (a 4xx or a 500) and it holds
more than one event (``ask_each_alone``), each event is sent again alone. Singles rather than
halves: batches are small (``MAX_BATCH`` 32, most far fewer in a 20 ms window), this is the rare
path, and an event asked alone gets exactly the answer predict-on-event would give it. They go
one after the other, so the model still has at most one call in flight per batch and its
autoscaler does not see a batch of 32 turn into 32 concurrent requests; such a batch of k events
takes k + 1 calls, each within ``PREDICT_TIMEOUT_S``.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Mapping, Sequence

from cloudevents import exceptions as ce_exceptions
from cloudevents.conversion import to_binary
from cloudevents.http import CloudEvent, from_http

from batch_predict.batcher import Batcher
from batch_predict.client import InvalidModelUrl, ModelAnswer, ModelUnreachable, post_json
from batch_predict.config import BatchConfig
from batch_predict.logic import (
    BATCH_SIZE_EXTENSION,
    CORRELATION_EXTENSION,
    BadRequest,
    BatchItem,
    Outcome,
    ask_each_alone,
    bad_data,
    merge,
    outcomes_for_answer,
    outcomes_for_unreachable,
    outcomes_for_unusable_url,
    parse_item,
)

__all__ = ["BatchHandler", "Poster"]

log = logging.getLogger(__name__)

Poster = Callable[..., ModelAnswer]


class BatchHandler:
    """Turns HTTP requests into batch members and batch outcomes into HTTP answers."""

    def __init__(self, config: BatchConfig, post: Poster = post_json) -> None:
        self._config = config
        self._post = post
        self.batcher = Batcher(
            self._predict, window_s=config.batch_window_ms / 1000.0, max_batch=config.max_batch
        )

    def handle(self, headers: Mapping[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        try:
            event = from_http(dict(headers), body, data_unmarshaller=lambda raw: raw)
        except ce_exceptions.GenericException as exc:
            return (
                400,
                {"Content-Type": "application/json"},
                json.dumps({"error": f"not a CloudEvent: {exc}"}).encode(),
            )
        try:
            item = parse_item(event["type"], event.get_data(), self._config.model_namespace)
        except BadRequest as exc:
            return self._reply(event, bad_data(None, str(exc)))
        return self._reply(event, self.batcher.submit(item))

    def _predict(self, items: Sequence[BatchItem]) -> list[Outcome]:
        """One outcome per item, in order: the batch's predict call, then, if the model refused
        or failed a batch of several events with an answer that may be one event's fault, one
        call per event."""
        base, headers = self._config.endpoint(items[0].model, items[0].namespace)
        url = f"{base}/v1/models/{items[0].model}:predict"
        try:
            answer = self._post(
                url, merge(items), headers=headers, timeout_s=self._config.predict_timeout_s
            )
        except ModelUnreachable as exc:
            return outcomes_for_unreachable(items, str(exc), timed_out=exc.timed_out)
        except InvalidModelUrl as exc:
            return outcomes_for_unusable_url(items, str(exc))
        if ask_each_alone(items, answer.status):
            log.info(
                "model %r answered a batch of %d events with HTTP %d; asking for each alone",
                items[0].model,
                len(items),
                answer.status,
            )
            return [outcome for item in items for outcome in self._predict([item])]
        return outcomes_for_answer(items, answer.status, answer.body)

    def _reply(self, event: CloudEvent, outcome: Outcome) -> tuple[int, dict[str, str], bytes]:
        reply = CloudEvent(
            {
                "type": outcome.event_type,
                "source": self._config.event_source,
                "id": str(uuid.uuid4()),
                "datacontenttype": "application/json",
                CORRELATION_EXTENSION: event["id"],
                BATCH_SIZE_EXTENSION: str(outcome.batch_size),
            },
            dict(outcome.data),
        )
        headers, body = to_binary(reply)
        return outcome.http_status, dict(headers), body
