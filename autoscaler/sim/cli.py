"""``modelscale simulate``: replay a trace through the KPA and the tuner, compare policies.

Imports stay light here (numpy and matplotlib load inside ``run``) so ``modelscale --help``
stays fast.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from pathlib import Path

from autoscaler.sim.policies import POLICY_NAMES

DEFAULT_POLICIES = POLICY_NAMES


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--trace", required=True, type=Path, help="trace file or directory")
    parser.add_argument(
        "--format",
        choices=("azure-functions", "azure-llm", "csv"),
        default="azure-functions",
        help="trace format (default: azure-functions)",
    )
    parser.add_argument(
        "--policies",
        nargs="+",
        default=list(DEFAULT_POLICIES),
        metavar="POLICY",
        help=f"policies to compare (default: all: {' '.join(DEFAULT_POLICIES)})",
    )
    parser.add_argument("--functions", type=int, help="only the first N functions (models)")
    parser.add_argument("--minutes", help="only minutes A:B of the trace (B excluded)")
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of every random draw (an integer >= 0)"
    )
    parser.add_argument("--capacity", type=int, help="one capacity (requests/replica) for all")
    parser.add_argument(
        "--memory-mb",
        type=float,
        help="one memory (MB per replica) for all, for the idle-memory figure (default: csv "
        "512, azure-llm 16384; azure-functions: each function's from functions_mem.csv, "
        "which this replaces)",
    )
    parser.add_argument(
        "--container-concurrency", type=int, default=0, help="containerConcurrency (0: none)"
    )
    parser.add_argument(
        "--cold-start-s",
        type=float,
        help="median cold start, seconds (default: one-machine mode's measured, 0.1 s; "
        "pass a cluster's own)",
    )
    parser.add_argument(
        "--engine", choices=("auto", "exact", "fluid"), default="auto", help="engine per revision"
    )
    parser.add_argument(
        "--tuner-concurrency",
        choices=("time-weighted", "completions"),
        default="time-weighted",
        help="how the tuner's metrics source counts concurrency: time-weighted (the Prometheus "
        "source, from the Knative autoscaler's gauge; the direct scrape, from its samples "
        "between ticks; default) or completions (the direct scrape with sampling off: a "
        "finished request's whole time at its finish)",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        help="worker processes (default: the CPU count; results are the same for any number)",
    )
    parser.add_argument("--out", required=True, help="directory for the report")


def prepare_out(out: Path) -> str | None:
    """Make the ``--out`` directory and check it takes files; the problem, or None.

    Run before the simulation, so a bad ``--out`` fails at once rather than after the run.
    """
    if out.exists() and not out.is_dir():
        return f"--out {out}: not a directory"
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as exc:
        return f"--out {out}: cannot write there: {exc.strerror or exc}"
    return None


def run(args: argparse.Namespace) -> int:
    import time

    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from autoscaler.sim.fleet import SimSettings
    from autoscaler.sim.model import MAX_MEMORY_MB, MAX_SERVICE_S, ColdStart
    from autoscaler.sim.parallel import run_policies
    from autoscaler.sim.policies import make_policies
    from autoscaler.sim.report import check_finite, results_document, write_report
    from autoscaler.sim.traces import (
        TraceError,
        TraceSlice,
        read_azure_functions,
        read_azure_llm,
        read_csv_trace,
    )

    console = Console(stderr=True)
    if args.jobs is not None and args.jobs < 1:
        print(f"modelscale simulate: --jobs {args.jobs}: must be >= 1", file=sys.stderr)
        return 2
    if args.seed < 0:
        print(f"modelscale simulate: --seed {args.seed}: must be >= 0", file=sys.stderr)
        return 2
    if not args.out.strip():
        # Path("") is the current directory: a report there by accident, mixed with other files
        print(
            f"modelscale simulate: --out {args.out!r}: name a directory ('.' for this one)",
            file=sys.stderr,
        )
        return 2
    out = Path(args.out)
    for option, value, least in (
        ("--functions", args.functions, 1),
        ("--capacity", args.capacity, 1),
        ("--container-concurrency", args.container_concurrency, 0),
    ):
        if value is not None and value < least:
            zero = " (0: no limit)" if least == 0 else ""
            print(
                f"modelscale simulate: {option} {value}: must be >= {least}{zero}", file=sys.stderr
            )
            return 2
    if args.memory_mb is not None and not (0 < args.memory_mb <= MAX_MEMORY_MB):  # NaN fails
        print(
            f"modelscale simulate: --memory-mb {args.memory_mb}: must be a number of MB, more "
            f"than 0 and at most {MAX_MEMORY_MB:,.0f} (1 TB)",
            file=sys.stderr,
        )
        return 2
    if args.cold_start_s is not None and not (
        math.isfinite(args.cold_start_s) and 0 <= args.cold_start_s <= MAX_SERVICE_S
    ):
        print(
            f"modelscale simulate: --cold-start-s {args.cold_start_s}: must be a number of "
            f"seconds, 0 to {MAX_SERVICE_S:g} (a day)",
            file=sys.stderr,
        )
        return 2
    try:
        minutes = TraceSlice.parse_minutes(args.minutes) if args.minutes else None
        slice_ = TraceSlice(functions=args.functions, minutes=minutes)
        cold = (
            ColdStart(median_s=args.cold_start_s) if args.cold_start_s is not None else ColdStart()
        )
        settings = SimSettings(
            cold_start=cold, engine=args.engine, tuner_concurrency=args.tuner_concurrency
        )
        policies = make_policies(args.policies, cold.median_s)
        reader = {
            "azure-functions": read_azure_functions,
            "azure-llm": read_azure_llm,
            "csv": read_csv_trace,
        }[args.format]
        workload = reader(
            args.trace,
            seed=args.seed,
            slice_=slice_,
            capacity=args.capacity,
            container_concurrency=args.container_concurrency,
            memory_mb=args.memory_mb,
        )
    except (TraceError, ValueError) as exc:
        print(f"modelscale simulate: {exc}", file=sys.stderr)
        return 2

    for note in workload.notes:
        print(f"modelscale simulate: note: {note}", file=sys.stderr)
    if workload.requests == 0:
        taken = " ".join(
            f"{option} {value}"
            for option, value in (("--functions", args.functions), ("--minutes", args.minutes))
            if value is not None
        )
        print(
            f"modelscale simulate: {args.trace}: no requests in the slice ({taken}): "
            "nothing to simulate",
            file=sys.stderr,
        )
        return 2

    try:
        # what results.json takes from the trace and the options, checked before the run
        check_finite(results_document(workload, [], settings, args.format, slice_))
    except ValueError as exc:
        print(f"modelscale simulate: {exc}", file=sys.stderr)
        return 2

    problem = prepare_out(out)
    if problem is not None:
        print(f"modelscale simulate: {problem}", file=sys.stderr)
        return 2

    started = time.perf_counter()
    progress = Progress(
        TextColumn("{task.description:<18}"),
        BarColumn(),
        TextColumn("{task.completed:,.0f}/{task.total:,.0f} requests"),
        TimeElapsedColumn(),
        console=console,
    )
    tasks = [progress.add_task(p.name, total=max(1, workload.requests)) for p in policies]

    def advance(policy_index: int, n: int) -> None:
        progress.advance(tasks[policy_index], n)

    try:
        # the display's refresh thread starts only once the workers are forked
        runs = run_policies(
            workload, policies, settings, jobs=args.jobs, progress=advance, on_pool=progress.start
        )
    except KeyboardInterrupt:
        progress.stop()
        print(f"modelscale simulate: interrupted; nothing written to {out}", file=sys.stderr)
        return 130
    finally:
        progress.stop()
    wall = time.perf_counter() - started
    document = results_document(workload, runs, settings, args.format, slice_)
    try:
        write_report(out, document, runs, workload, wall)
    except OSError as exc:
        print(
            f"modelscale simulate: --out {out}: writing the report failed: {exc}",
            file=sys.stderr,
        )
        return 1
    except ValueError as exc:
        print(f"modelscale simulate: {exc}", file=sys.stderr)
        return 1
    # a path is not markup, and stays one line whatever the terminal's width
    console.print(
        f"wrote {out / 'report.md'} and {out / 'results.json'} ({wall:.1f} s)",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    return 0
