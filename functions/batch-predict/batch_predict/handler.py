"""The event handler: decode the CloudEvent, batch it, encode its own reply."""

from __future__ import annotations

import json
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
    bad_data,
    merge,
    outcomes_for_answer,
    outcomes_for_unreachable,
    parse_item,
)

__all__ = ["BatchHandler"]

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
            return self._reply(event, bad_data(None, str(exc)), 0)
        outcome, size = self.batcher.submit(item)
        return self._reply(event, outcome, size)

    def _predict(self, items: Sequence[BatchItem]) -> list[Outcome]:
        base, headers = self._config.endpoint(items[0].model, items[0].namespace)
        url = f"{base}/v1/models/{items[0].model}:predict"
        try:
            answer = self._post(
                url, merge(items), headers=headers, timeout_s=self._config.predict_timeout_s
            )
        except ModelUnreachable as exc:
            return outcomes_for_unreachable(items, str(exc), timed_out=exc.timed_out)
        except InvalidModelUrl as exc:
            outcome = bad_data(items[0].model, f"model {items[0].model!r}: {exc}")
            return [outcome for _ in items]
        return outcomes_for_answer(items, answer.status, answer.body)

    def _reply(
        self, event: CloudEvent, outcome: Outcome, size: int
    ) -> tuple[int, dict[str, str], bytes]:
        reply = CloudEvent(
            {
                "type": outcome.event_type,
                "source": self._config.event_source,
                "id": str(uuid.uuid4()),
                "datacontenttype": "application/json",
                CORRELATION_EXTENSION: event["id"],
                BATCH_SIZE_EXTENSION: str(size),
            },
            dict(outcome.data),
        )
        headers, body = to_binary(reply)
        return outcome.http_status, dict(headers), body
