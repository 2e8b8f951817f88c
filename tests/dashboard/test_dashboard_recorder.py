"""The recorder and the overview's pure parts: cold starts as timelines, decision folding, the
ring's bound, and the latency light."""

from __future__ import annotations

import pytest

from autoscaler.dashboard.recorder import Decision, Recorder
from autoscaler.dashboard.view import latency_state

KEY = ("default", "m")


@pytest.mark.parametrize(
    ("timeline", "now_s", "expected"),
    [
        pytest.param([(0, 0), (10, 1)], 10, 1, id="zero-to-one"),
        pytest.param([(0, 1), (10, 2)], 10, 0, id="first-sample-is-not-a-cold-start"),
        pytest.param([(0, 0), (10, 3), (20, 0), (30, 1)], 30, 2, id="two-in-the-hour"),
        pytest.param([(0, 0), (10, 1), (20, 0), (4000, 1)], 4000, 1, id="old-one-ages-out"),
        pytest.param([(0, 0), (10, 1), (20, 2), (30, 1)], 30, 1, id="scale-up-is-not-one"),
        pytest.param([(0, 0), (3600, 1)], 7200, 0, id="exactly-an-hour-ago-is-out"),
    ],
)
def test_scale_ups_from_zero(
    timeline: list[tuple[float, int]], now_s: float, expected: int
) -> None:
    rec = Recorder()
    for t, actual in timeline:
        rec.record_replicas(KEY, t, actual, actual)
    assert rec.scale_ups_from_zero(KEY, now_s) == expected


def test_flat_replica_runs_keep_their_ends_and_the_ring_is_bounded() -> None:
    rec = Recorder(capacity=4)
    for t in range(5):
        rec.record_replicas(KEY, t, 1, 1)
    assert [s.t_s for s in rec.replicas(KEY)] == [0, 4]
    for t, n in enumerate([2, 3, 4, 5, 6], start=5):
        rec.record_replicas(KEY, t, n, n)
    assert [s.actual for s in rec.replicas(KEY)] == [3, 4, 5, 6]


def decision(t: float, target: float = 4.0, written: tuple[str, ...] = ()) -> Decision:
    return Decision(t, t, "m-00001", "Auto", target, 90.0, 0, 0.5, False, None, written, ("why",))


def test_identical_decisions_fold_and_writes_do_not() -> None:
    rec = Recorder()
    rec.record_decision(KEY, decision(0))
    rec.record_decision(KEY, decision(10))
    rec.record_decision(KEY, decision(20, target=5.0, written=("target",)))
    rec.record_decision(KEY, decision(30, target=5.0))
    got = [(d.first_t_s, d.t_s, d.target, d.repeats) for d in rec.decisions(KEY)]
    assert got == [(30, 30, 5.0, 1), (20, 20, 5.0, 1), (0, 10, 4.0, 2)]


def test_forget_drops_models_no_longer_present() -> None:
    rec = Recorder()
    rec.record_replicas(KEY, 0, 1, 1)
    rec.record_replicas(("default", "other"), 0, 1, 1)
    rec.forget([KEY])
    assert rec.models() == [KEY]


@pytest.mark.parametrize(
    ("latency_ms", "objective_ms", "state"),
    [
        pytest.param(50.0, 100.0, "green", id="well-under"),
        pytest.param(90.0, 100.0, "amber", id="at-90-percent"),
        pytest.param(100.0, 100.0, "amber", id="at-the-objective"),
        pytest.param(101.0, 100.0, "red", id="missed"),
        pytest.param(None, 100.0, "unknown", id="not-observed"),
        pytest.param(50.0, None, "unknown", id="no-objective"),
    ],
)
def test_latency_light(latency_ms: float | None, objective_ms: float | None, state: str) -> None:
    assert latency_state(latency_ms, objective_ms) == state


def test_recorder_settings_are_checked() -> None:
    with pytest.raises(ValueError, match=r"capacity \(0\)"):
        Recorder(capacity=0)


def test_replica_series_never_goes_back_in_time() -> None:
    rec = Recorder()
    rec.record_replicas(KEY, 999.0, 0, 0)
    rec.record_replicas(KEY, 1000.4, 1, 1)
    rec.record_replicas(KEY, 1000.0, 1, 1)  # read earlier, recorded later: ignored
    rec.record_replicas(KEY, 1000.5, 2, 2)
    assert [s.t_s for s in rec.replicas(KEY)] == [999.0, 1000.4, 1000.5]


def test_scale_ups_and_cold_starts_are_bounded_with_no_reader() -> None:
    rec = Recorder(window_s=100.0)
    for i in range(10_000):
        rec.record_replicas(KEY, float(i), i % 2, i % 2)
        rec.record_cold_start(KEY, float(i))
    h = rec._models[KEY]
    assert len(h.scale_ups) <= 50 and len(h.cold_starts) <= 100
    assert rec.scale_ups_from_zero(KEY, 9999.0) == 50
    assert rec.cold_starts(KEY, 9999.0) == 100
