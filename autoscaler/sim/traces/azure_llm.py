"""Reader for the Azure LLM inference trace format: one request a row with token counts.

``TIMESTAMP,ContextTokens,GeneratedTokens``; all rows are one model (one service). A request's
service time comes from its tokens by a linear model of prefill and decode:

    service_s = LLM_BASE_S + ContextTokens * LLM_PREFILL_S_PER_TOKEN
                           + GeneratedTokens * LLM_DECODE_S_PER_TOKEN

with 50 ms of fixed overhead, prefill at 10,000 tokens/s and decode at 50 tokens/s (20 ms per
token), the order of a 7B-parameter model on one data-centre GPU. A replica serves
``LLM_CAPACITY`` requests at once at flat latency (continuous batching) and holds
``LLM_MEMORY_MB`` of memory. Change these with the reader's arguments.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from autoscaler.sim.model import ModelSpec, ServiceTime
from autoscaler.sim.traces.timestamps import Span
from autoscaler.sim.traces.workload import (
    CsvRows,
    ModelTrace,
    TraceError,
    TraceSlice,
    Workload,
    assumed,
    plain_int,
    short_columns,
    shown,
    unreadable,
)

LLM_BASE_S = 0.05
LLM_PREFILL_S_PER_TOKEN = 0.0001
LLM_DECODE_S_PER_TOKEN = 0.02
LLM_CAPACITY = 8
LLM_MEMORY_MB = 16384.0
COLUMNS = ["TIMESTAMP", "ContextTokens", "GeneratedTokens"]
# Token counts above this are refused: 1,000,000 generated tokens already take 20,000 s.
MAX_TOKENS = 1_000_000

ARRIVAL_NOTE = "Azure LLM inference trace: each request at its own recorded timestamp"
CITATION = (
    "Azure LLM inference trace 2023, code (Azure Public Dataset, CC-BY-4.0): "
    '"Splitwise: Efficient generative LLM inference using phase splitting", ISCA 2024.'
)


def llm_service_s(context_tokens: np.ndarray, generated_tokens: np.ndarray) -> np.ndarray:
    """The linear service-time model of this module's docstring, seconds."""
    return (
        LLM_BASE_S
        + context_tokens * LLM_PREFILL_S_PER_TOKEN
        + generated_tokens * LLM_DECODE_S_PER_TOKEN
    )


def read_azure_llm(
    path: Path | str,
    *,
    seed: int,
    slice_: TraceSlice | None = None,
    capacity: int | None = None,
    container_concurrency: int = 0,
    memory_mb: float | None = None,
    model_name: str = "llm-code",
) -> Workload:
    """Read the trace file into a one-model workload (times from its first request).

    ``capacity`` and ``memory_mb`` are the model's (None: ``LLM_CAPACITY``, ``LLM_MEMORY_MB``),
    recorded in the workload's ``assumed``.
    """
    slice_ = slice_ or TraceSlice()
    path = Path(path)
    stamps: list[float] = []
    span = Span()
    ctx: list[int] = []
    gen: list[int] = []
    rows = None
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            rows = CsvRows(path, f)
            lines = iter(rows)
            header: list[str] = []
            header_line = 0
            for number, row in lines:  # blank lines before the header are skipped
                if any(v.strip() for v in row):
                    header = row
                    header_line = number
                    break
            if not header:
                raise TraceError(path, None, f"empty file, expected a header {COLUMNS}")
            if [h.strip() for h in header] != COLUMNS:
                raise TraceError(
                    path,
                    header_line,
                    f"header {short_columns(header)}, expected {COLUMNS}",
                )
            for number, row in lines:
                if not row or all(not v.strip() for v in row):
                    continue
                if len(row) != 3:
                    raise TraceError(path, number, f"{len(row)} fields, expected 3: {COLUMNS}")
                stamps.append(span.read(path, number, "TIMESTAMP", row[0], "date-time"))
                try:
                    c, g = plain_int(row[1].strip()), plain_int(row[2].strip())
                except ValueError:
                    raise TraceError(
                        path,
                        number,
                        f"token counts {shown(row[1])}, {shown(row[2])} must be integers",
                    ) from None
                if not (0 <= c <= MAX_TOKENS and 0 <= g <= MAX_TOKENS):
                    raise TraceError(
                        path,
                        number,
                        f"token counts {shown(row[1])}, {shown(row[2])} must be 0 to "
                        f"{MAX_TOKENS:,}",
                    )
                ctx.append(c)
                gen.append(g)
    except (OSError, csv.Error, UnicodeDecodeError) as exc:
        raise unreadable(path, exc, "azure-llm", rows) from None
    if not stamps:
        raise TraceError(path, None, "no requests in the file")

    t = np.asarray(stamps) - min(stamps)
    order = np.argsort(t, kind="stable")
    t = t[order]
    service = llm_service_s(np.asarray(ctx, dtype=np.float64), np.asarray(gen, dtype=np.float64))
    service = service[order]
    lo_s, hi_s = slice_.window_s()
    keep = (t >= lo_s) & (t < hi_s)
    t, service = t[keep] - lo_s, service[keep]
    duration = min(hi_s, float(np.ceil(max(stamps) - min(stamps)) + 1.0)) - lo_s
    if duration <= 0:
        raise TraceError(
            path,
            None,
            (
                f"minute range {slice_.minutes_text()} is past the trace's end "
                f"({(max(stamps) - min(stamps)) / 60:,.1f} minutes)"
            ),
        )
    probs = np.linspace(0.0, 1.0, 21)
    quantiles = np.quantile(
        service if service.size else llm_service_s(np.zeros(1), np.zeros(1)), probs
    )
    spec = ModelSpec(
        name=model_name,
        service=ServiceTime(tuple(probs), tuple(float(q) for q in quantiles)),
        capacity=capacity if capacity is not None else LLM_CAPACITY,
        container_concurrency=container_concurrency,
        memory_mb=memory_mb if memory_mb is not None else LLM_MEMORY_MB,
    )
    return Workload(
        traces=[ModelTrace(spec, t, service)],
        duration_s=duration,
        source=str(path),
        arrival_note=ARRIVAL_NOTE,
        citation=CITATION,
        seed=seed,
        assumed={
            "capacity": assumed("--capacity", capacity, LLM_CAPACITY),
            "memory_mb": assumed("--memory-mb", memory_mb, LLM_MEMORY_MB),
        },
    )
