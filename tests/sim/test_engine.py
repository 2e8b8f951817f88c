"""The exact engine on tiny hand-made traces with known answers."""

from __future__ import annotations

import numpy as np
import pytest
from recording_policy import RecordingPolicy

from autoscaler.sim import ColdStart, ModelSpec, ServiceTime, replay

COLD = ColdStart(median_s=1.5, sigma=0.0)
TARGET = "autoscaling.knative.dev/target"


def model(service_s: float = 0.1, capacity: int = 100, cc: int = 0) -> ModelSpec:
    return ModelSpec(
        "m", ServiceTime.constant(service_s), capacity=capacity, container_concurrency=cc
    )


def test_one_request_at_zero_is_one_cold_start_with_the_delay_in_its_latency() -> None:
    # the revision's initial replica is gone long before t=300
    r = replay([300.0], model(), cold_start=COLD, end_s=600.0)
    assert r.cold.tolist() == [True]
    assert r.latency_s[0] == pytest.approx(1.5 + 0.1)


def test_a_request_while_a_replica_is_ready_is_warm() -> None:
    r = replay([300.0, 310.0], model(), cold_start=COLD, end_s=600.0)
    assert r.cold.tolist() == [True, False]
    assert r.latency_s[1] == pytest.approx(0.1)


@pytest.mark.parametrize(
    ("target", "concurrency", "expected"),
    [("2", 10.0, 8), ("10", 10.0, 2), ("100", 10.0, 1), ("1", 5.0, 8)],
    ids=["target-2-conc-10", "target-10-conc-10", "default-ish-conc-10", "target-1-conc-5"],
)
def test_steady_load_gets_the_kpa_formula_count(
    target: str, concurrency: float, expected: int
) -> None:
    # arrivals every 0.1 s, each lasting concurrency/10 s: a steady in-flight count
    arrivals = np.arange(0.0, 400.0, 0.1)
    r = replay(
        arrivals,
        model(service_s=concurrency / 10.0),
        annotations={TARGET: target},
        cold_start=COLD,
        end_s=400.0,
    )
    # ceil(concurrency / (target x 0.7)), once the stable window is full of steady load
    assert expected == int(np.ceil(concurrency / (float(target) * 0.7)))
    steady = [desired for t, desired, _ in r.ticks if 150.0 <= t <= 390.0]
    assert steady and set(steady) == {expected}


@pytest.mark.parametrize(
    ("annotations", "earliest_s", "latest_s"),
    [
        ({}, 60.0, 64.0),
        ({"autoscaling.knative.dev/target-burst-capacity": "0"}, 90.0, 96.0),
        ({"autoscaling.knative.dev/scale-to-zero-pod-retention-period": "5m"}, 360.0, 366.0),
    ],
    ids=["defaults-activator-already-in-path", "tbc-0-grace-period", "retention-5m"],
)
def test_idle_revision_goes_back_to_zero(
    annotations: dict[str, str], earliest_s: float, latest_s: float
) -> None:
    r = replay([300.0], model(), annotations=annotations, cold_start=COLD, end_s=1200.0)
    last_done = 300.0 + r.latency_s[0]
    zero_at = [t for t, n in r.replica_timeline if n == 0 and t > 300.0]
    assert len(zero_at) == 1
    assert earliest_s <= zero_at[0] - last_done <= latest_s


def test_container_concurrency_queues_beyond_the_limit() -> None:
    pinned = {
        "autoscaling.knative.dev/min-scale": "1",
        "autoscaling.knative.dev/max-scale": "1",
    }
    r = replay([100.0, 100.0, 100.0], model(1.0, capacity=1, cc=1), annotations=pinned,
               cold_start=COLD, end_s=200.0)  # fmt: skip
    assert sorted(r.latency_s.tolist()) == pytest.approx([1.0, 2.0, 3.0])
    assert not r.cold.any()


def test_processor_sharing_beyond_capacity_stretches_latency() -> None:
    pinned = {
        "autoscaling.knative.dev/min-scale": "1",
        "autoscaling.knative.dev/max-scale": "1",
    }
    # capacity 2, four requests at once: each runs at half speed
    r = replay([100.0] * 4, model(1.0, capacity=2), annotations=pinned, cold_start=COLD,
               end_s=200.0)  # fmt: skip
    assert r.latency_s.tolist() == pytest.approx([2.0] * 4)


def test_quiet_spells_decide_like_ticking_every_two_seconds() -> None:
    # min-scale 1 keeps a replica all along: the skipped ticks must not change the timeline
    arrivals = [50.0, 400.0, 401.0, 2000.0]
    r = replay(arrivals, model(), annotations={"autoscaling.knative.dev/min-scale": "1"},
               cold_start=COLD, end_s=3000.0)  # fmt: skip
    assert [n for _, n in r.replica_timeline] == [1]
    assert not r.cold.any()
    assert len(r.ticks) < 3000 / 2 / 4  # most identical ticks were skipped


def test_skipping_steady_ticks_changes_no_figure(functions_dir: object) -> None:
    """Steady spells (``autoscaler.kpa.horizon``) skip ticks that decide the same: every figure
    of a run is identical with and without the skipping, for every policy."""
    from pathlib import Path

    from autoscaler.sim import SimSettings, make_policies, run_policy
    from autoscaler.sim.traces import TraceSlice, read_azure_functions

    assert isinstance(functions_dir, Path)
    w = read_azure_functions(
        functions_dir, seed=3, slice_=TraceSlice(functions=10, minutes=(0.0, 60.0))
    )
    for policy in make_policies(
        ["knative-default", "kserve-default", "keepalive-10m", "oracle", "modelscale"], 1.5
    ):
        ticked = run_policy(w, policy, SimSettings(skip_steady_ticks=False)).figures
        skipped = run_policy(w, policy, SimSettings(skip_steady_ticks=True)).figures
        # as results.json writes them (nine significant digits): skipped ticks split time into
        # fewer pieces, so sums may differ in the last bit
        assert skipped.as_dict() == ticked.as_dict(), policy.name


@pytest.mark.parametrize("engine", ["exact", "fluid"], ids=["exact", "fluid"])
def test_the_tuner_sees_queue_proxy_latency_without_the_activator_wait(engine: str) -> None:
    """A cold request's 1.5 s wait at the activator is in its latency, not in what the tuner
    reads from the queue-proxies (as in a cluster)."""
    from autoscaler.sim import SimSettings, run_revision
    from autoscaler.sim.traces.workload import ModelTrace
    from autoscaler.tuner.observation import LATENCY_BUCKETS_MS

    watcher = RecordingPolicy()
    trace = ModelTrace(model(), np.asarray([300.0]), np.asarray([0.1]))
    settings = SimSettings(cold_start=COLD, engine=engine)
    run = run_revision(trace, 0, watcher, settings, seed=0, end_s=360.0)
    assert run.requests.cold.tolist() == [True]
    assert run.requests.latency_s[0] == pytest.approx(1.6, abs=0.05)
    counted = [o for o in watcher.seen if getattr(o, "request_count", 0)]
    assert len(counted) == 1
    counts = counted[0].latency_counts  # type: ignore[attr-defined]
    bucket = next(i for i, c in enumerate(counts) if c)
    assert LATENCY_BUCKETS_MS[bucket] <= 150.0  # the 100 ms of service, not 1.6 s


@pytest.mark.parametrize("size", [0, 1, 2, 7, 100, 1000])
def test_heap_smallest_reads_a_heap_like_sorting_it(size: int) -> None:
    import heapq

    from autoscaler.sim.exact import heap_smallest

    rng = np.random.default_rng(size)
    heap: list[tuple[float, int]] = []
    for j, key in enumerate(rng.exponential(size=size).round(2).tolist()):  # ties included
        heapq.heappush(heap, (key, j))
    keys = sorted(k for k, _ in heap)
    for d in {0, 1, 2, size // 2, size}:
        assert heap_smallest(heap, d) == keys[:d]
