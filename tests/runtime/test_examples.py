"""The example models: the iris build and the capacity-limited model's latency formula."""

from __future__ import annotations

from pathlib import Path

import pytest

from autoscaler.examples.build import build_iris, main
from autoscaler.examples.capacity import CapacitySettings, ProcessorSharing


def test_build_is_idempotent(tmp_path: Path) -> None:
    path, built = build_iris(tmp_path)
    assert built and path == tmp_path / "iris" / "model.joblib"
    mtime = path.stat().st_mtime_ns
    assert build_iris(tmp_path) == (path, False)
    assert path.stat().st_mtime_ns == mtime
    path.write_bytes(b"not a model")
    assert build_iris(tmp_path)[1] is True
    assert main(["--out", str(tmp_path)]) == 0


# (id, capacity, base ms, arrivals (t s), expected finish times (t s))
PS_CASES = [
    pytest.param(4, 100, [0, 0, 0, 0], [0.1] * 4, id="at-capacity-flat"),
    pytest.param(4, 100, [0] * 8, [0.2] * 8, id="double-capacity-twice-as-long"),
    pytest.param(1, 100, [0, 0.05], [0.15, 0.2], id="second-arrival-shares-the-slot"),
    pytest.param(2, 100, [0, 0.2], [0.1, 0.3], id="no-overlap"),
]


@pytest.mark.parametrize(("capacity", "base_ms", "arrivals", "finishes"), PS_CASES)
def test_processor_sharing_formula(
    capacity: int, base_ms: float, arrivals: list[float], finishes: list[float]
) -> None:
    ps = ProcessorSharing(capacity, base_ms / 1000)
    done: dict[int, float] = {}
    events = sorted((t, i) for i, t in enumerate(arrivals))
    now = 0.0
    while events or ps.jobs:
        nxt = ps.next_finish(now)
        if events and (nxt is None or events[0][0] <= nxt):
            now, job = events.pop(0)
            ps.arrive(job, now)
            continue
        assert nxt is not None
        now = nxt
        for job in ps.pop_finished(now):
            done[job] = now
    assert [done[i] for i in range(len(arrivals))] == pytest.approx(finishes)


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        ([], {}, CapacitySettings(4, 50.0)),
        (["--capacity", "2"], {"MODEL_BASE_LATENCY_MS": "10"}, CapacitySettings(2, 10.0)),
        (["--capacity=3"], {"MODEL_CAPACITY": "9"}, CapacitySettings(3, 50.0)),
    ],
    ids=["defaults", "args-and-env", "args-win"],
)
def test_capacity_settings(
    args: list[str], env: dict[str, str], expected: CapacitySettings
) -> None:
    assert CapacitySettings.parse(args, env) == expected


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--capacity=0"], "capacity=0"), (["--capacity=x"], "capacity='x'")],
    ids=["zero", "not-a-number"],
)
def test_capacity_settings_errors(args: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CapacitySettings.parse(args, {})
