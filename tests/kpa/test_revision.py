"""One revision's KPA over time: bounds, scale to zero, activator in path, restarts, updates.

Each timeline drives ``RevisionAutoscaler`` the way the runtime does: every second each ready pod
reports its share of the load (the activator reports what it proxies), every 2 s a tick; pods
become ready at the tick after they are asked for.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest

from autoscaler.kpa import (
    ACTIVATING,
    ACTIVE,
    INACTIVE,
    AutoscalerConfig,
    RevisionAutoscaler,
    RevisionScaling,
    ScaleDecision,
    Stat,
)

ACTIVATOR = "activator-0"


class Revision:
    """A revision with instant pods around one RevisionAutoscaler."""

    def __init__(
        self,
        config: AutoscalerConfig | None = None,
        scaling: RevisionScaling | None = None,
        *,
        ready: int = 0,
        pods_start: bool = True,
    ) -> None:
        self.kpa = RevisionAutoscaler(config or AutoscalerConfig(), scaling or RevisionScaling())
        self.ready = ready
        self.pods_start = pods_start  # False: pods never become ready (a broken image)
        self.in_path = True
        self.t = 0
        self.decisions: dict[int, ScaleDecision] = {}

    def report(self, s: int, load: float, rps: float = 0.0) -> None:
        if self.ready > 0:
            share, rps_share = load / self.ready, rps / self.ready
            proxied = share if self.in_path else 0.0
            for i in range(self.ready):
                self.kpa.record(
                    s,
                    Stat(
                        f"pod-{i}",
                        average_concurrent_requests=share,
                        average_proxied_concurrent_requests=proxied,
                        request_count=rps_share,
                        proxied_request_count=rps_share if self.in_path else 0.0,
                    ),
                )
            if self.in_path:
                self.kpa.record(
                    s, Stat(ACTIVATOR, average_concurrent_requests=load, request_count=rps)
                )
        elif load > 0:
            self.kpa.record(s, Stat(ACTIVATOR, average_concurrent_requests=load, request_count=rps))

    def tick(self, reachable: bool = True) -> ScaleDecision:
        d = self.kpa.tick(self.t, ready_pods=self.ready, reachable=reachable)
        self.decisions[self.t] = d
        self.in_path = d.activator_in_path
        if self.pods_start:
            self.ready = d.desired_pods
        return d

    def run(
        self,
        until: int,
        load: Callable[[int], float] = lambda s: 0.0,
        rps: Callable[[int], float] = lambda s: 0.0,
        reachable: bool = True,
    ) -> ScaleDecision:
        """Report every second and tick every 2 s up to and including ``until``."""
        d = self.decisions.get(self.t)
        while self.t <= until:
            self.report(self.t, load(self.t), rps(self.t))
            if self.t % 2 == 0:
                d = self.tick(reachable)
            self.t += 1
        assert d is not None
        return d

    def at(self, t: int) -> ScaleDecision:
        return self.decisions[t]


def config(**changes: object) -> AutoscalerConfig:
    return dataclasses.replace(AutoscalerConfig(), **changes)  # type: ignore[arg-type]


def steady(value: float) -> Callable[[int], float]:
    return lambda s: value


# ----------------------------------------------------------------------------- worked examples


@pytest.mark.parametrize(
    ("scaling", "load", "pods"),
    [
        (RevisionScaling(target=1, target_utilization_percentage=100), 10, 10),
        (RevisionScaling(), 350, 5),
        (RevisionScaling(container_concurrency=10), 70, 10),
    ],
    ids=[
        "10-requests-at-target-1-give-10-pods",
        "350-with-defaults-give-5",
        "cc-10-gives-target-7",
    ],
)
def test_worked_examples(scaling: RevisionScaling, load: float, pods: int) -> None:
    r = Revision(scaling=scaling, ready=1)
    assert r.run(0, steady(load)).desired_pods == pods


def test_rps_metric_scales_on_requests_per_second() -> None:
    r = Revision(scaling=RevisionScaling(metric="rps"), ready=1)
    d = r.run(10, rps=steady(280))
    assert d.desired_pods == 2  # 280 rps at 140 rps per pod
    assert "autoscaler_stable_requests_per_second" in d.gauges()


# ----------------------------------------------------------------------------- scale to zero

# (name, config, scaling, [(t, desired_pods, state, activator_in_path)])
Expect = tuple[int, int, str, bool]
ZERO_CASES: list[tuple[str, AutoscalerConfig, RevisionScaling, list[Expect]]] = [
    (
        "TBC 0: grace runs from the inactive mark",
        config(target_burst_capacity=0),
        RevisionScaling(),
        [
            (0, 1, ACTIVATING, True),  # created with initial scale 1, no pod ready yet
            (2, 1, ACTIVE, False),
            (60, 1, ACTIVE, False),  # active 58 s: keep 1
            (62, 1, INACTIVE, True),  # active a stable window: inactive, activator in
            (90, 1, INACTIVE, True),
            (92, 0, INACTIVE, True),  # inactive for the 30 s grace
            (200, 0, INACTIVE, True),
        ],
    ),
    (
        "TBC 211: activator already in path, the pod goes one tick after",
        config(),
        RevisionScaling(),
        [
            (2, 1, ACTIVE, True),  # 1 x 100 - 211 < 0: activator in path from the start
            (60, 1, ACTIVE, True),
            (62, 1, INACTIVE, True),
            (64, 0, INACTIVE, True),
        ],
    ),
    (
        "retention period longer than grace keeps the last pod",
        config(),
        RevisionScaling(scale_to_zero_pod_retention_period_s=90),
        [(62, 1, INACTIVE, True), (150, 1, INACTIVE, True), (152, 0, INACTIVE, True)],
    ),
    (
        "retention from the global config",
        config(scale_to_zero_pod_retention_period_s=40, target_burst_capacity=0),
        RevisionScaling(),
        [(62, 1, INACTIVE, True), (100, 1, INACTIVE, True), (102, 0, INACTIVE, True)],
    ),
    (
        "scale to zero disabled keeps one pod",
        config(enable_scale_to_zero=False),
        RevisionScaling(),
        [(62, 1, ACTIVE, True), (300, 1, ACTIVE, True)],
    ),
    (
        "a longer stable window waits longer",
        config(target_burst_capacity=0),
        RevisionScaling(window_s=120),
        [(120, 1, ACTIVE, False), (122, 1, INACTIVE, True), (152, 0, INACTIVE, True)],
    ),
    (
        "min-scale holds pods and never goes inactive",
        config(),
        RevisionScaling(min_scale=2),
        [(2, 2, ACTIVE, True), (300, 2, ACTIVE, True)],
    ),
]


@pytest.mark.parametrize(
    ("cfg", "scaling", "expected"), [c[1:] for c in ZERO_CASES], ids=[c[0] for c in ZERO_CASES]
)
def test_scale_to_zero(
    cfg: AutoscalerConfig, scaling: RevisionScaling, expected: list[Expect]
) -> None:
    r = Revision(cfg, scaling)
    r.run(max(t for t, *_ in expected))
    for t, pods, state, in_path in expected:
        d = r.at(t)
        assert (t, d.desired_pods, d.state, d.activator_in_path) == (t, pods, state, in_path), (
            d.reason
        )


def test_no_scale_to_zero_while_traffic_in_the_stable_window() -> None:
    r = Revision(config(target_burst_capacity=0))
    # One request-second of concurrency 1 at t=50: the stable average stays above 0 until t=110.
    r.run(120, lambda s: 1.0 if s == 50 else 0.0)
    assert r.at(108).desired_pods == 1 and r.at(108).state == ACTIVE
    r.run(200)
    assert r.at(112).state == INACTIVE
    assert r.at(142).desired_pods == 0


def test_min_scale_ignored_when_unreachable() -> None:
    r = Revision(config(target_burst_capacity=0), RevisionScaling(min_scale=3))
    r.run(20)
    assert r.at(20).desired_pods == 3
    r.run(200, reachable=False)
    # Down by more than half at once (no lower rate limit), then the scale-to-zero path.
    assert r.at(22).desired_pods == 1
    assert r.at(200).desired_pods == 0


def test_activation_from_zero_on_poke_uses_activation_scale() -> None:
    r = Revision(scaling=RevisionScaling(activation_scale=3))
    r.run(70)
    assert r.at(70).desired_pods == 0
    poke = Stat(ACTIVATOR, average_concurrent_requests=1.0)
    assert r.kpa.should_poke(poke)
    r.kpa.record(71.2, poke)
    d = r.kpa.tick(71.2, ready_pods=0)
    assert (d.desired_pods, d.state, d.activator_in_path) == (3, ACTIVATING, True)
    assert not r.kpa.should_poke(poke)  # no longer at zero


def test_stuck_activating_times_out_to_zero() -> None:
    r = Revision(pods_start=False)
    r.run(628)
    assert r.at(628).desired_pods == 1 and r.at(628).state == ACTIVATING
    r.run(630)
    assert r.at(630).desired_pods == 0 and r.at(630).state == INACTIVE


# ----------------------------------------------------------------------------- bounds


def test_max_scale_caps() -> None:
    r = Revision(scaling=RevisionScaling(max_scale=3), ready=1)
    d = r.run(4, steady(1000))
    assert d.desired_pods == 3
    assert d.decider_desired_pods > 3  # the decider wanted more; the bound applied


def test_global_max_scale_caps() -> None:
    r = Revision(config(max_scale=2), ready=1)
    assert r.run(4, steady(1000)).desired_pods == 2


def test_initial_scale_until_first_ready() -> None:
    r = Revision(scaling=RevisionScaling(initial_scale=3))
    r.ready = 0
    r.pods_start = False
    r.run(4)
    assert [r.at(t).desired_pods for t in (0, 2, 4)] == [3, 3, 3]
    r.pods_start = True
    r.ready = 3
    r.run(8)
    assert r.at(6).desired_pods == 3  # reached: initial scale is met this tick
    assert r.at(8).desired_pods == 1  # then idle pods go, by at most half


def test_zero_initial_scale_starts_inactive() -> None:
    cfg = config(allow_zero_initial_scale=True)
    r = Revision(cfg, RevisionScaling(initial_scale=0))
    d = r.run(0)
    assert (d.desired_pods, d.state, d.activator_in_path) == (0, INACTIVE, True)


def test_restored_at_zero_after_a_restart_stays_at_zero_until_asked() -> None:
    """Initialized before a restart and inactive then: no initial-scale pod, the activator in
    the path; a request (a poke) or min-scale brings pods as for any revision at zero."""
    kpa = RevisionAutoscaler(AutoscalerConfig(), RevisionScaling(initial_scale=2), now=100)
    kpa.restore(100, active=False)
    d = kpa.tick(100, ready_pods=0)
    assert (d.desired_pods, d.state, d.activator_in_path) == (0, INACTIVE, True)
    assert kpa.tick(700, ready_pods=0).desired_pods == 0  # no activation timeout either
    poke = Stat(ACTIVATOR, average_concurrent_requests=1.0)
    assert kpa.should_poke(poke)
    kpa.record(701, poke)
    assert kpa.tick(701, ready_pods=0).desired_pods == 1  # not initial-scale 2: spent
    held = RevisionAutoscaler(AutoscalerConfig(), RevisionScaling(min_scale=2), now=0)
    held.restore(0, active=False)
    assert held.tick(0, ready_pods=0).desired_pods == 2


def test_restored_active_after_a_restart_comes_back_activating_and_initialized() -> None:
    """It had pods when it stopped: they come back (the pods a Deployment would have kept)."""
    kpa = RevisionAutoscaler(AutoscalerConfig(), RevisionScaling(initial_scale=3), now=0)
    kpa.restore(0, active=True)
    assert kpa.scaler_state.initialized
    assert kpa.tick(0, ready_pods=0).state == ACTIVATING


# ----------------------------------------------------------------------------- activator in path

# (name, config, scaling, ready pods held by min-scale, activator in path)
PATH_CASES = [
    ("TBC 211, three idle pods: out of the path", config(), 3, False),
    ("TBC 211, two idle pods: in the path", config(), 2, True),
    ("TBC 0, one pod: out of the path", config(target_burst_capacity=0), 1, False),
    ("TBC -1, many pods: always in the path", config(target_burst_capacity=-1), 5, True),
]


@pytest.mark.parametrize(
    ("cfg", "pods", "in_path"), [c[1:] for c in PATH_CASES], ids=[c[0] for c in PATH_CASES]
)
def test_activator_in_path(cfg: AutoscalerConfig, pods: int, in_path: bool) -> None:
    r = Revision(cfg, RevisionScaling(min_scale=pods), ready=pods)
    d = r.run(10)
    assert d.desired_pods == pods
    assert d.activator_in_path is in_path
    assert (d.excess_burst_capacity >= 0) is not in_path or cfg.target_burst_capacity == 0


def test_burst_uses_the_panic_average() -> None:
    # 3 pods, panic average 50: floor(300 - 211 - 50) = 39 spare.
    r = Revision(config(), RevisionScaling(min_scale=3), ready=3)
    d = r.run(10, steady(50))
    assert d.excess_burst_capacity == 39
    assert not d.activator_in_path


# ----------------------------------------------------------------------------- panic and restart


def test_panic_mode_gauge_and_hold_during_a_spike() -> None:
    r = Revision(ready=1)
    r.run(20, steady(10))
    r.run(30, lambda s: 700.0 if s >= 22 else 10.0)
    assert r.at(24).panic_mode and r.at(24).gauges()["autoscaler_panic_mode"] == 1.0
    peak = max(r.at(t).desired_pods for t in range(22, 31, 2))
    r.run(60, steady(10))  # spike over; still panicking: never down
    assert all(r.at(t).desired_pods == peak for t in range(32, 61, 2))


def test_restart_next_to_running_pods_starts_in_panic() -> None:
    r = Revision(ready=4)
    d = r.run(0)
    assert d.panic_mode and d.desired_pods == 4
    r.run(60)
    assert r.at(60).desired_pods == 4  # an empty history does not scale it down
    r.run(64)
    # Panic started at t=0 and ends once a whole window has passed: then down by half per tick.
    assert not r.at(62).panic_mode and r.at(62).desired_pods == 2
    assert r.at(64).desired_pods == 1


# ----------------------------------------------------------------------------- live updates


def test_update_scaling_changes_target_without_resetting_windows() -> None:
    r = Revision(ready=2)
    before = r.run(30, steady(100))
    assert before.desired_pods == 2 and before.target_per_pod == 70
    r.kpa.update_scaling(RevisionScaling(target=10, target_utilization_percentage=100), now=31)
    after = r.kpa.tick(31, ready_pods=2)
    assert after.target_per_pod == 10
    assert after.stable_concurrency == pytest.approx(before.stable_concurrency)
    assert after.desired_pods == 10


def test_update_scaling_window_keeps_data() -> None:
    r = Revision(ready=1)
    r.run(30, steady(35))
    r.kpa.update_scaling(RevisionScaling(window_s=20), now=31)
    d = r.kpa.tick(31, ready_pods=1)
    assert d.has_data and d.stable_concurrency == pytest.approx(35.0)


def test_the_aggregation_algorithm_stays_the_one_at_creation() -> None:
    """Knative picks a collection's buckets once (the annotation is immutable on a revision):
    700 for 50 s, then 70, read linearly at t=60 even after a switch to weighted-exponential."""
    r = Revision(ready=10)
    r.run(50, steady(700))
    r.run(60, steady(70))
    r.kpa.update_scaling(
        RevisionScaling(metric_aggregation_algorithm="weighted-exponential"), now=60
    )
    d = r.kpa.tick(60, ready_pods=10)
    assert not r.kpa.spec.weighted_average
    # the linear average of the window (a weighted one would be near 70)
    assert d.stable_concurrency > 500


def test_a_scale_down_delay_changed_on_a_live_revision_waits_for_a_new_decider() -> None:
    """Knative's decider builds its delay window once (New); Update replaces only the spec.
    A delay added to a running revision does not hold its count; one set at creation does."""
    live = Revision(ready=5)
    live.run(60, steady(350))
    live.kpa.update_scaling(RevisionScaling(scale_down_delay_s=60), now=60)
    assert live.kpa.spec.scale_down_delay_s == 0
    created = Revision(scaling=RevisionScaling(scale_down_delay_s=60), ready=5)
    created.run(60, steady(350))
    after_live = live.run(130, steady(7))
    after_created = created.run(130, steady(7))
    assert after_live.desired_pods < 5  # no delay: it steps down
    assert after_created.desired_pods == 5  # held by the delay it was created with


def test_gauges_carry_knative_names() -> None:
    r = Revision(ready=1)
    g = r.run(4, steady(35)).gauges()
    assert set(g) == {
        "autoscaler_desired_pods",
        "autoscaler_stable_request_concurrency",
        "autoscaler_panic_request_concurrency",
        "autoscaler_target_concurrency_per_pod",
        "autoscaler_panic_mode",
        "autoscaler_excess_burst_capacity",
        "autoscaler_actual_pods",
    }
    assert g["autoscaler_target_concurrency_per_pod"] == 70


def test_no_data_before_first_report() -> None:
    d = RevisionAutoscaler(AutoscalerConfig(), RevisionScaling()).tick(0, ready_pods=0)
    assert not d.has_data and d.decider_desired_pods == -1 and d.desired_pods == 1
    assert "autoscaler_desired_pods" not in d.gauges()


def test_other_autoscaler_class_is_refused() -> None:
    with pytest.raises(ValueError, match="hpa"):
        RevisionAutoscaler(
            AutoscalerConfig(), RevisionScaling(autoscaler_class="hpa.autoscaling.knative.dev")
        )


# ----------------------------------------------------------------------------- settled


@pytest.mark.parametrize("delay_s", [0.0, 30.0])
def test_decider_settled_only_once_a_scale_down_has_stepped_to_its_end(delay_s: float) -> None:
    """``decider_settled``: after a panic to many pods and the load gone, the decider halves
    the count each tick (the scale-down rate) and a delay holds each step; settled only when
    the next decision is the last one and stays so, and then the ticks agree."""
    rev = Revision(
        config(scale_to_zero_grace_period_s=30.0),
        RevisionScaling(target=1, target_utilization_percentage=100, min_scale=1,
                        scale_down_delay_s=delay_s),
        ready=1,
    )  # fmt: skip
    rev.run(20, load=lambda s: 64.0 if 10 <= s < 16 else 0.0)
    assert rev.ready > 8
    states = []
    while rev.t < 400:
        d = rev.run(rev.t + 1)
        states.append((rev.t, d.desired_pods, rev.kpa.decider_settled(rev.t + 1, rev.ready)))
    first = next(i for i, (_, _, settled) in enumerate(states) if settled)
    assert states[first][1] == 1  # settled at min-scale, not on a step down
    assert {n for _, n, _ in states[first:]} == {1}
    assert all(s for _, _, s in states[first:])
    assert not any(s for _, n, s in states[:first] if n > 1)
