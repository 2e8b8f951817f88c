"""Benchmark: what any per-model keep-alive could reach on the Azure Functions day.

The simulator's aim against the fixed 10-minute keep-alive asks for half its 75th-percentile
cold-start share per model with no more idle memory. This prints how far a keep-alive of K
seconds after each request, K chosen per model, can go, in a model simpler than the
simulator's (one replica, there from 0 as the simulator's revision starts with one; an idle
period, from the end of the last request in flight to the next arrival, longer than K ends in
a cold start; idle memory is the model's MB times the part of each idle period kept warm,
after the last request included, and the cold starts' time):

1. the fixed 10 minutes for every model, against which the others are read;
2. with hindsight (each model's K chosen knowing its whole day): the least idle memory at
   which the p75 cold-start share is half the fixed keep-alive's: which models to give up on
   and which K gets each of the others under the line (and the same on the second half);
3. learned from the first half of the day: each model's K the cheapest that puts its first
   half under the line (unless that costs over ``B`` times the fixed keep-alive's memory on
   its first half: then the cheapest K), applied to the second half; the second half's p75
   and memory against the fixed keep-alive's there, for a few ``B``. The second half starts
   with the replica the first half left (kept or let go under the same K).

Arrivals are the simulator's (per-minute counts as a seeded Poisson process within each
minute). Traces are read from ``$MODELSCALE_SHARED/traces`` (default ``<repo>/../shared/traces``)::

    .venv/bin/python bench/keepalive_bound.py [--functions N] [--seed S]
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from autoscaler.sim.model import DEFAULT_COLD_START_MEDIAN_S
from autoscaler.sim.traces import ModelTrace, TraceError, TraceSlice, read_azure_functions

REPO = Path(__file__).resolve().parents[1]
FIXED_S = 600.0
# Knative's floor (60 s window + 30 s grace) up to its 1 h retention limit and the window
KEEP_ALIVES_S = np.unique(np.concatenate((np.geomspace(90.0, 3660.0, 40), [FIXED_S])))
BUDGETS = (1.0, 4.0, 16.0, np.inf)


@dataclass(frozen=True)
class Options:
    """One model's cold-start share and idle memory (MB·s) for each keep-alive."""

    share: np.ndarray
    memory: np.ndarray


def options(
    trace: ModelTrace,
    start_s: float,
    end_s: float,
    keep_alives_s: np.ndarray = KEEP_ALIVES_S,
    cold_start_s: float = DEFAULT_COLD_START_MEDIAN_S,
) -> Options | None:
    """The model's requests that arrive in ``[start_s, end_s)`` under each keep-alive, and
    the idle memory within that window (None: no request there).

    The revision is made at 0 with one replica, as the simulator's (Knative's initial scale):
    that counts as a request ending at 0. Requests before ``start_s`` are not counted but
    keep the replica as they would: a window's first request is cold only if the replica
    was let go before it came."""
    order = np.argsort(trace.arrivals_s, kind="stable")
    arrivals = trace.arrivals_s[order]
    # when the replica is free again after each request (requests overlap), from 0 on
    free = np.maximum.accumulate(np.concatenate(([0.0], arrivals + trace.service_s[order])))
    inside = np.nonzero((arrivals >= start_s) & (arrivals < end_s))[0]
    if inside.size == 0:
        return None
    before = free[inside]  # the replica free since, when each request comes
    idle = np.maximum(arrivals[inside] - before, 0.0)
    k = keep_alives_s[:, None]
    cold = (idle[None, :] > k).sum(axis=1)
    # the part of each idle period kept warm, and of the time after the last request, that
    # lies in the window
    last = free[inside[-1] + 1]
    kept_from = np.concatenate((before, [last]))
    kept_for = np.hstack((np.minimum(idle[None, :], k), k))
    lo = np.maximum(kept_from, start_s)
    hi = np.minimum(kept_from[None, :] + kept_for, end_s)
    warm = np.maximum(hi - lo[None, :], 0.0).sum(axis=1)
    memory = trace.model.memory_mb * (warm + cold * cold_start_s)
    return Options(cold / inside.size, memory)


def p75(shares: np.ndarray) -> float:
    return float(np.percentile(shares, 75))


def hindsight_memory(models: list[Options], line: float) -> float:
    """The least idle memory at which the p75 of the models' cold-start shares is at most
    ``line``: the models cheapest to get under it (the extra memory their cheapest keep-alive
    under it costs) at that keep-alive, the rest at their cheapest. Infinite when too few
    models can get under it at all."""
    at_cheapest = [int(m.memory.argmin()) for m in models]
    cheapest = np.array([m.memory[i] for m, i in zip(models, at_cheapest, strict=True)])
    share = np.array([m.share[i] for m, i in zip(models, at_cheapest, strict=True)])
    masked = [np.where(m.share <= line, m.memory, np.inf) for m in models]
    best = [int(x.argmin()) for x in masked]
    under = np.array([x[i] for x, i in zip(masked, best, strict=True)])
    order = np.argsort(under - cheapest, kind="stable")
    memory = float(cheapest.sum())
    for i in order[np.isfinite(under[order])]:  # those under at their cheapest add nothing
        if p75(share) <= line:
            return memory
        memory += float(under[i] - cheapest[i])
        share[i] = models[i].share[best[i]]
    return memory if p75(share) <= line else math.inf


def hindsight_row(models: list[Options], line: float, fixed_memory: float) -> tuple[str, ...]:
    bound = hindsight_memory(models, line)
    memory = (
        (f"{bound:.4g}", f"{bound / fixed_memory:.3g}") if np.isfinite(bound) else ("none", "-")
    )
    return (f"<= {line:.4f}", "0.5", *memory)


def learned_from_first_half(
    first: list[Options | None], second: list[Options], line: float, fixed: int, budget: float
) -> tuple[np.ndarray, float]:
    """Each model's keep-alive chosen on its first half (see the module's item 3), read on
    its second half: the shares and the idle memory."""
    shares, memory = [], 0.0
    for a, b in zip(first, second, strict=True):
        if a is None:  # nothing seen before: the fixed keep-alive
            k = fixed
        else:
            cheapest = int(a.memory.argmin())
            ok = np.nonzero(a.share <= line)[0]
            k = cheapest
            if ok.size:
                best = int(ok[a.memory[ok].argmin()])
                if a.memory[best] - a.memory[cheapest] <= budget * a.memory[fixed]:
                    k = best
        shares.append(b.share[k])
        memory += float(b.memory[k])
    return np.array(shares), memory


def at_least(least: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < least:
            raise argparse.ArgumentTypeError(f"{value} must be >= {least}")
        return value

    return parse


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--functions", type=at_least(1), help="only the first N functions")
    parser.add_argument("--seed", type=at_least(0), default=0)
    args = parser.parse_args()
    shared = Path(os.environ.get("MODELSCALE_SHARED", REPO / ".." / "shared")).resolve()
    path = shared / "traces" / "azure_functions_2019"
    if not path.exists():
        print(
            f"keepalive_bound.py: trace not found: {path} (traces are read from "
            "$MODELSCALE_SHARED/traces, default <repo>/../shared/traces)",
            file=sys.stderr,
        )
        return 2
    try:
        workload = read_azure_functions(
            path, seed=args.seed, slice_=TraceSlice(functions=args.functions)
        )
    except (TraceError, FileNotFoundError) as exc:
        print(f"keepalive_bound.py: {exc}", file=sys.stderr)
        return 2
    console = Console(width=160)
    fixed = int(np.argmin(np.abs(KEEP_ALIVES_S - FIXED_S)))
    day = workload.duration_s
    models = [o for t in workload.traces if (o := options(t, 0.0, day)) is not None]
    shares = np.array([m.share[fixed] for m in models])
    fixed_p75, fixed_memory = p75(shares), sum(float(m.memory[fixed]) for m in models)
    line = fixed_p75 / 2
    table = Table(title=f"{len(models)} functions, seed {args.seed}: keep-alive per model")
    for head in ("policy", "p75 cold share", "vs fixed", "idle MB·s", "vs fixed"):
        table.add_column(head, justify="left" if head == "policy" else "right")
    table.add_row("fixed 10 min, whole day", f"{fixed_p75:.4f}", "1", f"{fixed_memory:.4g}", "1")
    table.add_row("hindsight, whole day", *hindsight_row(models, line, fixed_memory))
    half = day / 2
    pairs = [(options(t, 0.0, half), options(t, half, day)) for t in workload.traces]
    first = [a for a, b in pairs if b is not None]
    second = [b for _, b in pairs if b is not None]
    second_shares = np.array([b.share[fixed] for b in second])
    second_p75 = p75(second_shares)
    second_memory = sum(float(b.memory[fixed]) for b in second)
    line2 = second_p75 / 2
    table.add_row(
        "fixed 10 min, second half", f"{second_p75:.4f}", "1", f"{second_memory:.4g}", "1"
    )
    for budget in BUDGETS:
        s, m = learned_from_first_half(first, second, line2, fixed, budget)
        table.add_row(
            f"learned on the first half (B {budget:g}), second half",
            f"{p75(s):.4f}",
            f"{p75(s) / second_p75:.3g}",
            f"{m:.4g}",
            f"{m / second_memory:.3g}",
        )
    table.add_row("hindsight, second half", *hindsight_row(second, line2, second_memory))
    console.print(table)
    console.print(f"arrivals: {workload.arrival_note}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
