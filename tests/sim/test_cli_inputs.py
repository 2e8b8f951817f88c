"""Bad input to ``modelscale simulate``: a one-line error naming what was wrong, exit 2."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from autoscaler.sim import cli, parallel
from autoscaler.sim.report import plot_name, write_report
from autoscaler.sim.traces import (
    TraceError,
    TraceSlice,
    read_azure_functions,
    read_azure_llm,
    read_csv_trace,
)

TINY_CSV = "timestamp,model\n0,a\n1,a\n30,a\n"


INV = "HashFunction,HashApp,HashOwner,1,2,3,4,5\nf1,a1,o1,1,0,2,0,1\nf2,a2,o1,0,3,0,0,1\n"
RUN = (
    "HashFunction,HashApp,HashOwner,Count,Average,Minimum,Maximum,percentile_Average_0,"
    "percentile_Average_1,percentile_Average_25,percentile_Average_50,percentile_Average_75,"
    "percentile_Average_99,percentile_Average_100\n"
    "f1,a1,o1,4,100,50,200,50,60,80,100,120,180,200\n"
    "f2,a2,o1,4,100,50,200,50,60,80,100,120,180,200\n"
)
MEM = "HashApp,HashOwner,SampleCount,AverageAllocatedMb\na1,o1,10,256\na2,o1,10,128\n"
LLM = "TIMESTAMP,ContextTokens,GeneratedTokens\n"


def _functions(tmp_path: Path, inv: str = INV, run: str = RUN, mem: str = MEM) -> Path:
    root = tmp_path / "af"
    root.mkdir()
    for name, text in (("inv", inv), ("run", run), ("mem", mem)):
        (root / f"functions_{name}.csv").write_text(text)
    return root


def _simulate(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    args = parser.parse_args(["--jobs", "1", "--policies", "knative-default", *argv])
    return cli.run(args)


def _tiny(tmp_path: Path, text: str = TINY_CSV, name: str = "log.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.fixture
def no_simulation(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if the simulation starts."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the simulation ran")

    monkeypatch.setattr(parallel, "run_policies", refuse)


@pytest.mark.parametrize(
    ("out", "message"),
    [("afile", "--out {out}: not a directory"), ("afile/sub", "--out {out}: cannot write")],
    ids=["existing-file", "under-a-file"],
)
def test_bad_out_is_refused_before_the_simulation(
    tmp_path: Path, out: str, message: str, no_simulation: None,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    (tmp_path / "afile").write_text("hi\n")
    trace = _tiny(tmp_path)
    out_path = tmp_path / out
    assert _simulate("--trace", str(trace), "--format", "csv", "--out", str(out_path)) == 2
    err = capsys.readouterr().err
    assert message.format(out=out_path) in err
    assert "Traceback" not in err


def test_out_is_created_with_its_parents(tmp_path: Path) -> None:
    trace = _tiny(tmp_path)
    out = tmp_path / "a" / "b"
    assert _simulate("--trace", str(trace), "--format", "csv", "--out", str(out)) == 0
    assert json.loads((out / "results.json").read_text())["trace"]["requests"] == 3


def test_model_names_make_safe_plot_names_and_working_links(tmp_path: Path) -> None:
    # the report plots the three busiest models
    names = ["meta-llama/Llama-3-8B", "my model (v2) $a^$", "fn-ab/../../" + "x" * 300]
    rows = "".join(f'{t},"{name}"\n' for name in names for t in (0, 1, 2))
    trace = _tiny(tmp_path, "timestamp,model\n" + rows)
    out = tmp_path / "out"
    assert _simulate("--trace", str(trace), "--format", "csv", "--out", str(out)) == 0
    plots = sorted(p.name for p in out.glob("replicas_*.png"))
    assert len(plots) == len(names)
    assert {p.parent for p in out.rglob("*.png")} == {out}
    assert all(len(p) <= 70 and re.fullmatch(r"[A-Za-z0-9._-]+", p) for p in plots)
    report = (out / "report.md").read_text()
    # CommonMark: a link destination has no spaces or unbalanced brackets
    links = re.findall(r"!\[([^\]\s]+)\]\(([^()\s]+)\)", report)
    assert sorted(dest for _, dest in links if dest.startswith("replicas_")) == plots
    assert all((out / dest).is_file() for _, dest in links)


def test_plot_names_stay_unique() -> None:
    names = ["A", "a", "a/b", "a b", "a?b", "..", "", "x" * 300, "x" * 301]
    plots = [plot_name(n) for n in names]
    assert len(set(plots)) == len(names)
    assert all(
        len(p) <= 70 and re.fullmatch(r"replicas_[A-Za-z0-9][A-Za-z0-9._-]*\.png", p) for p in plots
    )


@pytest.mark.parametrize("value", ["nan", "inf", "-1", "1e9"])
def test_cold_start_must_be_finite_and_at_most_a_day(
    tmp_path: Path, value: str, no_simulation: None, capsys: pytest.CaptureFixture[str]
) -> None:
    trace = _tiny(tmp_path)
    argv = ["--trace", str(trace), "--format", "csv", f"--cold-start-s={value}"]
    assert _simulate(*argv, "--out", str(tmp_path / "out")) == 2
    assert f"--cold-start-s {float(value)}: must be a number of seconds" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("timestamp,duration_s\n0,1\n1,inf\n", r"log\.csv:3: duration 'inf'"),
        ("timestamp,duration_ms\n0,1\n1,1e400\n", r"log\.csv:3: duration '1e400'"),
        ("timestamp,duration_s\n0,1\n1,1e9\n", r"log\.csv:3: duration '1e9' .* \(a day\)"),
        ("timestamp\n0\nnan\n5\n", r"log\.csv:3: timestamp 'nan'"),
        ("timestamp\nnan\n0\n5\n", r"log\.csv:2: timestamp 'nan'"),
        ("timestamp\n0\n-inf\n", r"log\.csv:3: timestamp '-inf'"),
        ("timestamp\n0\n1e400\n", r"log\.csv:3: timestamp '1e400'"),
        ("timestamp\n-1e308\n1e308\n", r"log\.csv:2: timestamp '-1e308' is too large"),
    ],
    ids=["inf-s", "huge-ms", "over-a-day", "nan", "nan-first", "minus-inf", "overflow", "span"],
)
def test_csv_non_finite_or_huge_values_name_the_line(
    tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(TraceError, match=message):
        read_csv_trace(_tiny(tmp_path, text), seed=0)


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ("2023-11-16 18:17:03,10,10\n2023-11-16 18:17:04,10,100000000000000000000\n",
         r"llm\.csv:3: token counts .* must be 0 to 1,000,000"),
        ("nan,10,10\n2023-11-16 18:17:04,10,10\n", r"llm\.csv:2: TIMESTAMP 'nan'"),
        ("0,10,10\ninf,10,10\n", r"llm\.csv:3: TIMESTAMP 'inf'"),
    ],
    ids=["huge-tokens", "nan-first", "inf"],
)  # fmt: skip
def test_llm_non_finite_or_huge_values_name_the_line(
    tmp_path: Path, rows: str, message: str
) -> None:
    with pytest.raises(TraceError, match=message):
        read_azure_llm(_tiny(tmp_path, LLM + rows, "llm.csv"), seed=0)


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_functions_memory_must_be_finite(tmp_path: Path, value: str) -> None:
    root = _functions(tmp_path, mem=MEM.replace("a1,o1,10,256", f"a1,o1,10,{value}"))
    with pytest.raises(TraceError, match=f"functions_mem.csv:2: AverageAllocatedMb '{value}'"):
        read_azure_functions(root, seed=0)


def test_functions_run_times_over_a_day_name_the_line(tmp_path: Path) -> None:
    root = _functions(tmp_path, run=RUN.replace(",180,200\nf2", ",180,1e12\nf2"))
    with pytest.raises(TraceError, match=r"functions_run\.csv:2: .* \(a day\)"):
        read_azure_functions(root, seed=0)


def test_results_json_never_holds_nan_or_infinity(tmp_path: Path) -> None:
    document = {"trace": {"duration_s": float("inf")}, "policies": {"a": {"x": float("nan")}}}
    with pytest.raises(ValueError, match="not a finite number"):
        write_report(tmp_path, document, [], None, 0.0)  # type: ignore[arg-type]
    assert not (tmp_path / "results.json").exists()


@pytest.mark.parametrize("reader", [read_csv_trace, read_azure_llm], ids=["csv", "azure-llm"])
def test_a_directory_for_a_one_file_format_is_named(tmp_path: Path, reader: Any) -> None:
    root = _functions(tmp_path)
    with pytest.raises(TraceError, match=r"is a directory; --format .* reads one file"):
        reader(root, seed=0)


@pytest.mark.parametrize(
    "reader", [read_csv_trace, read_azure_llm, read_azure_functions],
    ids=["csv", "azure-llm", "azure-functions"],
)  # fmt: skip
def test_os_errors_are_trace_errors(
    tmp_path: Path, reader: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _functions(tmp_path)
    trace = _tiny(tmp_path)

    def denied(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "open", denied)
    with pytest.raises(TraceError, match="cannot read: Permission denied"):
        reader(root if reader is read_azure_functions else trace, seed=0)


def test_a_path_under_a_file_is_a_trace_error(tmp_path: Path) -> None:
    with pytest.raises(TraceError, match="cannot read: Not a directory"):
        read_csv_trace(_tiny(tmp_path) / "x.csv", seed=0)


def test_a_directory_for_csv_exits_2_without_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _functions(tmp_path)
    assert _simulate("--trace", str(root), "--format", "csv", "--out", str(tmp_path / "o")) == 2
    assert f"modelscale simulate: {root}: is a directory" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("count", "message"),
    [
        ("99999999999999999999", r"count '99999999999999999999' \(minute 2\) is over 1,000,000"),
        ("1000001", r"count '1000001' \(minute 2\) is over 1,000,000 a minute"),
        ("²", "count '²' is not an integer"),
        ("٣", "count '٣' is not an integer"),
        ("1_0", "count '1_0' is not an integer"),
        ("-3", "invocation counts must be >= 0"),
        ("-99999999999999999999", "invocation counts must be >= 0"),
    ],
    ids=[
        "overflow",
        "over-the-cap",
        "superscript",
        "arabic-indic",
        "underscore",
        "negative",
        "negative-overflow",
    ],
)
def test_invocation_counts_are_bounded_ascii_integers(
    tmp_path: Path, count: str, message: str
) -> None:
    root = _functions(tmp_path, inv=INV.replace("f1,a1,o1,1,0,", f"f1,a1,o1,1,{count},"))
    with pytest.raises(TraceError, match=f"functions_inv.csv:2: .*{message}"):
        read_azure_functions(root, seed=0)


def test_invocation_counts_with_spaces_and_signs_are_read(tmp_path: Path) -> None:
    root = _functions(tmp_path, inv=INV.replace("f1,a1,o1,1,0,", "f1,a1,o1, 1 ,+0,"))
    assert read_azure_functions(root, seed=0).traces[0].requests == 4


@pytest.mark.parametrize("trace_format", ["csv", "azure-llm", "azure-functions"])
def test_negative_seed_is_named_for_every_format(
    tmp_path: Path, trace_format: str, no_simulation: None, capsys: pytest.CaptureFixture[str]
) -> None:
    trace = {
        "csv": lambda: _tiny(tmp_path),
        "azure-llm": lambda: _tiny(tmp_path, LLM + "0,10,10\n1,10,10\n", "llm.csv"),
        "azure-functions": lambda: _functions(tmp_path),
    }[trace_format]()
    argv = ["--trace", str(trace), "--format", trace_format, "--seed", "-1"]
    assert _simulate(*argv, "--out", str(tmp_path / "out")) == 2
    assert "modelscale simulate: --seed -1: must be >= 0" in capsys.readouterr().err


def test_a_byte_order_mark_is_accepted_by_every_reader(tmp_path: Path) -> None:
    bom = "\ufeff"
    (trace,) = read_csv_trace(_tiny(tmp_path, bom + TINY_CSV), seed=0).traces
    assert trace.requests == 3
    llm = _tiny(tmp_path, bom + LLM + "0,10,10\n1,10,10\n", "llm.csv")
    assert read_azure_llm(llm, seed=0).traces[0].requests == 2
    root = _functions(tmp_path, inv=bom + INV, run=bom + RUN, mem=bom + MEM)
    assert [t.requests for t in read_azure_functions(root, seed=0).traces] == [4, 4]


@pytest.mark.parametrize(
    ("file", "message"),
    [
        ("run", r"functions_run\.csv:3: HashFunction f1 repeats line 2"),
        ("mem", r"functions_mem\.csv:3: HashApp a1 repeats line 2"),
        ("inv", r"functions_inv\.csv:3: HashFunction f1 repeats line 2"),
    ],
    ids=["run", "mem", "inv"],
)
def test_a_repeated_key_names_the_file_and_both_lines(
    tmp_path: Path, file: str, message: str
) -> None:
    texts = {"inv": INV, "run": RUN, "mem": MEM}
    texts[file] = texts[file].replace("f2,a2", "f1,a2") if file != "mem" else (
        MEM.replace("a2,o1", "a1,o1")
    )  # fmt: skip
    with pytest.raises(TraceError, match=message):
        read_azure_functions(_functions(tmp_path, **texts), seed=0)


def test_a_policy_given_twice_is_refused(
    tmp_path: Path, no_simulation: None, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--trace", str(_tiny(tmp_path)), "--format", "csv", "--out", str(tmp_path / "o")]
    assert _simulate(*argv, "--policies", "oracle", "knative-default", "oracle") == 2
    assert "--policies: oracle is given twice" in capsys.readouterr().err


@pytest.mark.parametrize("text", ["nan:5", "0:nan", "nan:nan", "inf:", "inf:inf"])
def test_minutes_must_be_numbers(text: str) -> None:
    with pytest.raises(ValueError, match="--minutes"):
        TraceSlice.parse_minutes(text)
    if "nan" in text:
        with pytest.raises(ValueError, match="A and B must be numbers"):
            TraceSlice.parse_minutes(text)


def test_a_slice_with_nan_minutes_is_refused() -> None:
    with pytest.raises(ValueError, match="need 0 <= start < end"):
        TraceSlice(minutes=(float("nan"), 5.0))


def test_blank_lines_in_the_functions_files_are_skipped(tmp_path: Path) -> None:
    def blanks(text: str) -> str:
        first, rest = text.split("\n", 1)
        return first + "\n\n" + rest.replace("\n", "\n\n") + "\n"

    root = _functions(tmp_path, inv=blanks(INV), run=blanks(RUN), mem=blanks(MEM))
    assert [t.requests for t in read_azure_functions(root, seed=0).traces] == [4, 4]


def test_one_csv_file_without_format_suggests_format(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trace = _tiny(tmp_path)
    assert _simulate("--trace", str(trace), "--out", str(tmp_path / "o")) == 2
    err = capsys.readouterr().err
    assert f"{trace}: not an Azure Functions trace directory" in err
    assert "--format azure-llm or --format csv" in err


def test_a_functions_file_stands_for_its_directory(tmp_path: Path) -> None:
    root = _functions(tmp_path)
    assert len(read_azure_functions(root / "functions_inv.csv", seed=0).traces) == 2
    with pytest.raises(TraceError, match="nope: not found"):
        read_azure_functions(tmp_path / "nope", seed=0)


@pytest.mark.parametrize("minutes", [(1, 3), (1.5, 4), (0, 2.5), (4, 5)])
def test_a_minute_window_has_the_whole_traces_draws(
    tmp_path: Path, minutes: tuple[float, float]
) -> None:
    inv = "HashFunction,HashApp,HashOwner,1,2,3,4,5\nf1,a1,o1,3,2,4,1,5\nf2,a2,o1,0,3,1,0,6\n"
    root = _functions(tmp_path, inv=inv)
    whole = read_azure_functions(root, seed=4)
    window = read_azure_functions(root, seed=4, slice_=TraceSlice(minutes=minutes))
    lo, hi = minutes[0] * 60, minutes[1] * 60
    for full, part in zip(whole.traces, window.traces, strict=True):
        keep = (full.arrivals_s >= lo) & (full.arrivals_s < hi)
        np.testing.assert_array_equal(part.arrivals_s, full.arrivals_s[keep] - lo)
        np.testing.assert_array_equal(part.service_s, full.service_s[keep])


def test_csv_functions_slice_keeps_the_files_time_origin(tmp_path: Path) -> None:
    trace = _tiny(tmp_path, "timestamp,model\n100,a\n0,b\n130,a\n200,b\n")
    (a,) = read_csv_trace(trace, seed=0, slice_=TraceSlice(functions=1)).traces
    assert a.arrivals_s.tolist() == [100.0, 130.0]
    window = read_csv_trace(trace, seed=0, slice_=TraceSlice(functions=1, minutes=(0, 1)))
    assert window.traces[0].requests == 0


def test_cold_start_help_names_the_default() -> None:
    from autoscaler.sim.model import DEFAULT_COLD_START_MEDIAN_S

    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    assert f"measured, {DEFAULT_COLD_START_MEDIAN_S} s" in parser.format_help()


@pytest.mark.parametrize(("minutes", "start"), [("0:", 0.0), ("0.25:inf", 0.25)])
def test_an_open_minute_range_records_the_end_that_was_read(
    tmp_path: Path, minutes: str, start: float
) -> None:
    out = tmp_path / "out"
    argv = ["--trace", str(_tiny(tmp_path)), "--format", "csv", "--minutes", minutes]
    assert _simulate(*argv, "--out", str(out)) == 0
    trace = json.loads((out / "results.json").read_text())["trace"]
    # the file's requests span 30 s: the window read ends at 31 s
    assert trace["slice"]["minutes"] == [start, 31 / 60]
    assert trace["duration_s"] == 31 - start * 60


def test_results_json_figures_known_before_the_run_are_checked_before_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_simulation: None,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    from autoscaler.sim import traces

    def endless(*args: Any, **kwargs: Any) -> Any:
        workload = read_csv_trace(*args, **kwargs)
        workload.duration_s = float("inf")
        return workload

    monkeypatch.setattr(traces, "read_csv_trace", endless)
    argv = ["--trace", str(_tiny(tmp_path)), "--format", "csv", "--out", str(tmp_path / "o")]
    assert _simulate(*argv) == 2
    assert "results.json: trace.duration_s is not a finite number" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("stamp", "unit"),
    [("1700000001263", "milliseconds"), ("1700000001263632", "microseconds"),
     ("1700000001263632128", "nanoseconds"), ("100000000000", "milliseconds"),
     ("-1e300", None), ("1e300", None)],
    ids=["ms", "us", "ns", "at-the-limit", "minus-huge", "huge"],
)  # fmt: skip
def test_csv_timestamps_that_can_only_be_a_finer_unit_are_refused(
    tmp_path: Path, stamp: str, unit: str | None
) -> None:
    said = f"looks like {unit} since the epoch" if unit else "is too large"
    with pytest.raises(TraceError, match=rf"log\.csv:3: timestamp '{stamp}' {said}: .* seconds"):
        read_csv_trace(_tiny(tmp_path, f"timestamp\n0\n{stamp}\n"), seed=0)


def test_llm_timestamps_that_can_only_be_a_finer_unit_are_refused(tmp_path: Path) -> None:
    path = _tiny(tmp_path, LLM + "1700000001263,10,10\n", "llm.csv")
    with pytest.raises(TraceError, match=r"llm\.csv:2: TIMESTAMP .* looks like milliseconds"):
        read_azure_llm(path, seed=0)


def test_epoch_seconds_below_the_limit_are_read() -> None:
    from autoscaler.sim.traces.timestamps import parse_timestamp

    assert parse_timestamp("99999999999") == 99999999999.0
    assert parse_timestamp("-1700000000.5") == -1700000000.5


@pytest.mark.parametrize(
    ("text", "line", "days"),
    [("timestamp\n0\n1e9\n", 3, "11,574 days from line 2's"),
     ("timestamp\n5e8\n-5e8\n1\n", 3, "11,574 days from line 2's"),
     ("timestamp\n2000-01-01\n2015-01-01\n", 3, "5,479 days from line 2's")],
    ids=["late", "early", "iso"],
)  # fmt: skip
def test_csv_timestamps_spanning_over_ten_years_name_the_line(
    tmp_path: Path, text: str, line: int, days: str
) -> None:
    message = rf"log\.csv:{line}: timestamp .* is {days}; a trace spans at most 3,650 days"
    with pytest.raises(TraceError, match=message):
        read_csv_trace(_tiny(tmp_path, text), seed=0)


def test_epoch_nanoseconds_stop_the_cli_before_the_run(
    tmp_path: Path, no_simulation: None, capsys: pytest.CaptureFixture[str]
) -> None:
    trace = _tiny(tmp_path, "timestamp\n1700000001263632128\n1700000003425477632\n")
    assert _simulate("--trace", str(trace), "--format", "csv", "--out", str(tmp_path / "o")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"{trace}:2: timestamp '1700000001263632128' looks like nanoseconds" in err


@pytest.mark.parametrize("reader", [read_csv_trace, read_azure_llm], ids=["csv", "azure-llm"])
def test_a_byte_that_is_not_utf8_names_its_line(tmp_path: Path, reader: Any) -> None:
    head = "timestamp\n" if reader is read_csv_trace else LLM
    row = "0\n" if reader is read_csv_trace else "2023-11-16 18:17:03,10,10\n"
    path = tmp_path / "log.csv"
    path.write_bytes((head + row * 5000).encode() + b"caf\xe9\n")
    with pytest.raises(TraceError, match=r"log\.csv:5002: not UTF-8: byte 0xe9 at byte 4 of"):
        reader(path, seed=0)


def test_a_functions_file_that_is_not_utf8_names_its_line(tmp_path: Path) -> None:
    root = _functions(tmp_path)
    (root / "functions_mem.csv").write_bytes(MEM.encode() + b"a3,\xff,1,1\n")
    with pytest.raises(TraceError, match=r"functions_mem\.csv:4: not UTF-8: byte 0xff"):
        read_azure_functions(root, seed=0)


def test_blank_lines_before_the_csv_header_are_skipped(tmp_path: Path) -> None:
    (trace,) = read_csv_trace(_tiny(tmp_path, "\n \n" + TINY_CSV), seed=0).traces
    assert trace.requests == 3
    with pytest.raises(TraceError, match=r"log\.csv:5: timestamp 'x' is not a time"):
        read_csv_trace(_tiny(tmp_path, "\n\ntimestamp\n0\nx\n"), seed=0)
    with pytest.raises(TraceError, match=r"log\.csv: empty file, expected a header"):
        read_csv_trace(_tiny(tmp_path, "\n\n"), seed=0)


def test_a_column_twice_in_the_csv_header_is_refused(tmp_path: Path) -> None:
    text = "timestamp,model,timestamp\n0,a,1\n"
    with pytest.raises(TraceError, match=r"log\.csv:1: column 'timestamp' is in the header twice"):
        read_csv_trace(_tiny(tmp_path, text), seed=0)


@pytest.mark.parametrize("reader", [read_csv_trace, read_azure_llm], ids=["csv", "azure-llm"])
def test_a_long_header_is_cut_short_in_the_error(
    tmp_path: Path, reader: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    inv = "HashFunction,HashApp,HashOwner," + ",".join(str(m) for m in range(1, 1441)) + "\n"
    path = _functions(tmp_path, inv=inv) / "functions_inv.csv"
    with pytest.raises(TraceError) as caught:
        reader(path, seed=0)
    message = str(caught.value)
    assert len(message) < 400 and "(1,443 columns)" in message
    if reader is read_csv_trace:
        assert "need a 'timestamp' column" in message and "--format azure-functions" in message


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [("--functions", "0", "--functions 0: must be >= 1"),
     ("--capacity", "0", "--capacity 0: must be >= 1"),
     ("--container-concurrency", "-1", "--container-concurrency -1: must be >= 0")],
    ids=["functions", "capacity", "container-concurrency"],
)  # fmt: skip
def test_option_errors_name_the_option(
    tmp_path: Path, option: str, value: str, message: str, no_simulation: None,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    argv = ["--trace", str(_tiny(tmp_path)), "--format", "csv", "--out", str(tmp_path / "o")]
    assert _simulate(*argv, f"{option}={value}") == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


@pytest.mark.parametrize("out", ["", " "])
def test_an_empty_out_is_refused(
    tmp_path: Path, out: str, monkeypatch: pytest.MonkeyPatch, no_simulation: None,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    trace = _tiny(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert _simulate("--trace", str(trace), "--format", "csv", "--out", out) == 2
    assert f"--out {out!r}: name a directory" in capsys.readouterr().err
    assert not (tmp_path / "results.json").exists()


@pytest.mark.parametrize(
    ("extra", "taken"),
    [(["--minutes", "0.1:0.2"], "--minutes 0.1:0.2"),
     (["--functions", "1", "--minutes", "0.6:1"], "--functions 1 --minutes 0.6:1")],
    ids=["minutes", "functions-and-minutes"],
)  # fmt: skip
def test_a_slice_without_requests_is_refused_before_the_run(
    tmp_path: Path, extra: list[str], taken: str, no_simulation: None,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    trace = _tiny(tmp_path, "timestamp,model\n0,a\n1,a\n50,b\n")
    argv = ["--trace", str(trace), "--format", "csv", "--out", str(tmp_path / "o"), *extra]
    assert _simulate(*argv) == 2
    err = capsys.readouterr().err
    assert f"{trace}: no requests in the slice ({taken}): nothing to simulate" in err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("value", ["nan", "inf", "0", "-1", "1e300"])
def test_memory_mb_is_a_bounded_positive_number(
    tmp_path: Path, value: str, no_simulation: None, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--trace", str(_tiny(tmp_path)), "--format", "csv", "--out", str(tmp_path / "o")]
    assert _simulate(*argv, f"--memory-mb={value}") == 2
    err = capsys.readouterr().err
    assert f"--memory-mb {float(value)}: must be a number of MB" in err
    assert "1,048,576 (1 TB)" in err and err.count("\n") == 1


def test_memory_mb_sets_every_models_memory_in_every_format(tmp_path: Path) -> None:
    csv_trace = read_csv_trace(_tiny(tmp_path), seed=0, memory_mb=2048.0)
    llm = _tiny(tmp_path, LLM + "2023-11-16 18:17:03,10,10\n", "llm.csv")
    llm_trace = read_azure_llm(llm, seed=0, memory_mb=2048.0)
    functions = read_azure_functions(_functions(tmp_path), seed=0, memory_mb=2048.0)
    for workload in (csv_trace, llm_trace, functions):
        assert {t.model.memory_mb for t in workload.traces} == {2048.0}
        assert workload.assumed["memory_mb"] == {"value": 2048.0, "source": "--memory-mb"}
    # without it, the trace's memory (azure-functions) or the reader's default
    (tmp_path / "b").mkdir()
    assert "memory_mb" not in read_azure_functions(_functions(tmp_path / "b"), seed=0).assumed
    assert read_csv_trace(_tiny(tmp_path), seed=0).traces[0].model.memory_mb == 512.0


def test_functions_memory_over_a_terabyte_is_refused(tmp_path: Path) -> None:
    root = _functions(tmp_path, mem=MEM.replace("a1,o1,10,256", "a1,o1,10,1e308"))
    with pytest.raises(TraceError, match=r"functions_mem\.csv:2: .* 0 to 1,048,576 \(1 TB\)"):
        read_azure_functions(root, seed=0)


def test_results_and_report_say_what_the_trace_did_not_give(tmp_path: Path) -> None:
    out = tmp_path / "out"
    argv = ["--trace", str(_tiny(tmp_path)), "--format", "csv", "--out", str(out)]
    assert _simulate(*argv, "--memory-mb", "300") == 0
    trace = json.loads((out / "results.json").read_text())["trace"]
    assert trace["assumed"] == {
        "service_s": {"value": 0.1, "source": "default"},
        "capacity": {"value": 4, "source": "default"},
        "memory_mb": {"value": 300.0, "source": "--memory-mb"},
    }
    report = (out / "report.md").read_text()
    assert "service time 0.1 s (the default)" in report
    assert "capacity 4 requests at once (the default; `--capacity` sets another)" in report
    assert "memory 300 MB (`--memory-mb`)" in report
    # a duration column gives the service time; azure-functions' capacity is per function
    timed = read_csv_trace(_tiny(tmp_path, "timestamp,duration_s\n0,1\n"), seed=0, capacity=2)
    assert "service_s" not in timed.assumed
    assert timed.assumed["capacity"] == {"value": 2, "source": "--capacity"}
    functions = read_azure_functions(_functions(tmp_path), seed=0)
    assert functions.assumed == {"capacity": {"value": None, "source": "name-hash"}}


def test_extra_csv_columns_are_ignored_and_named_in_a_note(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = "Timestamp,status,model,path\n0,200,a,/v1\n1,500,a,/v1\n30,200,b,/v2\n"
    trace = _tiny(tmp_path, text)
    out = tmp_path / "out"
    assert _simulate("--trace", str(trace), "--format", "csv", "--out", str(out)) == 0
    note = f"{trace}: columns ['status', 'path'] ignored"
    assert f"modelscale simulate: note: {note}" in capsys.readouterr().err
    doc = json.loads((out / "results.json").read_text())
    assert doc["trace"]["requests"] == 3 and doc["trace"]["models"] == 2
    assert [n.split(" (")[0] for n in doc["trace"]["notes"]] == [note]
    assert f"Note: {note}" in (out / "report.md").read_text()


def test_the_cold_start_plot_tells_every_policy_apart_in_a_legend(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from types import SimpleNamespace

    import matplotlib.figure

    from autoscaler.sim.fleet import LATENCY_CDF_PROBABILITIES
    from autoscaler.sim.report import write_plots

    names = ["knative-default", "oracle", "keepalive-10m", "modelscale-fixed-10m", "modelscale"]
    # the first two and the next two on the same point, as a run can put them
    points = [(1.0, 0.5), (1.0, 0.5), (3.0, 0.1), (3.0, 0.1), (2.0, 0.2)]
    runs = [
        SimpleNamespace(
            policy=name,
            figures=SimpleNamespace(idle_memory_mb_s=x * 1024 * 3600, cold_start_share=y),
            latency_quantiles_s=np.linspace(0.01, 1.0, LATENCY_CDF_PROBABILITIES.size),
            timelines={},
        )
        for name, (x, y) in zip(names, points, strict=True)
    ]
    figures: dict[str, Any] = {}
    save = matplotlib.figure.Figure.savefig

    def keep(fig: Any, fname: Any, *args: Any, **kwargs: Any) -> None:
        figures[Path(fname).name] = fig
        save(fig, fname, *args, **kwargs)

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", keep)
    write_plots(tmp_path, runs, 60.0)  # type: ignore[arg-type]
    (ax,) = figures["coldstarts_vs_memory.png"].axes
    legend = ax.get_legend()
    assert legend is not None and [t.get_text() for t in legend.get_texts()] == names
    assert not ax.texts  # no labels beside the points to overlap
    styles = {
        (tuple(c.get_edgecolor()[0]), c.get_paths()[0].vertices.tobytes()) for c in ax.collections
    }
    assert len(styles) == len(names)


def _read_any(tmp_path: Path, fmt: str, rows: list[str]) -> None:
    """Read ``rows`` as the data lines (line 2 on) of a file of ``fmt``."""
    if fmt == "csv":
        read_csv_trace(_tiny(tmp_path, "timestamp,model\n" + "".join(rows)), seed=0)
    elif fmt == "azure-llm":
        read_azure_llm(_tiny(tmp_path, LLM + "".join(rows), "llm.csv"), seed=0)
    else:
        read_azure_functions(_functions(tmp_path, mem=MEM.splitlines(True)[0] + "".join(rows)),
                             seed=0)  # fmt: skip


# one good data row for each format's file, and one with a stray quote opening a field
GOOD_ROW = {
    "csv": "5,a\n",
    "azure-llm": "2023-11-16 18:17:03,10,10\n",
    "functions": "a1,o1,10,256\n",
}
STRAY = {
    "csv": '"7,a\n',
    "azure-llm": '"2023-11-16 18:17:04,10,10\n',
    "functions": 'a2,"o1,10,128\n',
}
FILE = {"csv": r"log\.csv", "azure-llm": r"llm\.csv", "functions": r"functions_mem\.csv"}


@pytest.mark.parametrize("fmt", ["csv", "azure-llm", "functions"])
@pytest.mark.parametrize(
    ("after", "ends"),
    [
        ([], "the end of the file"),  # the quote is never closed: the file ends inside it
        (['8,a"\n'], "line 4"),  # closed on a later line, a quoted field holding a newline
        (['8"x,a\n', "9,a\n"], "line 4"),  # closed on a later line, then not a CSV field
    ],
    ids=["never-closed", "closed-later", "closed-then-text"],
)  # fmt: skip
def test_a_stray_quote_is_named_at_the_line_it_opens_on(
    tmp_path: Path, fmt: str, after: list[str], ends: str
) -> None:
    """Read as CSV, a '"' opening a field takes the lines after it into that field: the rows
    after it must not be swallowed (nor read as one request), whatever comes next."""
    rows = [GOOD_ROW[fmt], STRAY[fmt], *after, *[GOOD_ROW[fmt]] * 3]
    with pytest.raises(TraceError, match=rf"{FILE[fmt]}:3: a quoted field opened on this line "
                                         rf"runs on to {ends}") as info:  # fmt: skip
        _read_any(tmp_path, fmt, rows)
    assert len(str(info.value)) < 300


def test_quoted_fields_within_a_line_are_read(tmp_path: Path) -> None:
    w = read_csv_trace(_tiny(tmp_path, 'timestamp,model\n"0","a,b"\n1,"a,b"\n'), seed=0)
    assert [(t.model.name, t.requests) for t in w.traces] == [("a,b", 2)]


@pytest.mark.parametrize(
    ("fmt", "row", "message"),
    [
        ("csv", f"{'9' * 100_000},a\n", r"log\.csv:3: timestamp '9{40}'\.\.\. \(100,000 characters\) "),
        ("csv", f"5,a\n6,a,{'x' * 100_000}\n", r"log\.csv:4: 3 fields"),
        ("azure-llm", f"2023-11-16 18:17:04,{'1' * 100_000},5\n",
         r"llm\.csv:3: token counts '1{40}'\.\.\. \(100,000 characters\), '5' must be"),
        ("functions", f"a2,o1,10,{'7' * 100_000}\n",
         r"functions_mem\.csv:3: AverageAllocatedMb '7{40}'\.\.\. \(100,000 characters\) must"),
    ],
    ids=["timestamp", "extra-field", "tokens", "memory"],
)  # fmt: skip
def test_a_long_value_is_cut_short_in_the_error(
    tmp_path: Path, fmt: str, row: str, message: str
) -> None:
    with pytest.raises(TraceError, match=message) as info:
        _read_any(tmp_path, fmt, [GOOD_ROW[fmt], row])
    assert len(str(info.value)) < 400


@pytest.mark.parametrize(
    ("fmt", "row", "message"),
    [
        ("csv", "١٢٣,a\n", r"log\.csv:3: timestamp '١٢٣' is not a time"),
        ("csv", "1_000,a\n", r"log\.csv:3: timestamp '1_000' is not a time"),
        ("azure-llm", "2023-11-16 18:17:04,1_0,5\n", r"llm\.csv:3: token counts '1_0', '5' must"),
        ("azure-llm", "2023-11-16 18:17:04,10,٥\n", r"llm\.csv:3: token counts '10', '٥' must"),
        ("functions", "a2,o1,10,1_28\n", r"functions_mem\.csv:3: AverageAllocatedMb '1_28' is not"),
    ],
    ids=["arabic-digits", "underscore", "llm-underscore", "llm-arabic", "memory-underscore"],
)  # fmt: skip
def test_numbers_are_ascii_without_underscores(
    tmp_path: Path, fmt: str, row: str, message: str
) -> None:
    """Python's float and int read other scripts' digits and 1_000; a log's numbers are not."""
    with pytest.raises(TraceError, match=message):
        _read_any(tmp_path, fmt, [GOOD_ROW[fmt], row])


def test_csv_durations_are_ascii_without_underscores(tmp_path: Path) -> None:
    with pytest.raises(TraceError, match=r"log\.csv:3: duration '2_0' is not a number"):
        read_csv_trace(_tiny(tmp_path, "timestamp,duration_ms\n0,10\n1,2_0\n"), seed=0)


def test_the_last_line_names_the_out_paths_as_given(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A path is not markup and is not wrapped at the terminal's width (80 when not a TTY)."""
    out = tmp_path / "[red]runs" / ("x" * 90)
    assert _simulate("--trace", str(_tiny(tmp_path)), "--format", "csv", "--out", str(out)) == 0
    err = capsys.readouterr().err
    assert f"wrote {out / 'report.md'} and {out / 'results.json'} (" in err


def test_an_interrupt_exits_130_in_one_line_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(parallel, "run_policies", interrupted)
    out = tmp_path / "out"
    assert _simulate("--trace", str(_tiny(tmp_path)), "--format", "csv", "--out", str(out)) == 130
    err = capsys.readouterr().err
    assert err.strip() == f"modelscale simulate: interrupted; nothing written to {out}"
    assert not (out / "results.json").exists()


def test_replicas_are_plotted_on_the_traces_minutes() -> None:
    from autoscaler.sim.report import replica_steps

    ts, ns = replica_steps([(30.0, 1), (90.0, 0)], start_min=30.0, duration_s=300.0)
    assert ts == [30.0, 30.5, 31.5, 35.0] and ns == [0, 1, 0, 0]


def test_every_policy_draws_its_own_line() -> None:
    from autoscaler.sim.policies import POLICY_NAMES
    from autoscaler.sim.report import line_style

    styles = [line_style(i) for i in range(len(POLICY_NAMES))]
    assert len({(s["color"], str(s["linestyle"])) for s in styles}) == len(POLICY_NAMES)
    assert len({str(s["linestyle"]) for s in styles}) == len(POLICY_NAMES)


def test_a_model_without_requests_in_the_slice_is_not_plotted_as_busiest(
    tmp_path: Path,
) -> None:
    from autoscaler.sim.fleet import SimSettings, run_policy
    from autoscaler.sim.policies import make_policies

    # b's requests are all before the window
    text = "timestamp,model\n0,b\n1,b\n2,b\n120,a\n130,a\n"
    workload = read_csv_trace(_tiny(tmp_path, text), seed=0, slice_=TraceSlice(minutes=(1, 3)))
    assert [(t.model.name, t.requests) for t in workload.traces] == [("b", 0), ("a", 2)]
    (policy,) = make_policies(["knative-default"], 1.5)
    run = run_policy(workload, policy, SimSettings())
    assert list(run.timelines) == ["a"]


def test_a_reused_out_keeps_only_this_runs_replica_plots(tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = _tiny(tmp_path, "timestamp,model\n0,old\n1,old\n", "first.csv")
    second = _tiny(tmp_path, "timestamp,model\n0,new\n1,new\n", "second.csv")
    keep = out / "notes.txt"
    for trace in (first, second):
        assert _simulate("--trace", str(trace), "--format", "csv", "--out", str(out)) == 0
        keep.write_text("mine")
    assert [p.name for p in out.glob("replicas_*.png")] == [plot_name("new")]
    assert keep.read_text() == "mine"


@pytest.mark.parametrize(
    ("fmt", "minutes", "message"),
    [
        ("csv", "5:10", r"log\.csv: minute range 5:10 is past the trace's end \(0\.5 minutes\)$"),
        ("csv", "2.5:", r"log\.csv: minute range 2\.5: is past the trace's end"),
        ("functions", "9:12", r"functions_inv\.csv: minute range 9:12 is outside 0:5$"),
    ],
    ids=["csv", "open-end", "functions"],
)  # fmt: skip
def test_a_minute_range_past_the_end_is_named_as_given(
    tmp_path: Path, fmt: str, minutes: str, message: str
) -> None:
    a, b = TraceSlice.parse_minutes(minutes)
    slice_ = TraceSlice(minutes=(a, b))
    with pytest.raises(TraceError, match=message):
        if fmt == "csv":
            read_csv_trace(_tiny(tmp_path), seed=0, slice_=slice_)
        else:
            read_azure_functions(_functions(tmp_path), seed=0, slice_=slice_)


def test_the_report_counts_in_words(tmp_path: Path) -> None:
    out = tmp_path / "out"
    trace = _tiny(tmp_path, "timestamp,model\n0,a\n20,a\n")
    assert _simulate("--trace", str(trace), "--format", "csv", "--out", str(out)) == 0
    report = (out / "report.md").read_text()
    assert "(csv), 1 model, 2 requests over 21 seconds;" in report


@pytest.mark.parametrize(
    ("argv", "value", "sentence"),
    [
        ([], 0, "containerConcurrency: 0 (no limit; `--container-concurrency` sets one)."),
        (["--container-concurrency", "3"], 3, "containerConcurrency: 3 (`--container-concurrency`)."),
    ],
    ids=["default", "given"],
)  # fmt: skip
def test_results_and_report_record_the_container_concurrency(
    tmp_path: Path, argv: list[str], value: int, sentence: str
) -> None:
    out = tmp_path / "out"
    trace = _tiny(tmp_path)
    assert _simulate("--trace", str(trace), "--format", "csv", "--out", str(out), *argv) == 0
    settings = json.loads((out / "results.json").read_text())["settings"]
    assert settings["container_concurrency"] == value
    assert sentence in (out / "report.md").read_text()
