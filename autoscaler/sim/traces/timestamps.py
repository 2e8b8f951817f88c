"""Timestamps in trace files: seconds as a number, or an ISO 8601 date and time."""

from __future__ import annotations

import math
from datetime import UTC, datetime


def parse_timestamp(text: str) -> float:
    """Seconds: a plain number as is, a date-time as seconds since the Unix epoch (naive: UTC).

    Fractions of a second may have more than six digits (the Azure LLM trace has seven); the
    digits past microseconds are dropped. NaN and infinities raise ``ValueError``.
    """
    text = text.strip()
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(seconds):
            raise ValueError(f"timestamp {text!r} is not finite")
        return seconds
    head, dot, frac = text.partition(".")
    tz = ""
    if dot:
        digits = len(frac) - len(frac.lstrip("0123456789"))
        frac, tz = frac[:digits], frac[digits:]
        text = f"{head}.{frac[:6].ljust(6, '0')}{tz}" if frac else head + tz
    when = datetime.fromisoformat(text)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()
