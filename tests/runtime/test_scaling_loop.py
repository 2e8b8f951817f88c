"""The one-machine scaling loop: reports in, KPA decisions out to the pools (no processes)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from autoscaler.clock import ManualClock
from autoscaler.kpa import AutoscalerConfig, RevisionScaling
from autoscaler.runtime.autoscaling import ScalingLoop
from autoscaler.runtime.spec import RevisionKey
from autoscaler.runtime.stats import Stat

KEY = RevisionKey("models", "iris-predictor-00001")


class Pools:
    """The loop's view of the data plane: desired counts set, ready counts given."""

    def __init__(self) -> None:
        self.desired: dict[RevisionKey, int] = {}
        self.ready: dict[RevisionKey, int] = {}
        self.in_path: dict[RevisionKey, bool] = {}

    def set_desired(self, key: RevisionKey, n: int) -> None:
        self.desired[key] = n

    def set_activator_in_path(self, key: RevisionKey, in_path: bool) -> None:
        self.in_path[key] = in_path

    def ready_replicas(self, key: RevisionKey) -> int:
        return self.ready.get(key, 0)


def stat(concurrency: float, t: float, pod: str = "p1") -> Stat:
    return Stat(pod, concurrency, 0.0, concurrency, 0.0, 10.0, t)


def scaling(**annotations: str) -> RevisionScaling:
    ann = {
        "autoscaling.knative.dev/window": "6s",
        **{f"autoscaling.knative.dev/{k.replace('_', '-')}": v for k, v in annotations.items()},
    }
    return RevisionScaling.from_annotations(ann)


def test_steady_load_reaches_kpa_formula_and_exports_gauges() -> None:
    clock, pools, registry = ManualClock(), Pools(), CollectorRegistry()
    loop = ScalingLoop(pools, clock, registry=registry)
    loop.add_revision(
        KEY, scaling(target="1", min_scale="0"), configuration="iris-predictor", reachable=True
    )
    pools.ready[KEY] = 1
    for t in range(1, 7):
        clock.set(float(t))
        loop.record(KEY, stat(10.0, t))
    decisions = loop.tick(clock.now())
    # 10 concurrent requests at target 1 (utilization 70 % -> 0.7 per pod): ceil(10 / 0.7) = 15
    assert decisions[KEY].desired_pods == 15
    assert pools.desired[KEY] == 15
    value = registry.get_sample_value(
        "autoscaler_desired_pods",
        {
            "namespace_name": "models",
            "configuration_name": "iris-predictor",
            "revision_name": KEY.name,
        },
    )
    assert value == 15


def test_request_at_zero_pokes_and_scales_from_zero() -> None:
    clock, pools = ManualClock(), Pools()
    config = AutoscalerConfig(allow_zero_initial_scale=True)
    loop = ScalingLoop(pools, clock, config=config)
    ann = {"autoscaling.knative.dev/min-scale": "0", "autoscaling.knative.dev/initial-scale": "0"}
    loop.add_revision(
        KEY, RevisionScaling.from_annotations(ann, config=config), configuration="c", reachable=True
    )
    loop.tick(0.0)
    assert pools.desired[KEY] == 0
    clock.set(1.0)
    loop.record(KEY, stat(1.0, 1.0, pod="activator"))
    loop.poke(KEY)  # what the activator does on the first request at zero
    decision = loop.decide(KEY, clock.now())
    assert decision is not None and decision.desired_pods >= 1


def test_annotation_change_applies_without_resetting_windows() -> None:
    clock, pools = ManualClock(), Pools()
    loop = ScalingLoop(pools, clock)
    loop.add_revision(KEY, scaling(target="10", min_scale="0"), configuration="c", reachable=True)
    pools.ready[KEY] = 1
    for t in range(1, 7):
        clock.set(float(t))
        loop.record(KEY, stat(7.0, t))
    assert loop.tick(clock.now())[KEY].desired_pods == 1
    loop.update_scaling(KEY, scaling(target="1", min_scale="0"))
    # the 6 s of history are still there: 7 / 0.7 = 10 pods at once
    assert loop.tick(clock.now())[KEY].desired_pods == 10


def test_idle_revision_returns_to_zero() -> None:
    clock, pools = ManualClock(), Pools()
    loop = ScalingLoop(pools, clock)
    loop.add_revision(KEY, scaling(min_scale="0", target="1"), configuration="c", reachable=True)
    pools.ready[KEY] = 1
    clock.set(1.0)
    loop.record(KEY, stat(0.5, 1.0))
    t = 1.0
    while t < 200 and pools.desired.get(KEY, 1) != 0:
        t += 2.0
        clock.set(t)
        loop.record(KEY, stat(0.0, t))
        loop.tick(t)
        if pools.desired[KEY] == 0:
            pools.ready[KEY] = 0
    assert pools.desired[KEY] == 0
    assert pools.in_path[KEY] is True
    # not before the 6 s window has passed with no traffic
    assert t > 6.0
