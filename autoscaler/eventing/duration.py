"""ISO 8601 durations, as Knative Eventing's ``backoffDelay`` spells them.

Knative parses ``delivery.backoffDelay`` with an ISO 8601 period parser (eventing
``pkg/kncloudevents/retries.go``). We accept the designators that have a fixed length:
weeks, days, hours, minutes and seconds (``P1W``, ``P1DT2H``, ``PT0.2S``, ``PT1M30S``). Years and
months are refused because their length depends on the calendar, which makes no sense for a
retry delay. A decimal fraction (``.`` or ``,``) is allowed on the last component only, as the
standard says.
"""

from __future__ import annotations

import re

__all__ = ["DurationError", "parse_duration_s"]

_SECONDS_PER_UNIT = {"W": 7 * 86400.0, "D": 86400.0, "H": 3600.0, "M": 60.0, "S": 1.0}
_NUMBER = r"(\d+(?:[.,]\d+)?)"
_PATTERN = re.compile(
    rf"^P(?:{_NUMBER}Y)?(?:{_NUMBER}M)?(?:{_NUMBER}W)?(?:{_NUMBER}D)?"
    rf"(?:T(?:{_NUMBER}H)?(?:{_NUMBER}M)?(?:{_NUMBER}S)?)?$"
)
_GROUPS = ("Y", "Mo", "W", "D", "H", "M", "S")


class DurationError(ValueError):
    """A duration string that is not an ISO 8601 duration we can use."""


def parse_duration_s(text: str, *, key: str = "duration") -> float:
    """Seconds in the ISO 8601 duration ``text``; ``key`` names the field in errors.

    >>> parse_duration_s("PT0.2S")
    0.2
    >>> parse_duration_s("PT1M30S")
    90.0
    """
    if not isinstance(text, str):
        raise DurationError(
            f"{key}: expected an ISO 8601 duration string such as PT0.2S, got {text!r}"
        )
    value = text.strip().upper()
    match = _PATTERN.match(value)
    if match is None or value in ("P", "PT") or value.endswith("T"):
        raise DurationError(
            f"{key}: {text!r} is not an ISO 8601 duration "
            "(expected P[nW][nD][T[nH][nM][nS]], for example PT0.2S or PT1M)"
        )
    parts = dict(zip(_GROUPS, match.groups(), strict=True))
    if parts["Y"] is not None or parts["Mo"] is not None:
        raise DurationError(
            f"{key}: {text!r} uses years or months, whose length depends on the calendar; "
            "use weeks, days, hours, minutes or seconds"
        )
    present = [(name, raw) for name, raw in parts.items() if raw is not None]
    for name, raw in present[:-1]:
        if "." in raw or "," in raw:
            raise DurationError(
                f"{key}: {text!r} has a fraction on {raw}{name[0]}; only the last component may have one"
            )
    total = 0.0
    for name, raw in present:
        total += float(raw.replace(",", ".")) * _SECONDS_PER_UNIT[name]
    return total
