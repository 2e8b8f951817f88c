"""The speed-ups change no result: batched KPA writes and worker processes, on a real slice.

- Batched writes: every revision of a small slice of the Azure Functions trace, under every
  policy, runs once with the simulator's batched KPA writes and once with a KPA that takes the
  same buckets one ``record`` at a time (the path before batching). Latencies, cold flags,
  replica-seconds, idle memory-time, scaling changes and the replica timeline are identical.
- Skipped ticks: a run that skips the ticks the KPA provably decides alike (steady and quiet
  spells) against one that ticks every 2 s, for every policy.
- Worker processes: ``run_policies`` over two processes gives every policy's figures, latency
  quantiles, timelines and engines exactly as ``run_policy`` in this process.
- Held ticks and band spells: ticks whose decision the KPA's own averages (or a band of
  per-second concurrency) prove unchanged skip its ``decide`` but still stop the engine, so a
  run with them is bit for bit a run without, on revisions built to hit them (many requests
  in flight for long, a busy single replica), and they do skip most decisions.
"""

from __future__ import annotations

import multiprocessing
import signal
from pathlib import Path

import numpy as np
import pytest

from autoscaler.kpa import AutoscalerConfig
from autoscaler.sim import (
    POLICY_NAMES,
    ColdStart,
    ModelSpec,
    ServiceTime,
    SimSettings,
    make_policies,
    run_policy,
    run_revision,
)
from autoscaler.sim.kpa_adapter import KpaRevision
from autoscaler.sim.parallel import plan_tasks, run_policies
from autoscaler.sim.seams import Annotations
from autoscaler.sim.traces import ModelTrace, TraceSlice, Workload, read_azure_functions


class OneByOne(KpaRevision):
    """The KPA fed one report per bucket, as before batching."""

    def record_many(self, seconds_s: list[float], concurrency: list[float]) -> None:
        for s, c in zip(seconds_s, concurrency, strict=True):
            self.record(s, c)


def one_by_one(annotations: Annotations, container_concurrency: int) -> OneByOne:
    return OneByOne(
        annotations, container_concurrency=container_concurrency, config=AutoscalerConfig()
    )


@pytest.fixture(scope="module")
def workload(functions_dir: Path) -> Workload:
    path = functions_dir
    # busy and idle functions alike, spells of quiet and a tuner period or two
    return read_azure_functions(
        Path(path), seed=5, slice_=TraceSlice(functions=12, minutes=(0.0, 90.0))
    )


@pytest.mark.parametrize("engine", ["exact", "fluid"])
@pytest.mark.parametrize("policy_name", POLICY_NAMES)
def test_batched_kpa_writes_change_nothing(
    workload: Workload, policy_name: str, engine: str
) -> None:
    settings = SimSettings(engine=engine)
    (policy,) = make_policies([policy_name], settings.cold_start.median_s)
    for index, trace in enumerate(workload.traces):
        args = (trace, index, policy, settings, workload.seed, workload.duration_s)
        batched = run_revision(*args)
        single = run_revision(*args, autoscaler=one_by_one)
        assert np.array_equal(batched.requests.latency_s, single.requests.latency_s), trace
        assert np.array_equal(batched.requests.cold, single.requests.cold)
        assert batched.stats == single.stats, trace.model.name


@pytest.mark.parametrize("policy_name", POLICY_NAMES)
def test_skipped_ticks_change_no_figure(workload: Workload, policy_name: str) -> None:
    """Ticks skipped in steady spells (which arrivals no longer end) and quiet spells against
    a run that ticks every 2 s: the same decisions, figures and replica timelines; latencies
    equal within 1e-9 (time split into fewer pieces sums attained service in another order)."""
    (policy,) = make_policies([policy_name], 1.5)
    for index, trace in enumerate(workload.traces):
        args = (trace, index, policy)
        rest = (workload.seed, workload.duration_s)
        ticked = run_revision(*args, SimSettings(skip_steady_ticks=False), *rest)
        skipped = run_revision(*args, SimSettings(skip_steady_ticks=True), *rest)
        a, b = skipped.stats, ticked.stats
        assert (a.timeline, a.scaling_changes) == (b.timeline, b.scaling_changes), trace
        assert a.replica_s == pytest.approx(b.replica_s, rel=1e-9)
        assert a.idle_mb_s == pytest.approx(b.idle_mb_s, rel=1e-9)
        assert np.array_equal(skipped.requests.cold, ticked.requests.cold)
        np.testing.assert_allclose(
            skipped.requests.latency_s, ticked.requests.latency_s, rtol=1e-9, atol=1e-9
        )
    settings = SimSettings()
    fast = run_policy(workload, policy, settings).figures.as_dict()
    slow = run_policy(workload, policy, SimSettings(skip_steady_ticks=False)).figures.as_dict()
    assert fast == slow


def test_worker_processes_give_the_serial_results(workload: Workload) -> None:
    settings = SimSettings()
    policies = make_policies(list(POLICY_NAMES), settings.cold_start.median_s)
    done: dict[int, int] = {}

    def progress(policy_index: int, n: int) -> None:
        done[policy_index] = done.get(policy_index, 0) + n

    parallel = run_policies(workload, policies, settings, jobs=2, progress=progress)
    assert done == {p: workload.requests for p in range(len(policies))}
    for policy, run in zip(policies, parallel, strict=True):
        serial = run_policy(workload, policy, settings)
        assert run.policy == serial.policy
        assert run.figures == serial.figures, policy.name
        assert np.array_equal(run.latency_quantiles_s, serial.latency_quantiles_s)
        assert run.timelines == serial.timelines
        assert run.engines == serial.engines


def _ignores_sigint(pid: int) -> bool:
    """Whether process ``pid`` ignores SIGINT, from its ignored-signal mask in /proc."""
    status = Path(f"/proc/{pid}/status").read_text()
    (mask,) = [line.split()[1] for line in status.splitlines() if line.startswith("SigIgn:")]
    return bool(int(mask, 16) & (1 << (signal.SIGINT - 1)))


def test_an_interrupt_is_the_parents_and_ends_the_workers(workload: Workload) -> None:
    """Ctrl-C reaches every process of the group: the workers ignore it (no traceback from
    each), and the parent's KeyboardInterrupt leaves no worker behind."""
    policies = make_policies(["knative-default", "oracle"], 1.5)
    workers: list[multiprocessing.Process] = []

    def interrupt(policy_index: int, n: int) -> None:
        workers.extend(multiprocessing.active_children())
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_policies(workload, policies, SimSettings(), jobs=2, progress=interrupt)
    assert len(workers) == 2
    assert not multiprocessing.active_children()
    assert not [w for w in workers if w.is_alive()]


def test_workers_ignore_sigint(workload: Workload) -> None:
    policies = make_policies(["knative-default", "oracle"], 1.5)
    ignoring: list[bool] = []

    def look(policy_index: int, n: int) -> None:
        ignoring.extend(_ignores_sigint(w.pid) for w in multiprocessing.active_children() if w.pid)

    run_policies(workload, policies, SimSettings(), jobs=2, progress=look)
    assert ignoring and all(ignoring)


def test_tasks_cover_every_model_of_every_policy_once(workload: Workload) -> None:
    tasks = plan_tasks(workload, 3)
    seen = sorted((p, i) for p, indices in tasks for i in indices)
    assert seen == [(p, i) for p in range(3) for i in range(len(workload.traces))]


def test_jobs_must_be_positive(workload: Workload) -> None:
    with pytest.raises(ValueError, match="jobs=0: must be >= 1"):
        run_policies(workload, make_policies(["oracle"], 1.5), SimSettings(), jobs=0)


def _cli_results(trace_dir: Path, out: Path, jobs: str) -> dict[str, object]:
    import argparse
    import json

    from autoscaler.sim import cli

    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    args = parser.parse_args(
        ["--trace", str(trace_dir), "--functions", "6", "--minutes", "0:30", "--seed", "2",
         "--policies", "knative-default", "modelscale", "--jobs", jobs, "--out", str(out)]
    )  # fmt: skip
    assert cli.run(args) == 0
    doc: dict[str, object] = json.loads((out / "results.json").read_text())
    return doc


def test_cli_jobs_change_no_result(functions_dir: Path, tmp_path: Path) -> None:
    one = _cli_results(functions_dir, tmp_path / "one", "1")
    two = _cli_results(functions_dir, tmp_path / "two", "2")
    assert one["policies"] == two["policies"]


def test_cli_rejects_zero_jobs(
    functions_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import argparse

    from autoscaler.sim import cli

    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    args = parser.parse_args(["--trace", str(functions_dir), "--jobs", "0", "--out", str(tmp_path)])
    assert cli.run(args) == 2
    assert "--jobs 0: must be >= 1" in capsys.readouterr().err


class Counting(KpaRevision):
    """The simulator's KPA, counting the decisions it is asked for."""

    decisions = 0

    def decide(self, now_s: float, ready_replicas: int) -> int:
        Counting.decisions += 1
        return super().decide(now_s, ready_replicas)


class EveryDecision(Counting):
    """Without held ticks and band spells: the KPA decides at every tick it is asked."""

    hold = None  # type: ignore[assignment]
    steady_band = None  # type: ignore[assignment]


def counting(annotations: Annotations, container_concurrency: int) -> Counting:
    return Counting(annotations, container_concurrency=container_concurrency)


def every_decision(annotations: Annotations, container_concurrency: int) -> EveryDecision:
    return EveryDecision(annotations, container_concurrency=container_concurrency)


def poisson(rng: np.random.Generator, rate: float, start_s: float, end_s: float) -> np.ndarray:
    gaps = rng.exponential(1.0 / rate, int((end_s - start_s) * rate * 1.5) + 10)
    t = start_s + np.cumsum(gaps)
    return t[t < end_s]


def held_trace(name: str) -> tuple[ModelTrace, str]:
    """Revisions whose ticks mostly repeat the last decision, and the engine to run them on."""
    rng = np.random.default_rng(7)
    if name == "long requests pile up":
        # 300 s of work per request, one per replica at a time: dozens in flight, counts of 2+
        spec = ModelSpec("long", ServiceTime.constant(300.0), capacity=1)
        arrivals, engine = poisson(rng, 1 / 4.0, 0.0, 3000.0), "exact"
    elif name == "busy single replica":
        spec = ModelSpec("single", ServiceTime.constant(0.4), capacity=4)
        arrivals, engine = poisson(rng, 3.0, 0.0, 1800.0), "exact"
    elif name == "busy revision, several replicas":
        spec = ModelSpec("several", ServiceTime((0.0, 1.0), (1.0, 3.0)), capacity=100)
        arrivals, engine = poisson(rng, 60.0, 0.0, 1200.0), "exact"
    else:  # "a flow of requests"
        spec = ModelSpec("flow", ServiceTime((0.0, 1.0), (2.0, 6.0)), capacity=16)
        arrivals, engine = poisson(rng, 120.0, 0.0, 1800.0), "fluid"
    service = spec.service.sample(rng, arrivals.size)
    return ModelTrace(spec, arrivals, service), engine


HELD_CASES = [
    "long requests pile up",
    "busy single replica",
    "busy revision, several replicas",
    "a flow of requests",
]


@pytest.mark.parametrize("policy_name", ["knative-default", "oracle", "modelscale"])
@pytest.mark.parametrize("case", HELD_CASES)
def test_held_ticks_and_band_spells_change_nothing(case: str, policy_name: str) -> None:
    trace, engine = held_trace(case)
    settings = SimSettings(engine=engine, cold_start=ColdStart(median_s=1.5, sigma=0.2))
    (policy,) = make_policies([policy_name], 1.5)
    end_s = float(trace.arrivals_s[-1]) + 60.0
    Counting.decisions = 0
    fast = run_revision(trace, 3, policy, settings, 11, end_s, autoscaler=counting)
    skipped = Counting.decisions
    Counting.decisions = 0
    slow = run_revision(trace, 3, policy, settings, 11, end_s, autoscaler=every_decision)
    assert np.array_equal(fast.requests.latency_s, slow.requests.latency_s)
    assert np.array_equal(fast.requests.cold, slow.requests.cold)
    assert fast.stats == slow.stats  # replica-seconds, idle MB·s, changes, timeline: exact
    if policy_name == "knative-default":
        # the revisions are built for it: most of their decisions are proven, not computed
        assert skipped < 0.5 * Counting.decisions, (skipped, Counting.decisions)
