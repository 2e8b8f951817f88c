"""Timestamps in trace files: seconds as a number, or an ISO 8601 date and time.

A plain number is seconds. Logs often hold epoch milliseconds, microseconds or nanoseconds
instead; read as seconds they would make a trace of thousands of years, so a plain number at or
past ``MAX_PLAIN_S`` (1e11 s, the year 5138 as seconds since the epoch) is refused with the unit
it looks like. A trace's timestamps span at most ``MAX_SPAN_S`` (10 years): past that they are
not one workload (and far apart, float seconds lose the differences between requests).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from autoscaler.sim.traces.workload import TraceError, plain_float, shown

MAX_PLAIN_S = 1e11
MAX_SPAN_DAYS = 3650
MAX_SPAN_S = MAX_SPAN_DAYS * 86400.0


class TimestampError(ValueError):
    """A timestamp that parses but cannot be seconds; the message says why (no timestamp)."""


def finer_unit(seconds: float) -> str:
    """What a plain number at or past ``MAX_PLAIN_S`` looks like, by its size."""
    size = abs(seconds)
    if size < 1e14:  # epoch milliseconds today: 1.7e12
        return "looks like milliseconds since the epoch"
    if size < 1e17:  # microseconds: 1.7e15
        return "looks like microseconds since the epoch"
    if size < 1e20:  # nanoseconds: 1.7e18
        return "looks like nanoseconds since the epoch"
    return "is too large"


def parse_timestamp(text: str) -> float:
    """Seconds: a plain number as is, a date-time as seconds since the Unix epoch (naive: UTC).

    Fractions of a second may have more than six digits (the Azure LLM trace has seven); the
    digits past microseconds are dropped. NaN and infinities raise ``ValueError``; a plain number
    at or past ``MAX_PLAIN_S`` (in size) raises ``TimestampError`` naming the unit it looks like.
    """
    text = text.strip()
    try:
        seconds = plain_float(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(seconds):
            raise ValueError(f"timestamp {text!r} is not finite")
        if abs(seconds) >= MAX_PLAIN_S:
            raise TimestampError(
                f"{finer_unit(seconds)}: a plain-number timestamp is seconds, "
                "less than 1e11 in size (the year 5138); convert it or give ISO 8601 date-times"
            )
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


@dataclass
class Span:
    """The earliest and latest timestamps read so far, with their lines."""

    start: float = math.inf
    start_line: int = 0
    end: float = -math.inf
    end_line: int = 0

    def add(self, seconds: float, line: int) -> str | None:
        """Take one timestamp; the problem if the span is now over ``MAX_SPAN_S``, or None."""
        if seconds < self.start:
            self.start, self.start_line = seconds, line
        if seconds > self.end:
            self.end, self.end_line = seconds, line
        if self.end - self.start <= MAX_SPAN_S:
            return None
        other = self.end_line if line == self.start_line else self.start_line
        days = (self.end - self.start) / 86400.0
        return (
            f"{days:,.0f} days from line {other}'s; a trace spans at most "
            f"{MAX_SPAN_DAYS:,} days (10 years)"
        )

    def read(self, path: Path, line: int, column: str, text: str, kind: str) -> float:
        """``text`` (``column`` on ``line`` of ``path``) as seconds, taken into the span; a
        ``TraceError`` naming the line when it is not a ``kind``, cannot be seconds or takes
        the span past ``MAX_SPAN_S``."""
        try:
            seconds = parse_timestamp(text)
        except TimestampError as exc:
            raise TraceError(path, line, f"{column} {shown(text)} {exc}") from None
        except ValueError:
            raise TraceError(path, line, f"{column} {shown(text)} is not a {kind}") from None
        problem = self.add(seconds, line)
        if problem is not None:
            raise TraceError(path, line, f"{column} {shown(text)} is {problem}")
        return seconds
