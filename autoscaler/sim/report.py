"""What a simulation writes: ``results.json``, ``report.md`` and the PNG plots beside it.

The layout of ``results.json`` is documented in ``autoscaler.sim.results``. The report holds the
table of figures per policy, modelscale's ratios to each baseline, how arrivals were made, the
trace's citation and the plots: cold-start share against wasted memory for every policy
(``coldstarts_vs_memory.png``), latency CDFs (``latency_cdf.png``) and replicas over time for
the busiest models (``replicas_<slug>-<hash>.png``, ``plot_name``: model names are free text).
Plots use matplotlib's Agg backend (no display).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from autoscaler.sim.fleet import LATENCY_CDF_PROBABILITIES, PolicyRun, SimSettings
from autoscaler.sim.model import DEFAULT_OBJECTIVE_FLOOR_S, DEFAULT_OBJECTIVE_SLOWDOWN
from autoscaler.sim.results import SCHEMA, ratios
from autoscaler.sim.revision import KPA_TICK_S
from autoscaler.sim.traces.workload import TraceSlice, Workload


def results_document(
    workload: Workload,
    runs: Sequence[PolicyRun],
    settings: SimSettings,
    trace_format: str,
    slice_: TraceSlice,
) -> dict[str, Any]:
    """The ``results.json`` content (deterministic: no wall-clock figures).

    ``trace.slice.minutes`` is the window as the reader resolved it: an open end (``A:``,
    ``A:inf``) or one past the trace's end is the end of what was read, so every figure is finite.
    """
    figures = {r.policy: r.figures for r in runs}
    # every model's, from --container-concurrency (None if the workload's models differ)
    limits = {t.model.container_concurrency for t in workload.traces}
    container_concurrency = limits.pop() if len(limits) == 1 else None
    minutes = None
    if slice_.minutes is not None:
        start = slice_.minutes[0]
        minutes = [start, (start * 60.0 + workload.duration_s) / 60.0]
    return {
        "schema": SCHEMA,
        "seed": workload.seed,
        "trace": {
            "format": trace_format,
            "source": workload.source,
            "arrival_note": workload.arrival_note,
            "citation": workload.citation,
            "duration_s": workload.duration_s,
            "models": len(workload.traces),
            "requests": workload.requests,
            "assumed": workload.assumed,
            "notes": workload.notes,
            "slice": {
                "functions": slice_.functions,
                "minutes": minutes,
            },
        },
        "settings": {
            "cold_start_median_s": settings.cold_start.median_s,
            "cold_start_sigma": settings.cold_start.sigma,
            "container_concurrency": container_concurrency,
            "engine": settings.engine,
            "tuner_concurrency": settings.tuner_concurrency,
            "fluid_min_rps": settings.fluid_min_rps,
            "kpa_tick_s": KPA_TICK_S,
            "objective_slowdown": DEFAULT_OBJECTIVE_SLOWDOWN,
            "objective_floor_s": DEFAULT_OBJECTIVE_FLOOR_S,
        },
        "policies": {name: f.as_dict() for name, f in figures.items()},
        "ratios": ratios(figures),
    }


def non_finite(value: Any, where: str = "") -> str | None:
    """The key path (``trace.slice.minutes[1]``) of the first NaN or infinity in ``value``."""
    if isinstance(value, float) and not math.isfinite(value):
        return where or "the document"
    if isinstance(value, dict):
        for k, v in value.items():
            found = non_finite(v, f"{where}.{k}" if where else str(k))
            if found is not None:
                return found
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            found = non_finite(v, f"{where}[{i}]")
            if found is not None:
                return found
    return None


def check_finite(document: dict[str, Any]) -> None:
    """Raise ``ValueError`` naming the first key of ``document`` that is NaN or infinite.

    ``results.json`` is strict JSON; the CLI checks the trace and settings before the run and
    the whole document before writing anything.
    """
    where = non_finite(document)
    if where is not None:
        raise ValueError(
            f"results.json: {where} is not a finite number (NaN or infinity); nothing written"
        )


def _fmt(v: Any) -> str:
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        return f"{v:.4g}"
    return "n/a" if v is None else str(v)


TABLE_COLUMNS = (
    ("within_objective_share", "within objective"),
    ("latency_p50_s", "p50 s"),
    ("latency_p99_s", "p99 s"),
    ("latency_p999_s", "p99.9 s"),
    ("cold_start_share", "cold starts"),
    ("cold_start_share_p75_per_model", "p75 per-model cold"),
    ("replica_seconds", "replica·s"),
    ("idle_memory_mb_s", "idle MB·s"),
    ("scaling_changes", "scaling changes"),
)


# A plot's file name holds at most this many characters of its model's name.
PLOT_SLUG_CHARS = 40


def plot_name(model: str) -> str:
    """A safe, unique file name for a model's replicas plot.

    The model name's letters, digits, ``.``, ``_`` and ``-`` (other runs of characters become
    one ``-``; at most ``PLOT_SLUG_CHARS``) and 8 hex digits of its SHA-256, so names that
    slug alike (or differ only in case) still get their own files. The plot's title keeps the
    real name.
    """
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", model).strip(".-")[:PLOT_SLUG_CHARS].rstrip(".-")
    digest = hashlib.sha256(model.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"replicas_{slug or 'model'}-{digest}.png"


# Markers of the cold-starts plot, one a policy (with tab10's colours)
POLICY_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">")
# Line styles of the latency and replica plots, one a policy: policies that decide alike draw
# the same curve, and a later solid line would hide an earlier one of the same course
POLICY_LINES = ("-", "--", ":", "-.", (0, (5, 1, 1, 1, 1, 1)), (0, (1, 3)), (0, (8, 3)))


def line_style(i: int) -> dict[str, Any]:
    """The ``i``-th policy's curve: its colour and dash, the later ones narrower, so curves
    drawn over each other stay apart."""
    import matplotlib.pyplot as plt

    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]  # tab10's
    return {
        "color": colours[i % len(colours)],
        "linestyle": POLICY_LINES[i % len(POLICY_LINES)],
        "linewidth": max(0.8, 2.2 - 0.2 * i),
    }


def replica_steps(
    timeline: list[tuple[float, int]], start_min: float, duration_s: float
) -> tuple[list[float], list[int]]:
    """A revision's replica timeline (seconds from the slice's start) as a step plot's points:
    minutes of the trace (the slice starts at ``start_min``), from the start to the end."""
    ts = [start_min] + [start_min + t / 60.0 for t, _ in timeline]
    ts.append(start_min + duration_s / 60.0)
    ns = [0] + [n for _, n in timeline]
    ns.append(ns[-1])
    return ts, ns


def write_plots(
    out: Path, runs: Sequence[PolicyRun], duration_s: float, start_min: float = 0.0
) -> list[str]:
    """The plots into ``out``, their file names; replicas plots of an earlier run into the same
    ``out`` are removed first (their models may not be this run's)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names: list[str] = []
    # one colour and marker per policy, named in a legend beside the axes: policies often land
    # close together (or on the same point), where text labels beside the points would overlap;
    # hollow markers of falling size keep a point drawn over another visible
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]  # tab10's
    for i, r in enumerate(runs):
        x = r.figures.idle_memory_mb_s / 1024.0 / 3600.0
        y = r.figures.cold_start_share * 100.0
        ax.scatter(
            [x],
            [y],
            s=max(30, 110 - 12 * i),
            marker=POLICY_MARKERS[i % len(POLICY_MARKERS)],
            facecolors="none",
            edgecolors=[colours[i % len(colours)]],
            linewidths=1.6,
            label=r.policy,
        )
    ax.set_xlabel("wasted memory (idle replicas), GB·h")
    ax.set_ylabel("cold starts, % of requests")
    ax.set_title("Cold starts against wasted memory")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)
    fig.tight_layout()
    fig.savefig(out / "coldstarts_vs_memory.png", dpi=110)
    plt.close(fig)
    names.append("coldstarts_vs_memory.png")

    fig, ax = plt.subplots(figsize=(6, 4.5))
    for i, r in enumerate(runs):
        q = r.latency_quantiles_s
        ax.plot(q.clip(min=1e-4), LATENCY_CDF_PROBABILITIES, label=r.policy, **line_style(i))
    ax.set_xscale("log")
    ax.set_xlabel("latency, s")
    ax.set_ylabel("share of requests")
    ax.set_title("Latency CDF (cold starts included)")
    ax.legend(fontsize=8)
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / "latency_cdf.png", dpi=110)
    plt.close(fig)
    names.append("latency_cdf.png")

    for stale in out.glob("replicas_*.png"):
        stale.unlink()
    models = sorted({m for r in runs for m in r.timelines})
    for model in models:
        fig, ax = plt.subplots(figsize=(7, 3.5))
        for i, r in enumerate(runs):
            ts, ns = replica_steps(r.timelines.get(model, []), start_min, duration_s)
            ax.step(ts, ns, where="post", label=r.policy, **line_style(i))
        ax.set_xlabel("minute of the trace")
        ax.set_ylabel("replicas")
        ax.set_title(f"Replicas over time: {model}", parse_math=False)
        ax.legend(fontsize=7)
        fig.tight_layout()
        name = plot_name(model)
        fig.savefig(out / name, dpi=110)
        plt.close(fig)
        names.append(name)
    return names


ASSUMED_TITLES = {
    "service_s": ("service time", "s", None),
    "capacity": ("capacity", "requests at once", "--capacity"),
    "memory_mb": ("memory", "MB", "--memory-mb"),
}


def assumed_lines(assumed: dict[str, dict[str, Any]]) -> list[str]:
    """The report's sentence on per-model figures the trace did not give, with a blank line."""
    parts = []
    for key, (title, unit, option) in ASSUMED_TITLES.items():
        if key not in assumed:
            continue
        value, source = assumed[key]["value"], assumed[key]["source"]
        if source == "name-hash":
            parts.append(f"{title} 1 to 32 {unit} by the model name's hash (`{option}` sets one)")
        elif source == "default":
            how = f"the default; `{option}` sets another" if option else "the default"
            parts.append(f"{title} {value:g} {unit} ({how})")
        else:
            parts.append(f"{title} {value:g} {unit} (`{source}`)")
    if not parts:
        return []
    return ["Not in the trace, the same for every model: " + "; ".join(parts) + ".", ""]


def counted(n: int, noun: str) -> str:
    """``1 model``, ``2 models``, ``1,000 requests``."""
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def span_text(seconds: float) -> str:
    """A trace's duration for a sentence: seconds under two minutes, else minutes."""
    if seconds < 120:
        return counted(round(seconds), "second") if seconds >= 1 else f"{seconds:g} s"
    return counted(round(seconds / 60), "minute")


def _concurrency_sentence(settings: dict[str, Any]) -> str:
    cc = settings.get("container_concurrency")
    if cc is None:
        return "containerConcurrency: per model."
    if cc == 0:
        return "containerConcurrency: 0 (no limit; `--container-concurrency` sets one)."
    return f"containerConcurrency: {cc} (`--container-concurrency`)."


def write_report(
    out: Path,
    document: dict[str, Any],
    runs: Sequence[PolicyRun],
    workload: Workload,
    wall_s: float,
) -> None:
    """``results.json``, the plots and ``report.md`` into ``out``."""
    # NaN and Infinity are not JSON: fail here rather than write a file parsers refuse
    check_finite(document)
    text = json.dumps(document, indent=2, sort_keys=True, allow_nan=False)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(text + "\n")
    minutes = document["trace"]["slice"]["minutes"]
    plots = write_plots(out, runs, workload.duration_s, minutes[0] if minutes else 0.0)
    trace = document["trace"]
    lines = [
        "# modelscale simulation",
        "",
        f"Trace: `{trace['source']}` ({trace['format']}), {counted(trace['models'], 'model')}, "
        f"{counted(trace['requests'], 'request')} over {span_text(trace['duration_s'])}; "
        f"seed {document['seed']}; wall time {wall_s:.1f} s.",
        "",
        f"Arrivals: {trace['arrival_note']}.",
        "",
        *assumed_lines(trace["assumed"]),
        *[f"Note: {note}." for note in trace["notes"]],
        *([""] if trace["notes"] else []),
        "| policy | " + " | ".join(title for _, title in TABLE_COLUMNS) + " |",
        "|---|" + "---|" * len(TABLE_COLUMNS),
    ]
    for name, figs in document["policies"].items():
        lines.append(
            f"| {name} | " + " | ".join(_fmt(figs[key]) for key, _ in TABLE_COLUMNS) + " |"
        )
    if document["ratios"]:
        lines += ["", "modelscale / baseline:", ""]
        keys = list(next(iter(document["ratios"].values())).keys())
        lines.append("| baseline | " + " | ".join(keys) + " |")
        lines.append("|---|" + "---|" * len(keys))
        for base, r in document["ratios"].items():
            lines.append(f"| {base} | " + " | ".join(_fmt(r[k]) for k in keys) + " |")
    settings = document["settings"]
    lines += [
        "",
        "A request meets its objective when its latency is at most "
        f"max({settings['objective_slowdown']:g} × its service time, "
        f"{settings['objective_floor_s']:g} s). Cold starts: lognormal, median "
        f"{settings['cold_start_median_s']:g} s. {_concurrency_sentence(settings)} The KPA ticks every {settings['kpa_tick_s']:g} s; "
        f"revisions at or above {settings['fluid_min_rps']:g} requests/s while active run on the "
        "fluid engine.",
        "",
        *[f"![{p}]({p})" for p in plots],
        "",
        f"Trace citation: {trace['citation']}",
        "",
    ]
    (out / "report.md").write_text("\n".join(lines))
