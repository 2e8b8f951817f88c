"""Policies and revisions spread over worker processes, with the results of a serial run.

Revisions share nothing and every random draw comes from a generator per (seed, model), so a
revision's outcome does not depend on which process runs it or in what order. The work is cut
into tasks of a few revisions of one policy; each finished task advances the progress callback
by its requests, and each policy's outcomes are put back in the workload's model order before
``autoscaler.sim.fleet.combine`` makes its figures: the same arrays, summed in the same order,
as ``run_policy`` in one process.

The workers are forked after the workload is read, so they inherit it (hundreds of MB of
arrivals are never pickled); only a task's indices go out and its outcomes come back. With
``jobs=1`` (or one task) everything runs in this process. An interrupt (Ctrl-C reaches the
whole process group) is this process's to handle: the workers ignore it and are terminated as
``KeyboardInterrupt`` leaves ``run_policies``.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from collections.abc import Callable, Sequence

from autoscaler.sim.fleet import PolicyRun, RevisionOutcome, SimSettings, combine, revision_outcome
from autoscaler.sim.seams import Policy
from autoscaler.sim.traces.workload import Workload

# Aim for this many requests per task: small enough to balance two cores and move the bar
# often, large enough that task overhead stays negligible.
TASK_REQUESTS = 200_000
TASK_MAX_MODELS = 50

# What forked workers inherit: set just before the pool forks, cleared after.
_shared: tuple[Workload, Sequence[Policy], SimSettings] | None = None

Task = tuple[int, list[int]]  # (policy index, model indices)


def default_jobs() -> int:
    """The CPU count this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - platforms without affinity
        return max(1, os.cpu_count() or 1)


def _ignore_interrupts() -> None:
    """A worker's initializer: Ctrl-C is the parent's to handle (it terminates the pool)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def plan_tasks(workload: Workload, n_policies: int) -> list[Task]:
    """Tasks of consecutive models, busiest chunks first so the tail of the run stays short."""
    chunks: list[list[int]] = []
    current: list[int] = []
    load = 0
    for index, trace in enumerate(workload.traces):
        current.append(index)
        load += trace.requests
        if load >= TASK_REQUESTS or len(current) >= TASK_MAX_MODELS:
            chunks.append(current)
            current, load = [], 0
    if current:
        chunks.append(current)
    weight = [sum(workload.traces[i].requests for i in c) + len(c) * 1000 for c in chunks]
    order = sorted(range(len(chunks)), key=lambda k: -weight[k])
    return [(p, chunks[k]) for k in order for p in range(n_policies)]


def _run_task(task: Task) -> tuple[Task, list[RevisionOutcome], float]:
    assert _shared is not None, "worker started without a workload"
    workload, policies, settings = _shared
    p, indices = task
    started = time.process_time()
    out = [
        revision_outcome(
            workload.traces[i], i, policies[p], settings, workload.seed, workload.duration_s
        )
        for i in indices
    ]
    return task, out, time.process_time() - started


def run_policies(
    workload: Workload,
    policies: Sequence[Policy],
    settings: SimSettings,
    *,
    jobs: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    on_pool: Callable[[], None] | None = None,
) -> list[PolicyRun]:
    """Every policy over the workload, in ``jobs`` processes (default: the CPU count).

    ``progress(policy_index, requests_done)`` is called in this process as tasks finish.
    ``on_pool()`` is called once the workers exist (start threads, e.g. a live progress
    display, only then: forking a process with threads is unsafe).
    """
    global _shared
    jobs = default_jobs() if jobs is None else jobs
    if jobs < 1:
        raise ValueError(f"jobs={jobs}: must be >= 1")
    tasks = plan_tasks(workload, len(policies))
    outcomes: list[dict[int, RevisionOutcome]] = [{} for _ in policies]
    compute_s = [0.0] * len(policies)

    def take(task: Task, out: list[RevisionOutcome], seconds: float) -> None:
        p, indices = task
        compute_s[p] += seconds
        for i, o in zip(indices, out, strict=True):
            outcomes[p][i] = o
        if progress is not None:
            progress(p, sum(workload.traces[i].requests for i in indices))

    _shared = (workload, policies, settings)
    try:
        if jobs == 1 or len(tasks) <= 1:
            if on_pool is not None:
                on_pool()
            for task in tasks:
                take(*_run_task(task))
        else:
            ctx = multiprocessing.get_context("fork")
            with ctx.Pool(min(jobs, len(tasks)), initializer=_ignore_interrupts) as pool:
                if on_pool is not None:
                    on_pool()
                for result in pool.imap_unordered(_run_task, tasks):
                    take(*result)
    finally:
        _shared = None
    runs = []
    for p, policy in enumerate(policies):
        ordered = [outcomes[p][i] for i in range(len(workload.traces))]
        run = combine(workload, policy.name, ordered, settings)
        run.compute_s = compute_s[p]
        runs.append(run)
    return runs
