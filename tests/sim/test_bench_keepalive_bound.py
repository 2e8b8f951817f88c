"""bench/keepalive_bound.py: the one-replica keep-alive model it reads the day with, the
hindsight bound and the keep-alive learned on the first half."""

from __future__ import annotations

import importlib.util
import math
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from autoscaler.sim.model import ModelSpec, ServiceTime
from autoscaler.sim.traces.workload import ModelTrace

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bound() -> ModuleType:
    path = REPO / "bench" / "keepalive_bound.py"
    spec = importlib.util.spec_from_file_location("bench_keepalive_bound", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)
    spec.loader.exec_module(module)
    return module


def trace(arrivals: list[float], service_s: float = 1.0, memory_mb: float = 100.0) -> ModelTrace:
    model = ModelSpec("m", service=ServiceTime.constant(service_s), memory_mb=memory_mb)
    a = np.array(arrivals)
    return ModelTrace(model, a, np.full(a.size, service_s))


def test_an_idle_period_longer_than_the_keep_alive_is_a_cold_start(bound: ModuleType) -> None:
    # requests of 1 s at 200, 301, 1301 (given out of order); the revision's replica is there
    # from 0 (idle 200 s before the first), then idle periods of 100 s and 999 s
    t = trace([1301.0, 200.0, 301.0])
    ks = np.array([90.0, 600.0, 1000.0])
    o = bound.options(t, 0.0, 2000.0, ks, cold_start_s=0.5)
    assert o.share.tolist() == pytest.approx([1.0, 1 / 3, 0.0])
    # warm: each idle period up to K, and after the last request (ends at 1302) up to K or
    # the end; plus each cold start's time; 100 MB
    warm = [90 * 4, 200 + 100 + 600 + 600, 200 + 100 + 999 + 698]
    cold = [3, 1, 0]
    assert o.memory.tolist() == pytest.approx(
        [100 * (w + 0.5 * c) for w, c in zip(warm, cold, strict=True)]
    )
    assert bound.options(t, 1400.0, 2000.0, ks) is None  # no request in the window


def test_a_window_carries_the_replica_kept_from_before_it(bound: ModuleType) -> None:
    # the window from 1000 s: its one request (1301) follows an idle period of 999 s that
    # began before it; only the part of the warm time inside the window counts
    t = trace([1301.0, 200.0, 301.0])
    ks = np.array([90.0, 600.0, 1000.0])
    o = bound.options(t, 1000.0, 2000.0, ks, cold_start_s=0.5)
    assert o.share.tolist() == pytest.approx([1.0, 1.0, 0.0])
    # K 90 and 600: let go before 1000, then warm after 1302; K 1000: warm 1000 to 1301
    warm = [90, 600, 301 + 698]
    assert o.memory.tolist() == pytest.approx(
        [100 * (w + 0.5 * c) for w, c in zip(warm, [1, 1, 0], strict=True)]
    )


def test_hindsight_gives_up_on_the_models_dearest_to_get_under_the_line(
    bound: ModuleType,
) -> None:
    o = bound.Options
    # five models, K in (short, long); the p75 interpolates between the 4th and 5th share
    models = [
        o(np.array([0.5, 0.05]), np.array([10.0, 20.0])),  # 10 more to get under
        o(np.array([0.5, 0.05]), np.array([10.0, 1000.0])),  # 990 more: given up
        o(np.array([0.5, 0.05]), np.array([10.0, 15.0])),  # 5 more
        o(np.array([0.5, 0.05]), np.array([10.0, 18.0])),  # 8 more
        o(np.array([0.0, 0.0]), np.array([3.0, 4.0])),  # under at its cheapest
    ]
    # at most one over: the p75 is the 4th of five shares (0.05 after three are brought under)
    assert bound.hindsight_memory(models, 0.1) == 43 + 5 + 8 + 10
    # at a line only the one model's share of 0 meets, none gets under: no bound
    assert math.isinf(bound.hindsight_memory(models, 0.01))
    # six models: the p75 lies three quarters of the way from the 4th share to the 5th; with
    # two over it is 0.05 + 0.75 x 0.45 = 0.39, so one more is brought under
    six = [*models, o(np.array([0.5, 0.05]), np.array([10.0, 30.0]))]
    assert bound.hindsight_memory(six, 0.1) == 53 + 5 + 8 + 10 + 20


def test_learned_on_the_first_half_takes_the_cheapest_keep_alive_under_the_line_within_budget(
    bound: ModuleType,
) -> None:
    o = bound.Options
    first = [
        o(np.array([0.5, 0.3, 0.05]), np.array([10.0, 30.0, 60.0])),
        o(np.array([0.5, 0.3, 0.05]), np.array([10.0, 30.0, 600.0])),
        None,  # no request in the first half: the fixed keep-alive (index 1)
    ]
    second = [o(np.array([0.4, 0.2, 0.1]), np.array([1.0, 2.0, 3.0]))] * 3
    shares, memory = bound.learned_from_first_half(first, second, 0.1, 1, budget=2.0)
    # the first: 50 more than its cheapest, within 2 x its fixed 30: the third K; the second:
    # 590 more is over budget: its cheapest K
    assert shares.tolist() == [0.1, 0.4, 0.2]
    assert memory == 3.0 + 1.0 + 2.0


def test_the_day_prints_every_row(functions_dir: Path) -> None:
    shared = functions_dir.parents[1]
    env = {**os.environ, "MODELSCALE_SHARED": str(shared), "PYTHONPATH": str(REPO)}
    out = subprocess.run(
        [sys.executable, str(REPO / "bench" / "keepalive_bound.py"), "--functions", "40"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=True,
    )
    for row in ("fixed 10 min, whole day", "hindsight, whole day", "(B inf), second half"):
        assert row in out.stdout, out.stdout
