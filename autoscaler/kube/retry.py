"""Retry with exponential backoff and full jitter for Kubernetes API calls.

Retried: 409 Conflict (the caller re-reads and tries again), 429, 5xx, timeouts and refused
connections. Not retried: the other 4xx, which will not get better by asking again.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import urllib3
from kubernetes.client.rest import ApiException

T = TypeVar("T")

RETRYABLE_STATUS = frozenset({409, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class Backoff:
    """Delay before attempt n (0-based) is uniform in [0, min(cap, base × 2^n)]."""

    base_s: float = 0.05
    cap_s: float = 5.0
    attempts: int = 8

    def delay_s(self, attempt: int, rng: random.Random) -> float:
        return rng.uniform(0.0, min(self.cap_s, self.base_s * (2**attempt)))


def is_retryable(exc: BaseException) -> bool:
    if isinstance(exc, ApiException):
        return exc.status in RETRYABLE_STATUS or exc.status == 0
    return isinstance(exc, urllib3.exceptions.HTTPError | ConnectionError | TimeoutError)


def call_with_retry(
    fn: Callable[[], T],
    *,
    backoff: Backoff = Backoff(),
    rng: random.Random | None = None,
    sleep: Callable[[float], None] = time.sleep,
    on_retry: Callable[[int, BaseException], None] | None = None,
) -> T:
    """Call ``fn`` until it succeeds, a non-retryable error, or the attempts run out.

    ``fn`` is the whole read-modify-write for a 409 to make sense: it must re-read what it writes.
    """
    rng = rng or random.Random()
    for attempt in range(backoff.attempts):
        try:
            return fn()
        except Exception as exc:
            if not is_retryable(exc) or attempt == backoff.attempts - 1:
                raise
            if on_retry is not None:
                on_retry(attempt, exc)
            sleep(backoff.delay_s(attempt, rng))
    raise AssertionError("unreachable")  # pragma: no cover
