"""Reader for the Azure Functions 2019 trace format (per-minute invocation counts).

Three files in one directory: ``functions_inv.csv`` (``HashFunction,HashApp,HashOwner,``
then one count per minute), ``functions_run.csv`` (execution-time percentiles in ms, by
``HashFunction``) and ``functions_mem.csv`` (allocated memory in MB, by ``HashApp``).

The trace gives only a count per minute. Within each minute the reader places that many
arrivals as a seeded Poisson process conditioned on the count: independent uniform times in the
minute. Each request's service time is drawn from the function's execution-time percentiles
(0, 1, 25, 50, 75, 99, 100 %) by linear interpolation of the inverse CDF. A function's capacity
(concurrent requests per replica at flat latency) is not in the trace: it comes from
``capacity_from_name`` unless one capacity is given for all.
"""

from __future__ import annotations

import contextlib
import csv
import math
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from autoscaler.sim.model import (
    MAX_MEMORY_MB,
    MAX_SERVICE_S,
    ModelSpec,
    ServiceTime,
    capacity_from_name,
)
from autoscaler.sim.traces.workload import (
    ARRIVALS,
    SERVICE,
    CsvRows,
    ModelTrace,
    TraceError,
    TraceSlice,
    Workload,
    assumed,
    model_rng,
    plain_float,
    shown,
    undecodable,
)

INV_FILE = "functions_inv.csv"
RUN_FILE = "functions_run.csv"
MEM_FILE = "functions_mem.csv"

RUN_PERCENTILES = (0, 1, 25, 50, 75, 99, 100)
RUN_COLUMNS = tuple(f"percentile_Average_{p}" for p in RUN_PERCENTILES)
# Invocations of one function in one minute above this are refused (about 16,700 a second; the
# 2019 day's busiest minute has 7,687): each becomes a request held in memory.
MAX_COUNT_PER_MINUTE = 1_000_000
# An invocation count: ASCII digits, an optional sign, spaces around
_COUNT = re.compile(r"\s*[-+]?[0-9]+\s*")
# Service times below this are raised to it: the trace rounds to whole milliseconds and has zeros.
MIN_SERVICE_S = 0.001

# Workload.assumed's source for a capacity picked by capacity_from_name
NAME_HASH = "name-hash"

ARRIVAL_NOTE = (
    "Azure Functions per-minute counts spread within each minute as a seeded Poisson process "
    "(the count's arrivals at independent uniform times in the minute)"
)
CITATION = (
    "Azure Functions trace 2019 (Azure Public Dataset, CC-BY-4.0; the 600-function sample from "
    "the files' README): \"Serverless in the Wild: Characterizing and Optimizing "
    'the Serverless Workload at a Large Cloud Provider", USENIX ATC 2020.'
)


def _rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    """The file's rows with their line numbers (see ``CsvRows``)."""
    rows = None
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            rows = CsvRows(path, f)
            yield from rows
    except FileNotFoundError:
        raise TraceError(path, None, "file not found") from None
    except OSError as exc:
        raise TraceError(path, None, f"cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise undecodable(path, exc) from None
    except csv.Error as exc:
        raise (rows.error(exc) if rows else TraceError(path, None, str(exc))) from None


def _header(path: Path, rows: Iterator[tuple[int, list[str]]], first: list[str]) -> list[str]:
    try:
        _, header = next(rows)
    except StopIteration:
        raise TraceError(path, 1, "empty file, expected a header") from None
    if header[: len(first)] != first:
        raise TraceError(path, 1, f"header starts {header[: len(first)]}, expected {first}")
    return header


def _first_time(path: Path, number: int, column: str, key: str, lines: dict[str, int]) -> None:
    """Note ``key``'s line in ``lines``; a key seen before is an error naming both lines."""
    if key in lines:
        short = key if len(key) <= 12 else key[:12] + "..."
        raise TraceError(path, number, f"{column} {short} repeats line {lines[key]}")
    lines[key] = number


def _read_service(path: Path) -> dict[str, ServiceTime]:
    rows = _rows(path)
    header = _header(path, rows, ["HashFunction"])
    missing = [c for c in RUN_COLUMNS if c not in header]
    if missing:
        raise TraceError(path, 1, f"missing columns {missing}")
    idx = [header.index(c) for c in RUN_COLUMNS]
    out: dict[str, ServiceTime] = {}
    lines: dict[str, int] = {}
    for number, row in rows:
        if not row:  # a blank line, as the other readers skip
            continue
        if len(row) != len(header):
            raise TraceError(path, number, f"{len(row)} fields, the header has {len(header)}")
        _first_time(path, number, "HashFunction", row[0], lines)
        try:
            ms = np.array([plain_float(row[i].strip()) for i in idx])
        except ValueError as exc:
            raise TraceError(
                path, number, f"execution-time percentile is not a number: {exc}"
            ) from None
        if not np.all(np.isfinite(ms)) or np.any(ms < 0) or np.any(ms > MAX_SERVICE_S * 1000):
            raise TraceError(
                path,
                number,
                "execution-time percentiles must be numbers of ms >= 0 and at most "
                f"{MAX_SERVICE_S * 1000:,.0f} (a day)",
            )
        q = np.maximum.accumulate(np.maximum(ms / 1000.0, MIN_SERVICE_S))
        probs = tuple(p / 100.0 for p in RUN_PERCENTILES)
        out[row[0]] = ServiceTime(probs, tuple(float(x) for x in q))
    return out


def _read_memory(path: Path) -> dict[str, float]:
    rows = _rows(path)
    header = _header(path, rows, ["HashApp"])
    if "AverageAllocatedMb" not in header:
        raise TraceError(path, 1, "missing column AverageAllocatedMb")
    i = header.index("AverageAllocatedMb")
    out: dict[str, float] = {}
    lines: dict[str, int] = {}
    for number, row in rows:
        if not row:  # a blank line, as the other readers skip
            continue
        if len(row) != len(header):
            raise TraceError(path, number, f"{len(row)} fields, the header has {len(header)}")
        _first_time(path, number, "HashApp", row[0], lines)
        try:
            mb = plain_float(row[i].strip())
        except ValueError:
            raise TraceError(
                path, number, f"AverageAllocatedMb {shown(row[i])} is not a number"
            ) from None
        if not (math.isfinite(mb) and 0 <= mb <= MAX_MEMORY_MB):
            raise TraceError(
                path,
                number,
                f"AverageAllocatedMb {shown(row[i])} must be a number, 0 to {MAX_MEMORY_MB:,.0f} (1 TB)",
            )
        out[row[0]] = mb
    return out


def _counts(path: Path, number: int, values: list[str]) -> np.ndarray:
    """A row's per-minute invocation counts, each an integer 0 to ``MAX_COUNT_PER_MINUTE``."""
    counts = None
    joined = "".join(values)
    if joined.isascii() and "_" not in joined:  # int() also takes other scripts' digits and 1_0
        with contextlib.suppress(ValueError, OverflowError):
            counts = np.array(values, dtype=np.int64)
    if counts is None:
        for v in values:
            if not _COUNT.fullmatch(v):
                raise TraceError(path, number, f"invocation count {shown(v)} is not an integer")
        # the row has a count too large for int64: clamp to one past the bounds, named below
        clamped = [max(-1, min(int(v), MAX_COUNT_PER_MINUTE + 1)) for v in values]
        counts = np.array(clamped, dtype=np.int64)
    if np.any(counts < 0):
        raise TraceError(path, number, "invocation counts must be >= 0")
    over = np.flatnonzero(counts > MAX_COUNT_PER_MINUTE)
    if over.size:
        raise TraceError(
            path,
            number,
            f"invocation count {shown(values[over[0]].strip())} (minute {over[0] + 1}) is over "
            f"{MAX_COUNT_PER_MINUTE:,} a minute",
        )
    return counts


def _short_names(hashes: list[str]) -> list[str]:
    """``fn-`` and the shortest hash prefix (at least 10) that keeps every name unique."""
    for width in range(10, 65):
        names = [f"fn-{h[:width]}" for h in hashes]
        if len(set(names)) == len(names):
            return names
    raise ValueError("duplicate HashFunction values")


def read_azure_functions(
    path: Path | str,
    *,
    seed: int,
    slice_: TraceSlice | None = None,
    capacity: int | None = None,
    container_concurrency: int = 0,
    memory_mb: float | None = None,
) -> Workload:
    """Read the trace directory (or its ``functions_inv.csv``) into a workload.

    ``capacity`` is every function's (None: ``capacity_from_name``); ``memory_mb`` replaces
    every function's memory from ``functions_mem.csv`` (None: the file's, which is read and
    checked either way). The workload's ``assumed`` records what was not the trace's.
    """
    slice_ = slice_ or TraceSlice()
    root = Path(path)
    if not root.exists():
        raise TraceError(root, None, "not found")
    if not root.is_dir():
        if root.name not in (INV_FILE, RUN_FILE, MEM_FILE):
            raise TraceError(
                root,
                None,
                f"not an Azure Functions trace directory ({INV_FILE}, {RUN_FILE}, {MEM_FILE}); "
                "for one file of requests pass --format azure-llm or --format csv",
            )
        root = root.parent
    inv_path, run_path, mem_path = root / INV_FILE, root / RUN_FILE, root / MEM_FILE
    service = _read_service(run_path)
    memory = _read_memory(mem_path)

    rows = _rows(inv_path)
    header = _header(inv_path, rows, ["HashFunction", "HashApp", "HashOwner"])
    minutes = len(header) - 3
    if minutes < 1:
        raise TraceError(inv_path, 1, "no minute columns")
    lo_s, hi_s = slice_.window_s()
    hi_s = min(hi_s, minutes * 60.0)
    if lo_s >= hi_s:
        raise TraceError(
            inv_path, None, f"minute range {slice_.minutes_text()} is outside 0:{minutes}"
        )
    # minutes before the window are drawn too, then dropped: a function's draws run through its
    # minutes in order, so a window's arrivals and service times are the whole trace's
    last_minute = int(np.ceil(hi_s / 60.0))

    raw: list[tuple[str, str, np.ndarray]] = []
    lines: dict[str, int] = {}
    for number, row in rows:
        if not row:
            continue
        if slice_.functions is not None and len(raw) >= slice_.functions:
            break
        if len(row) != len(header):
            raise TraceError(inv_path, number, f"{len(row)} fields, the header has {len(header)}")
        _first_time(inv_path, number, "HashFunction", row[0], lines)
        counts = _counts(inv_path, number, row[3:])
        if row[0] not in service:
            raise TraceError(
                inv_path, number, f"function {row[0][:12]}... has no row in {RUN_FILE}"
            )
        if row[1] not in memory:
            raise TraceError(inv_path, number, f"app {row[1][:12]}... has no row in {MEM_FILE}")
        raw.append((row[0], row[1], counts[:last_minute]))
    if not raw:
        raise TraceError(inv_path, None, "no functions in the file")

    names = _short_names([h for h, _, _ in raw])
    traces: list[ModelTrace] = []
    for index, ((fn, app, counts), name) in enumerate(zip(raw, names, strict=True)):
        spec = ModelSpec(
            name=name,
            service=service[fn],
            capacity=capacity if capacity is not None else capacity_from_name(fn),
            container_concurrency=container_concurrency,
            memory_mb=memory_mb if memory_mb is not None else memory[app],
        )
        arrivals = _spread(counts, model_rng(seed, ARRIVALS, index))
        service_s = spec.service.sample(model_rng(seed, SERVICE, index), arrivals.size)
        keep = (arrivals >= lo_s) & (arrivals < hi_s)
        traces.append(ModelTrace(spec, arrivals[keep] - lo_s, service_s[keep]))
    return Workload(
        traces=traces,
        duration_s=hi_s - lo_s,
        source=str(root),
        arrival_note=ARRIVAL_NOTE,
        citation=CITATION,
        seed=seed,
        assumed={
            "capacity": assumed("--capacity", capacity, None)
            if capacity is not None
            else {"value": None, "source": NAME_HASH},
            **(
                {"memory_mb": assumed("--memory-mb", memory_mb, None)}
                if memory_mb is not None
                else {}
            ),
        },
    )


def _spread(counts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Arrival times (s) for per-minute counts: uniform within each minute, sorted."""
    total = int(counts.sum())
    starts = np.arange(counts.size, dtype=np.float64) * 60.0
    times = np.repeat(starts, counts) + rng.random(total) * 60.0
    times.sort()
    return times
