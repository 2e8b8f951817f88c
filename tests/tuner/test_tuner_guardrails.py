"""Guardrails alone: step bounds, hysteresis, apply interval, Knative's ranges."""

from __future__ import annotations

import pytest

from autoscaler.tuner.guardrails import (
    apply_due,
    bound_step,
    clamp_min_scale,
    clamp_retention,
    clamp_target,
    within_hysteresis,
)


@pytest.mark.parametrize(
    ("current", "proposed", "expected", "noted"),
    [
        pytest.param(10, 30, 15, True, id="up-capped-x1.5"),
        pytest.param(10, 2, 5, True, id="down-capped-half"),
        pytest.param(10, 12, 12, False, id="within-bounds"),
    ],
)
def test_bound_step(current: float, proposed: float, expected: float, noted: bool) -> None:
    value, note = bound_step(current, proposed, 1.5, 2.0)
    assert value == expected
    assert (note is not None) == noted


@pytest.mark.parametrize(
    ("proposed", "held"), [(10.9, True), (9.1, True), (11.0, False), (8.0, False)], ids=str
)
def test_hysteresis_ten_percent(proposed: float, held: bool) -> None:
    assert within_hysteresis(10.0, proposed, 0.1) is held


@pytest.mark.parametrize(
    ("value", "tmin", "tmax", "expected"),
    [
        pytest.param(0.001, 0.01, None, 0.01, id="knative-floor"),
        pytest.param(3, 4, 8, 4, id="user-min"),
        pytest.param(30, 4, 8, 8, id="user-max"),
        pytest.param(5, 4, 8, 5, id="inside"),
    ],
)
def test_clamp_target(value: float, tmin: float, tmax: float | None, expected: float) -> None:
    assert clamp_target(value, tmin, tmax)[0] == expected


def test_apply_interval_and_ranges() -> None:
    assert apply_due(100, None, 60)
    assert not apply_due(100, 50, 60)
    assert apply_due(110, 50, 60)
    assert clamp_retention(-5) == 0 and clamp_retention(7200) == 3600
    assert clamp_min_scale(1, 0, 0) == 1
    assert clamp_min_scale(0, 2, 0) == 2
    assert clamp_min_scale(3, 0, 2) == 2  # min-scale <= max-scale
