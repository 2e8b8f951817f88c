"""Trace readers: good files, slices, and malformed lines named by file and line."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest

from autoscaler.sim.traces import (
    TraceError,
    TraceSlice,
    llm_service_s,
    read_azure_functions,
    read_azure_llm,
    read_csv_trace,
)


def _minute_counts(functions_dir: Path, rows: int) -> np.ndarray:
    with (functions_dir / "functions_inv.csv").open() as f:
        reader = csv.reader(f)
        next(reader)
        return np.array([[int(v) for v in next(reader)[3:]] for _ in range(rows)])


def test_azure_functions_slice_keeps_each_minutes_count(functions_dir: Path) -> None:
    w = read_azure_functions(
        functions_dir, seed=3, slice_=TraceSlice(functions=5, minutes=(10, 40))
    )
    counts = _minute_counts(functions_dir, 5)[:, 10:40]
    assert len(w.traces) == 5
    assert w.duration_s == 30 * 60
    for trace, expected in zip(w.traces, counts, strict=True):
        per_minute = np.bincount((trace.arrivals_s // 60).astype(int), minlength=30)
        assert per_minute.tolist() == expected.tolist()
        assert np.all(np.diff(trace.arrivals_s) >= 0)
        assert trace.service_s.shape == trace.arrivals_s.shape
        assert trace.model.memory_mb > 0
    assert "Poisson" in w.arrival_note
    assert "Serverless in the Wild" in w.citation


def test_azure_functions_slice_does_not_change_a_models_arrivals(functions_dir: Path) -> None:
    few = read_azure_functions(
        functions_dir, seed=1, slice_=TraceSlice(functions=2, minutes=(0, 30))
    )
    more = read_azure_functions(
        functions_dir, seed=1, slice_=TraceSlice(functions=4, minutes=(0, 30))
    )
    np.testing.assert_array_equal(few.traces[1].arrivals_s, more.traces[1].arrivals_s)


def _copy_functions(functions_dir: Path, tmp_path: Path) -> Path:
    for name in ("functions_inv.csv", "functions_run.csv", "functions_mem.csv"):
        shutil.copy(functions_dir / name, tmp_path / name)
    return tmp_path


@pytest.mark.parametrize(
    ("file", "line", "mangle", "message"),
    [
        ("functions_inv.csv", 3, lambda row: [*row[:5], "x", *row[6:]], "not an integer"),
        ("functions_inv.csv", 4, lambda row: row[:-1], "fields"),
        ("functions_run.csv", 2, lambda row: [*row[:-1], "fast"], "not a number"),
        ("functions_mem.csv", 2, lambda row: [*row[:3], "-5", *row[4:]], "0 to 1,048,576"),
    ],
    ids=["bad-count", "short-row", "bad-run-percentile", "negative-memory"],
)
def test_azure_functions_malformed_line_is_named(
    functions_dir: Path, tmp_path: Path, file: str, line: int, mangle: object, message: str
) -> None:
    root = _copy_functions(functions_dir, tmp_path)
    path = root / file
    rows = list(csv.reader(path.open()))
    rows[line - 1] = mangle(rows[line - 1])  # type: ignore[operator]
    with path.open("w", newline="") as f:
        csv.writer(f).writerows(rows)
    with pytest.raises(TraceError, match=message) as info:
        read_azure_functions(root, seed=0, slice_=TraceSlice(functions=5))
    assert f"{file}:{line}" in str(info.value)


def test_llm_trace_reads_every_row_with_the_linear_service_model(llm_trace: Path) -> None:
    w = read_azure_llm(llm_trace, seed=0)
    (trace,) = w.traces
    assert trace.requests == 8819
    assert trace.arrivals_s[0] == 0.0 and np.all(np.diff(trace.arrivals_s) >= 0)
    # first row: 4808 context tokens, 10 generated
    assert llm_service_s(np.array([4808.0]), np.array([10.0]))[0] == pytest.approx(
        0.05 + 0.4808 + 0.2
    )
    assert "Splitwise" in w.citation


def test_llm_trace_minute_slice(llm_trace: Path) -> None:
    w = read_azure_llm(llm_trace, seed=0, slice_=TraceSlice(minutes=(5, 10)))
    arr = w.traces[0].arrivals_s
    assert w.duration_s == 300 and arr.min() >= 0 and arr.max() < 300 and arr.size > 100


def test_llm_trace_malformed_line_is_named(tmp_path: Path) -> None:
    path = tmp_path / "llm.csv"
    path.write_text(
        "TIMESTAMP,ContextTokens,GeneratedTokens\n"
        "2023-11-16 18:17:03.9799600,4808,10\n"
        "2023-11-16 18:17:04.0319600,many,8\n"
    )
    with pytest.raises(TraceError, match=r"llm\.csv:3: token counts"):
        read_azure_llm(path, seed=0)


def test_llm_trace_skips_blank_lines_before_the_header_and_counts_them(tmp_path: Path) -> None:
    path = tmp_path / "llm.csv"
    path.write_text(
        "\n\nTIMESTAMP,ContextTokens,GeneratedTokens\n"
        "2023-11-16 18:17:03.9799600,4808,10\n"
        "\n"
        "2023-11-16 18:17:04.0319600,many,8\n"
    )
    with pytest.raises(TraceError, match=r"llm\.csv:6: token counts"):
        read_azure_llm(path, seed=0)
    path.write_text("\n\nTIMESTAMP,Context,Generated\n")
    with pytest.raises(TraceError, match=r"llm\.csv:3: header"):
        read_azure_llm(path, seed=0)


@pytest.mark.parametrize("fmt", ["csv", "azure-llm"])
def test_a_line_the_csv_reader_gives_up_on_is_named(tmp_path: Path, fmt: str) -> None:
    """A field past the CSV reader's limit (an unclosed quote runs to the end of the file)."""
    path = tmp_path / "log.csv"
    header = "timestamp" if fmt == "csv" else "TIMESTAMP,ContextTokens,GeneratedTokens"
    row = "1" if fmt == "csv" else "2023-11-16 18:17:03.9799600,4808,10"
    path.write_text(f'{header}\n{row}\n{row}\n"{"x" * 200_000}"\n{row}\n')
    read = read_csv_trace if fmt == "csv" else read_azure_llm
    with pytest.raises(TraceError, match=r"log\.csv:4: not a CSV file: field larger than"):
        read(path, seed=0)


def test_azure_functions_csv_error_names_the_line(functions_dir: Path, tmp_path: Path) -> None:
    root = _copy_functions(functions_dir, tmp_path)
    path = root / "functions_mem.csv"
    lines = path.read_text().splitlines()
    lines[2] = '"' + "x" * 200_000 + '"'
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(TraceError, match=r"functions_mem\.csv:3: not a CSV file"):
        read_azure_functions(root, seed=0, slice_=TraceSlice(functions=5))


def test_csv_trace_with_models_and_durations(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    path.write_text(
        "timestamp,model,duration_ms\n100.5,a,20\n100.0,b,1000\n101.0,a,30\n160.0,b,2000\n"
    )
    w = read_csv_trace(path, seed=0)
    assert [t.model.name for t in w.traces] == ["a", "b"]
    a, b = w.traces
    assert a.arrivals_s.tolist() == [0.5, 1.0] and a.service_s.tolist() == [0.02, 0.03]
    assert b.arrivals_s.tolist() == [0.0, 60.0] and b.service_s.tolist() == [1.0, 2.0]
    only_a = read_csv_trace(path, seed=0, slice_=TraceSlice(functions=1))
    assert [t.model.name for t in only_a.traces] == ["a"]


def test_csv_trace_iso_timestamps_without_duration(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    path.write_text("timestamp\n2024-01-01T00:00:00Z\n2024-01-01T00:00:02.5Z\n")
    (trace,) = read_csv_trace(path, seed=0, default_service_s=0.2).traces
    assert trace.arrivals_s.tolist() == [0.0, 2.5] and trace.service_s.tolist() == [0.2, 0.2]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("when\n1\n", r"log\.csv:1: header"),
        ("timestamp,model\n1,a\nyesterday,a\n", r"log\.csv:3: timestamp 'yesterday'"),
        ("timestamp,duration_s\n1,0.1\n2,-1\n", r"log\.csv:3: duration"),
        ("timestamp,model\n1,a,extra\n", r"log\.csv:2: 3 fields"),
    ],
    ids=["no-timestamp-column", "bad-timestamp", "negative-duration", "extra-field"],
)
def test_csv_trace_malformed(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "log.csv"
    path.write_text(text)
    with pytest.raises(TraceError, match=message):
        read_csv_trace(path, seed=0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("0:60", (0.0, 60.0)), ("30:", (30.0, float("inf"))), (":15", (0.0, 15.0))],
    ids=["both", "open-end", "open-start"],
)
def test_minutes_option_parses(text: str, expected: tuple[float, float]) -> None:
    assert TraceSlice.parse_minutes(text) == expected


@pytest.mark.parametrize("text", ["5", "10:5", "a:b"], ids=["one-number", "reversed", "words"])
def test_minutes_option_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="--minutes"):
        TraceSlice.parse_minutes(text)
