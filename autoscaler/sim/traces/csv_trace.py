"""Reader for a plain CSV of request timestamps that users export from their own logs.

A header row names the columns: ``timestamp`` (required: seconds as a number, or an ISO 8601
date-time; numbers that can only be milliseconds or finer are refused, see ``timestamps``), ``model`` (optional: one revision per distinct name, in order of first
appearance; without it every row is ``DEFAULT_MODEL``) and ``duration_s`` or ``duration_ms``
(optional: the request's service time; without it every request takes ``default_service_s``).
Names are matched in any case; other columns are ignored and named in the workload's notes.
Times are taken relative to the earliest timestamp in the file, of every model, so ``--functions``
does not move the origin that ``--minutes`` counts from.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from autoscaler.sim.model import MAX_SERVICE_S, ModelSpec, ServiceTime
from autoscaler.sim.traces.timestamps import Span
from autoscaler.sim.traces.workload import (
    CsvRows,
    ModelTrace,
    TraceError,
    TraceSlice,
    Workload,
    assumed,
    plain_float,
    short_columns,
    shown,
    unreadable,
)

DEFAULT_MODEL = "model"
DEFAULT_SERVICE_S = 0.1
DEFAULT_CAPACITY = 4
DEFAULT_MEMORY_MB = 512.0
KNOWN_COLUMNS = ("timestamp", "model", "duration_s", "duration_ms")
ARRIVAL_NOTE = "CSV of request timestamps: each request at its own recorded time"


def read_csv_trace(
    path: Path | str,
    *,
    seed: int,
    slice_: TraceSlice | None = None,
    capacity: int | None = None,
    container_concurrency: int = 0,
    default_service_s: float = DEFAULT_SERVICE_S,
    memory_mb: float | None = None,
) -> Workload:
    """Read the file into a workload, one model per distinct ``model`` value.

    ``capacity`` and ``memory_mb`` are every model's (None: ``DEFAULT_CAPACITY``,
    ``DEFAULT_MEMORY_MB``); the workload's ``assumed`` records them, and ``default_service_s``
    when the file has no duration column. Columns other than ``KNOWN_COLUMNS`` are ignored and
    named in the workload's ``notes``.
    """
    slice_ = slice_ or TraceSlice()
    path = Path(path)
    per_model: dict[str, tuple[list[float], list[float]]] = {}
    span = Span()  # over every row, kept or not
    notes: list[str] = []
    rows = None
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            rows = CsvRows(path, f)
            lines = iter(rows)
            header: list[str] = []
            header_line = 0
            for number, row in lines:  # blank lines before the header are skipped
                if any(v.strip() for v in row):
                    header = [h.strip().lower() for h in row]
                    header_line = number
                    break
            if not header:
                raise TraceError(path, None, "empty file, expected a header with 'timestamp'")
            if "timestamp" not in header:
                hint = (
                    " (an Azure Functions trace is --format azure-functions)"
                    if header[0] == "hashfunction"
                    else ""
                )
                raise TraceError(
                    path,
                    header_line,
                    f"header {short_columns(header)}: need a 'timestamp' column, may have "
                    f"{', '.join(KNOWN_COLUMNS[1:])}{hint}",
                )
            for i, h in enumerate(header):
                if h in KNOWN_COLUMNS and h in header[:i]:
                    raise TraceError(
                        path,
                        header_line,
                        f"column {h!r} is in the header twice (columns "
                        f"{header.index(h) + 1} and {i + 1})",
                    )
            ignored = [h for h in header if h not in KNOWN_COLUMNS]
            if ignored:
                notes.append(
                    f"{path}: columns {short_columns(ignored)} ignored (the columns read are "
                    f"{', '.join(KNOWN_COLUMNS)})"
                )
            if "duration_s" in header and "duration_ms" in header:
                raise TraceError(path, header_line, "give duration_s or duration_ms, not both")
            i_t = header.index("timestamp")
            i_m = header.index("model") if "model" in header else None
            i_d, scale = None, 1.0
            if "duration_s" in header:
                i_d = header.index("duration_s")
            elif "duration_ms" in header:
                i_d, scale = header.index("duration_ms"), 0.001
            for number, row in lines:
                if not row or all(not v.strip() for v in row):
                    continue
                if len(row) != len(header):
                    raise TraceError(
                        path, number, f"{len(row)} fields, the header has {len(header)}"
                    )
                t = span.read(path, number, "timestamp", row[i_t], "time")
                name = row[i_m].strip() if i_m is not None else DEFAULT_MODEL
                if not name:
                    raise TraceError(path, number, "empty model name")
                d = default_service_s
                if i_d is not None:
                    try:
                        d = plain_float(row[i_d].strip()) * scale
                    except ValueError:
                        raise TraceError(
                            path, number, f"duration {shown(row[i_d])} is not a number"
                        ) from None
                    if not (math.isfinite(d) and 0 < d <= MAX_SERVICE_S):
                        raise TraceError(
                            path,
                            number,
                            f"duration {shown(row[i_d])} must be a number > 0 and at most "
                            f"{MAX_SERVICE_S:g} s (a day)",
                        )
                if (
                    slice_.functions is not None
                    and name not in per_model
                    and len(per_model) >= slice_.functions
                ):
                    continue
                times, durations = per_model.setdefault(name, ([], []))
                times.append(t)
                durations.append(d)
    except (OSError, csv.Error, UnicodeDecodeError) as exc:
        raise unreadable(path, exc, "csv", rows) from None
    if not per_model:
        raise TraceError(path, None, "no requests in the file")

    start, end = span.start, span.end
    lo_s, hi_s = slice_.window_s()
    hi_s = min(hi_s, float(np.floor(end - start)) + 1.0)
    if lo_s >= hi_s:
        raise TraceError(
            path,
            None,
            (
                f"minute range {slice_.minutes_text()} is past the trace's end "
                f"({(end - start) / 60:,.1f} minutes)"
            ),
        )
    traces: list[ModelTrace] = []
    probs = np.linspace(0.0, 1.0, 21)
    for name, (times, durations) in per_model.items():
        t_s = np.asarray(times) - start
        d_s = np.asarray(durations)
        order = np.argsort(t_s, kind="stable")
        t_s, d_s = t_s[order], d_s[order]
        keep = (t_s >= lo_s) & (t_s < hi_s)
        t_s, d_s = t_s[keep] - lo_s, d_s[keep]
        q = np.quantile(d_s, probs) if d_s.size else np.full(probs.size, default_service_s)
        spec = ModelSpec(
            name=name,
            service=ServiceTime(tuple(probs), tuple(float(x) for x in q)),
            capacity=capacity if capacity is not None else DEFAULT_CAPACITY,
            container_concurrency=container_concurrency,
            memory_mb=memory_mb if memory_mb is not None else DEFAULT_MEMORY_MB,
        )
        traces.append(ModelTrace(spec, t_s, d_s))
    given = {
        "capacity": assumed("--capacity", capacity, DEFAULT_CAPACITY),
        "memory_mb": assumed("--memory-mb", memory_mb, DEFAULT_MEMORY_MB),
    }
    if i_d is None:  # no duration column
        given = {"service_s": {"value": default_service_s, "source": "default"}, **given}
    return Workload(
        traces=traces,
        duration_s=hi_s - lo_s,
        source=str(path),
        arrival_note=ARRIVAL_NOTE,
        citation=f"Requests from {path.name}.",
        seed=seed,
        assumed=given,
        notes=notes,
    )
