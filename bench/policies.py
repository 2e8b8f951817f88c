"""Benchmark: every policy on the 600-function Azure Functions day and on the Azure LLM trace.

Runs the baselines and modelscale side by side in one run, prints each policy's figures,
modelscale's ratio to each baseline and the wall time per policy. Traces are read from
``$MODELSCALE_SHARED/traces`` (default ``<repo>/../shared/traces``); a missing one is named on
one line, exit code 2::

    .venv/bin/python bench/policies.py [--functions N] [--minutes A:B] [--seed S]
                                       [--policies ...] [--skip-llm] [--skip-functions]
                                       [--jobs N] [--tuner-concurrency {time-weighted,completions}]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from autoscaler.sim.fleet import TUNER_CONCURRENCY, SimSettings
from autoscaler.sim.parallel import default_jobs, run_policies
from autoscaler.sim.policies import POLICY_NAMES, make_policies
from autoscaler.sim.results import RATIO_KEYS, aims, ratios
from autoscaler.sim.traces import (
    TraceError,
    TraceSlice,
    Workload,
    read_azure_functions,
    read_azure_llm,
)

REPO = Path(__file__).resolve().parents[1]
SHOWN = (
    ("within_objective_share", "within obj."),
    ("latency_p50_s", "p50 s"),
    ("latency_p99_s", "p99 s"),
    ("latency_p999_s", "p99.9 s"),
    ("cold_start_share", "cold"),
    ("cold_start_share_p75_per_model", "p75 cold/model"),
    ("replica_seconds", "replica·s"),
    ("idle_memory_mb_s", "idle MB·s"),
    ("scaling_changes", "changes"),
)


FUNCTIONS_TRACE = Path("traces") / "azure_functions_2019"
LLM_TRACE = Path("traces") / "AzureLLMInferenceTrace_code.csv"


def shared() -> Path:
    return Path(os.environ.get("MODELSCALE_SHARED", REPO / ".." / "shared")).resolve()


def missing_trace(paths: list[Path]) -> str | None:
    """The one-line error for the first trace in ``paths`` that is not there (None: all are)."""
    for path in paths:
        if not path.exists():
            return (
                f"policies.py: trace not found: {path} (traces are read from "
                "$MODELSCALE_SHARED/traces, default <repo>/../shared/traces; set "
                "MODELSCALE_SHARED to the directory that holds traces/)"
            )
    return None


def compare(
    console: Console,
    title: str,
    workload: Workload,
    names: list[str],
    seed: int,
    jobs: int,
    *,
    show_aims: bool = True,
    tuner_concurrency: str = TUNER_CONCURRENCY[0],
) -> None:
    settings = SimSettings(tuner_concurrency=tuner_concurrency)
    policies = make_policies(names, settings.cold_start.median_s)
    started = time.perf_counter()
    runs = run_policies(workload, policies, settings, jobs=jobs)
    wall = time.perf_counter() - started
    figures = {run.policy: run.figures for run in runs}
    walls = {run.policy: run.compute_s for run in runs}
    for name, seconds in walls.items():
        console.print(f"  {name}: {seconds:.1f} CPU s")
    table = Table(
        title=f"{title}: {len(workload.traces)} models, {workload.requests:,} requests, seed {seed}"
    )
    table.add_column("policy")
    for _, head in SHOWN:
        table.add_column(head, justify="right")
    table.add_column("CPU s", justify="right")
    for name, f in figures.items():
        d = f.as_dict()
        table.add_row(name, *[f"{d[k]:.4g}" for k, _ in SHOWN], f"{walls[name]:.1f}")
    console.print(table)
    r = ratios(figures)
    if r:
        rt = Table(title="modelscale / baseline")
        rt.add_column("baseline")
        for k in RATIO_KEYS:
            rt.add_column(k, justify="right")
        for base, values in r.items():
            rt.add_row(
                base, *["n/a" if values[k] is None else f"{values[k]:.3g}" for k in RATIO_KEYS]
            )
        console.print(rt)
    if r and show_aims:
        at = Table(title="aims of item 7 (functions trace): value <= limit")
        for head in ("aim", "value", "limit", "met"):
            at.add_column(head, justify="left" if head == "aim" else "right")
        for aim in aims(figures):
            value = "n/a" if aim.value is None else f"{aim.value:.3g}"
            at.add_row(aim.name, value, f"{aim.limit:g}", "yes" if aim.met else "NO")
        console.print(at)
    total = sum(walls.values())
    console.print(
        f"wall: {wall:.1f} s for {len(walls)} policies in {jobs} process(es); CPU "
        f"{total:.1f} s ({total / max(1, len(walls)):.1f} s per policy)"
    )
    console.print(f"arrivals: {workload.arrival_note}")
    console.print(f"trace: {workload.citation}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--functions", type=int)
    parser.add_argument("--minutes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--policies", nargs="+", default=list(POLICY_NAMES))
    parser.add_argument("--skip-llm", action="store_true")
    parser.add_argument("--skip-functions", action="store_true")
    parser.add_argument(
        "--jobs", type=int, default=default_jobs(), help="worker processes (default: CPU count)"
    )
    parser.add_argument(
        "--tuner-concurrency",
        choices=TUNER_CONCURRENCY,
        default=TUNER_CONCURRENCY[0],
        help="how the tuner's metrics source counts concurrency (see SimSettings)",
    )
    args = parser.parse_args()
    console = Console(width=200)
    minutes = TraceSlice.parse_minutes(args.minutes) if args.minutes else None
    slice_ = TraceSlice(functions=args.functions, minutes=minutes)
    wanted = [] if args.skip_functions else [shared() / FUNCTIONS_TRACE]
    wanted += [] if args.skip_llm else [shared() / LLM_TRACE]
    problem = missing_trace(wanted)
    if problem is not None:  # before any run: a missing second trace must not cost the first
        print(problem, file=sys.stderr)
        return 2
    try:
        return run(args, console, slice_, minutes)
    except TraceError as exc:
        print(f"policies.py: {exc}", file=sys.stderr)
        return 2


def run(
    args: argparse.Namespace,
    console: Console,
    slice_: TraceSlice,
    minutes: tuple[float, float] | None,
) -> int:
    if not args.skip_functions:
        w = read_azure_functions(shared() / FUNCTIONS_TRACE, seed=args.seed, slice_=slice_)
        compare(
            console,
            "Azure Functions 2019",
            w,
            args.policies,
            args.seed,
            args.jobs,
            tuner_concurrency=args.tuner_concurrency,
        )
    if not args.skip_llm:
        llm = read_azure_llm(
            shared() / LLM_TRACE,
            seed=args.seed,
            slice_=TraceSlice(minutes=minutes),
        )
        compare(
            console,
            "Azure LLM inference 2023 (code)",
            llm,
            args.policies,
            args.seed,
            args.jobs,
            show_aims=False,  # the aims are set on the functions trace
            tuner_concurrency=args.tuner_concurrency,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
