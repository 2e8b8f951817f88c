"""How two replica-count timelines are scored tick by tick (the parity test's measure)."""

from __future__ import annotations

import pytest

from autoscaler.sim import tick_agreement


def ticks(phase_s: float, step_s: float) -> list[tuple[float, int]]:
    """A KPA ticking every 2 s from ``phase_s`` that goes from 1 to 6 replicas at its first
    tick after the load steps up at ``step_s``."""
    return [(phase_s + 2.0 * k, 1 if phase_s + 2.0 * k < step_s else 6) for k in range(12)]


@pytest.mark.parametrize("phase_s", [0.1, 1.0, 1.9])
@pytest.mark.parametrize("step_s", [9.95, 10.5, 11.99])
def test_the_same_decisions_at_another_phase_agree(phase_s: float, step_s: float) -> None:
    # one-machine mode's ticker runs at its own phase: the same decisions, made up to a tick
    # apart, agree exactly at every tick (compared with the earlier tick alone they would not
    # where the step falls between the two sides' ticks)
    assert tick_agreement(ticks(phase_s, step_s), ticks(0.0, step_s), tolerance=0) == 1.0


def test_disagreement_beyond_the_tolerance_counts() -> None:
    sim = ticks(0.0, 10.0)  # 1 up to 8 s, 6 from 10 s
    reference = [(4.0, 1), (9.0, 3), (12.0, 3), (30.0, 6)]
    # 9 s falls between a tick at 1 and one at 6: 3 is within 2 of the first; at 12 s, 3 is 3
    # from the 6 on both sides; 30 s is past the last tick, compared with it
    assert tick_agreement(reference, sim, tolerance=2) == pytest.approx(3 / 4)
    assert tick_agreement(reference, sim, tolerance=1) == pytest.approx(2 / 4)
    assert tick_agreement(reference, sim, tolerance=1, start_s=10.0) == pytest.approx(1 / 2)
    with pytest.raises(ValueError, match="empty"):
        tick_agreement(reference, [])
