"""Delivery policy: retries, backoff and dead-letter sink of a Trigger or Broker, pure.

Mirrors Knative Eventing ``pkg/kncloudevents/retries.go`` (``RetryConfigFromDeliverySpec`` and
``SelectiveRetry``) and the retry loop it drives. Facts carried over:

- ``retry`` is the number of retries after the first attempt (0: one attempt only).
- The wait before a retry is computed only when both ``backoffPolicy`` and ``backoffDelay`` are
  set; otherwise retries follow at once. The retry loop passes the number of retries already
  made, ``n``, starting at 0: linear waits ``delay × n``, exponential ``delay × 2^n``. Worked
  number, ``backoffDelay: PT0.2S``, ``retry: 3``, first attempt at t=0 and every attempt failing:
  exponential tries at 0, 0.2, 0.6 and 1.4 s; linear at 0, 0, 0.2 and 0.6 s.
- Worth retrying: no response (connection refused, timeout), any 5xx, and 404, 408, 409, 429
  (404 because a subscriber that is starting answers it). Other 1xx-4xx are final.
- A Trigger's ``delivery`` replaces its Broker's as a whole, except the dead-letter sink: a
  Trigger without one falls back to the Broker's (as its ``status.deadLetterSinkUri`` does).
- ``format``: ``json`` sends events in structured mode (``application/cloudevents+json``),
  ``binary`` or unset in binary mode (``pkg/kncloudevents``'s ``WithEventFormat``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from autoscaler.eventing.duration import DurationError, parse_duration_s

__all__ = [
    "BACKOFF_POLICIES",
    "EVENT_FORMATS",
    "DeliveryConfigError",
    "DeliveryPolicy",
    "effective_delivery",
    "is_retryable",
    "parse_delivery",
]

BackoffPolicy = Literal["linear", "exponential"]
BACKOFF_POLICIES: tuple[str, ...] = ("linear", "exponential")
EventFormat = Literal["json", "binary"]
EVENT_FORMATS: tuple[str, ...] = ("json", "binary")
# 1000 retries is far past any sensible policy; a bound keeps a typo from looping for days.
MAX_RETRY = 1000
_RETRYABLE_4XX = frozenset({404, 408, 409, 429})


class DeliveryConfigError(ValueError):
    """A ``delivery`` block that cannot be used; the message names the field and the value."""


@dataclass(frozen=True)
class DeliveryPolicy:
    """How one Trigger's events are retried and where they go when retries run out."""

    retry: int = 0
    backoff_policy: BackoffPolicy | None = None
    backoff_delay_s: float | None = None
    dead_letter_sink: Mapping[str, Any] | None = None
    format: EventFormat | None = None  # None: binary

    @property
    def structured(self) -> bool:
        """Whether events are sent in structured mode (``format: json``)."""
        return self.format == "json"

    def backoff_s(self, retries_made: int) -> float:
        """Seconds to wait before the next retry when ``retries_made`` retries were made so far."""
        if self.backoff_policy is None or self.backoff_delay_s is None:
            return 0.0
        if self.backoff_policy == "linear":
            return self.backoff_delay_s * retries_made
        return self.backoff_delay_s * float(2**retries_made)

    def schedule_s(self) -> list[float]:
        """Offsets from the first attempt of every attempt, when all of them fail."""
        offsets = [0.0]
        for n in range(self.retry):
            offsets.append(offsets[-1] + self.backoff_s(n))
        return offsets


def parse_delivery(spec: Mapping[str, Any] | None, *, where: str = "delivery") -> DeliveryPolicy:
    """Parse an ``eventing.knative.dev/v1`` ``delivery`` block; ``where`` prefixes error keys."""
    if spec is None:
        return DeliveryPolicy()
    if not isinstance(spec, Mapping):
        raise DeliveryConfigError(f"{where}: expected an object, got {spec!r}")
    retry = _parse_retry(spec.get("retry"), where)
    policy = _parse_policy(spec.get("backoffPolicy"), where)
    delay_s: float | None = None
    raw_delay = spec.get("backoffDelay")
    if raw_delay is not None:
        try:
            delay_s = parse_duration_s(raw_delay, key=f"{where}.backoffDelay")
        except DurationError as exc:
            raise DeliveryConfigError(str(exc)) from None
    event_format = _parse_format(spec.get("format"), where)
    sink = spec.get("deadLetterSink")
    if sink is not None and (
        not isinstance(sink, Mapping) or not (sink.get("uri") or sink.get("ref"))
    ):
        raise DeliveryConfigError(
            f"{where}.deadLetterSink: expected an object with 'uri' or 'ref', got {sink!r}"
        )
    return DeliveryPolicy(
        retry=retry,
        backoff_policy=policy,
        backoff_delay_s=delay_s,
        dead_letter_sink=sink,
        format=event_format,
    )


def effective_delivery(
    trigger: Mapping[str, Any], broker: Mapping[str, Any] | None
) -> DeliveryPolicy:
    """The policy that applies to a Trigger's deliveries: its own, else its Broker's."""
    broker_spec = (broker or {}).get("spec") or {}
    broker_policy = parse_delivery(broker_spec.get("delivery"), where="broker spec.delivery")
    trigger_block = (trigger.get("spec") or {}).get("delivery")
    if trigger_block is None:
        return broker_policy
    own = parse_delivery(trigger_block, where="spec.delivery")
    if own.dead_letter_sink is None and broker_policy.dead_letter_sink is not None:
        return DeliveryPolicy(
            retry=own.retry,
            backoff_policy=own.backoff_policy,
            backoff_delay_s=own.backoff_delay_s,
            dead_letter_sink=broker_policy.dead_letter_sink,
            format=own.format,
        )
    return own


def is_retryable(status: int | None) -> bool:
    """Whether a failed attempt is worth retrying; ``None`` means no HTTP response at all."""
    if status is None:
        return True
    return status >= 500 or status in _RETRYABLE_4XX


def _parse_retry(raw: Any, where: str) -> int:
    if raw is None:
        return 0
    if isinstance(raw, bool) or not isinstance(raw, int):
        if isinstance(raw, str) and raw.strip().isdigit():
            raw = int(raw)
        else:
            raise DeliveryConfigError(
                f"{where}.retry: expected an integer in [0, {MAX_RETRY}], got {raw!r}"
            )
    if not 0 <= raw <= MAX_RETRY:
        raise DeliveryConfigError(f"{where}.retry: {raw} is outside [0, {MAX_RETRY}]")
    return int(raw)


def _parse_policy(raw: Any, where: str) -> BackoffPolicy | None:
    if raw is None:
        return None
    if raw == "linear":
        return "linear"
    if raw == "exponential":
        return "exponential"
    raise DeliveryConfigError(
        f"{where}.backoffPolicy: {raw!r} is not one of {', '.join(BACKOFF_POLICIES)}"
    )


def _parse_format(raw: Any, where: str) -> EventFormat | None:
    if raw is None:
        return None
    if raw == "json":
        return "json"
    if raw == "binary":
        return "binary"
    raise DeliveryConfigError(f"{where}.format: {raw!r} is not one of {', '.join(EVENT_FORMATS)}")
