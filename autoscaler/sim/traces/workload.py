"""A workload: the models of a trace, each with its request arrival and service times.

Every trace reader returns a ``Workload``. Times are seconds from the start of the (sliced)
trace; each model's ``arrivals_s`` is sorted and ``service_s`` holds the matching per-request
service time at no load. ``arrival_note`` says how arrivals were made (reports print it), and
``citation`` names the trace's source. ``assumed`` holds the per-model figures the trace did not
give and the reader took from a default or an option (``results.json``'s ``trace.assumed``), and
``notes`` what the reader passed over (``trace.notes``).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from autoscaler.sim.model import ModelSpec


class TraceError(ValueError):
    """A malformed trace file: the message names the file and, where there is one, the line."""

    def __init__(self, path: Path | str, line: int | None, message: str) -> None:
        where = f"{path}:{line}" if line is not None else f"{path}"
        super().__init__(f"{where}: {message}")
        self.path = Path(path)
        self.line = line


# a value from a file is quoted in a message up to this many characters
SHOWN_CHARS = 40


def shown(text: str) -> str:
    """A value from a file for a one-line message: its repr, cut at ``SHOWN_CHARS``."""
    if len(text) <= SHOWN_CHARS:
        return repr(text)
    return f"{text[:SHOWN_CHARS]!r}... ({len(text):,} characters)"


def plain_float(text: str) -> float:
    """``text`` as a number written in ASCII, as ``float`` reads it; ``ValueError`` for
    anything else, including other scripts' digits and ``1_000``, which ``float`` takes."""
    if not text.isascii() or "_" in text:
        raise ValueError(f"not a number: {text!r}")
    return float(text)


def plain_int(text: str) -> int:
    """``text`` as an integer written in ASCII digits (see ``plain_float``)."""
    if not text.isascii() or "_" in text:
        raise ValueError(f"not an integer: {text!r}")
    return int(text)


class CsvRows:
    """A CSV file's rows, each with the line it is on.

    A trace row is one line: a quoted field that runs on past the end of its line (a stray
    ``"`` in a timestamp or a name) would take the lines after it into one field, so it is an
    error naming the line the row starts on, as is a file that ends inside quotes.
    """

    def __init__(self, path: Path, f: Any) -> None:
        self.path = path
        self.reader = csv.reader(f, strict=True)
        self.line = 1  # the line the next row starts on

    def __iter__(self) -> Iterator[tuple[int, list[str]]]:
        for row in self.reader:
            start, self.line = self.line, self.reader.line_num + 1
            if self.reader.line_num > start:
                raise self._runs_on(start, None)
            yield start, row

    def _runs_on(self, start: int, exc: csv.Error | None) -> TraceError:
        at_end = exc is not None and "end of data" in str(exc)
        end = "the end of the file" if at_end else f"line {self.reader.line_num}"
        return TraceError(
            self.path,
            start,
            f"a quoted field opened on this line runs on to {end} (a stray '\"'?); "
            "a trace row is one line",
        )

    def error(self, exc: csv.Error) -> TraceError:
        """The error for ``exc``, raised by the reader while reading the row at ``line``."""
        if self.reader.line_num > self.line:
            return self._runs_on(self.line, exc)
        return TraceError(self.path, self.line, f"not a CSV file: {exc}")


def unreadable(
    path: Path | str, exc: Exception, fmt: str, rows: CsvRows | None = None
) -> TraceError:
    """The error for a one-file trace (``--format fmt``) that could not be read: not found, a
    directory, another system error, or not a CSV file (at the row ``rows``, the file's
    ``CsvRows`` if one was made, was reading)."""
    if isinstance(exc, FileNotFoundError):
        return TraceError(path, None, "file not found")
    if isinstance(exc, IsADirectoryError):
        return TraceError(
            path,
            None,
            f"is a directory; --format {fmt} reads one file (an Azure Functions trace "
            "directory is --format azure-functions)",
        )
    if isinstance(exc, OSError):
        return TraceError(path, None, f"cannot read: {exc.strerror or exc}")
    if isinstance(exc, UnicodeDecodeError):
        return undecodable(path, exc)
    if isinstance(exc, csv.Error):
        if rows is not None:
            return rows.error(exc)
        return TraceError(path, None, f"not a CSV file: {exc}")
    raise exc


def undecodable(path: Path | str, exc: UnicodeDecodeError) -> TraceError:
    """The error for a file that is not UTF-8, naming the first line that is not.

    The decoder's position counts from the start of the chunk it was given, not of the file or
    the line, so the file is read again as bytes to find the line.
    """
    try:
        with Path(path).open("rb") as f:
            for number, raw in enumerate(f, start=1):
                try:
                    raw.decode("utf-8")
                except UnicodeDecodeError as bad:
                    byte = raw[bad.start]
                    return TraceError(
                        path,
                        number,
                        f"not UTF-8: byte 0x{byte:02x} at byte {bad.start + 1} of the line "
                        "(trace files are read as UTF-8; save the file as UTF-8)",
                    )
    except OSError:
        pass
    return TraceError(path, None, f"not UTF-8: {exc.reason} (trace files are read as UTF-8)")


def short_columns(header: list[str], shown: int = 6) -> str:
    """A header's columns for a one-line message: the first ``shown`` and how many in all."""
    names = ", ".join(repr(h if len(h) <= 40 else h[:40] + "...") for h in header[:shown])
    if len(header) > shown:
        return f"[{names}, ... ({len(header):,} columns)]"
    return f"[{names}]"


@dataclass(frozen=True)
class TraceSlice:
    """Which part of a trace to read: the first ``functions`` models and a minute range.

    ``minutes`` is ``(start, end)`` in minutes from the start of the trace, end excluded;
    times in the workload are then relative to ``start``.
    """

    functions: int | None = None
    minutes: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if self.functions is not None and self.functions < 1:
            raise ValueError(f"slice functions={self.functions}: must be >= 1")
        if self.minutes is not None:
            a, b = self.minutes
            if not (0 <= a < b):  # NaN fails too
                raise ValueError(f"slice minutes={a}:{b}: need 0 <= start < end")

    @classmethod
    def parse_minutes(cls, text: str) -> tuple[float, float]:
        """``"A:B"`` to ``(A, B)``; either side may be empty (``":60"``, ``"30:"``)."""
        parts = text.split(":")
        if len(parts) != 2:
            raise ValueError(f"--minutes {text!r}: expected A:B (minutes, end excluded)")
        try:
            a = float(parts[0]) if parts[0] else 0.0
            b = float(parts[1]) if parts[1] else float("inf")
        except ValueError:
            raise ValueError(f"--minutes {text!r}: A and B must be numbers") from None
        if math.isnan(a) or math.isnan(b):
            raise ValueError(f"--minutes {text!r}: A and B must be numbers")
        if not (0 <= a < b):
            raise ValueError(f"--minutes {text!r}: need 0 <= A < B")
        return a, b

    def minutes_text(self) -> str:
        """The minute range as ``--minutes`` takes it (``5:10``, ``30:``)."""
        if self.minutes is None:
            return "0:"
        a, b = self.minutes
        return f"{a:g}:{b:g}" if math.isfinite(b) else f"{a:g}:"

    def window_s(self) -> tuple[float, float]:
        if self.minutes is None:
            return 0.0, float("inf")
        return self.minutes[0] * 60.0, self.minutes[1] * 60.0


@dataclass
class ModelTrace:
    """One model's requests."""

    model: ModelSpec
    arrivals_s: np.ndarray
    service_s: np.ndarray

    def __post_init__(self) -> None:
        if self.arrivals_s.shape != self.service_s.shape:
            raise ValueError(
                f"model {self.model.name}: arrivals and service times differ in length"
            )

    @property
    def requests(self) -> int:
        return int(self.arrivals_s.size)


@dataclass
class Workload:
    """All models of a trace, with the trace's duration and provenance."""

    traces: list[ModelTrace]
    duration_s: float
    source: str
    arrival_note: str
    citation: str
    seed: int
    extra: dict[str, str] = field(default_factory=dict)
    # per-model figures the trace did not give: name -> {"value", "source"} (see ``assumed``)
    assumed: dict[str, dict[str, Any]] = field(default_factory=dict)
    # what the reader passed over and the user should know (e.g. CSV columns it ignored)
    notes: list[str] = field(default_factory=list)

    @property
    def requests(self) -> int:
        return sum(t.requests for t in self.traces)

    def by_name(self, name: str) -> ModelTrace:
        for t in self.traces:
            if t.model.name == name:
                return t
        raise KeyError(name)


def assumed(option: str, given: Any, default: Any) -> dict[str, Any]:
    """One entry of ``Workload.assumed``: the option's value when it was given, else the
    reader's default; ``source`` says which (the option's name, or ``default``)."""
    if given is not None:
        return {"value": given, "source": option}
    return {"value": default, "source": "default"}


def model_rng(seed: int, purpose: int, index: int) -> np.random.Generator:
    """A generator per (seed, purpose, model index): slicing never changes a model's draws."""
    return np.random.default_rng([seed, purpose, index])


# purposes for model_rng
ARRIVALS = 1
SERVICE = 2
