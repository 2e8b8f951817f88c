"""The policies a simulation compares; adding one is one small class.

A policy gives each revision its starting autoscaling annotations and, at ticks it asks for,
a chance to change them (as the tuner patches a live revision). The ones here:

- ``knative-default``: no annotations: target 100 at 70 %, scale to zero after the stable
  window and the 30 s grace period.
- ``kserve-default``: KServe writes ``min-scale: 1`` when ``minReplicas`` is unset.
- ``keepalive-10m``: a fixed 10-minute keep-alive after the last request: Knative drops the
  last replica a stable window after the traffic stops plus the retention period, so the
  retention is ``600 s - 60 s``.
- ``hybrid-histogram``: the idle-time policy of "Serverless in the Wild"
  (``autoscaler.tuner.HybridHistogramPolicy``), planned onto retention and ``min-scale`` by the
  tuner's own ``plan`` so both idle-time policies reach Knative the same way.
- ``oracle``: a static per-model target with hindsight: the model's true capacity and its
  objective. Under processor sharing a replica at concurrency ``c`` stretches service by
  ``c / capacity``, so the objective (``slowdown`` x service) holds up to
  ``slowdown x capacity``; the oracle sets that as the target and keeps Knative's 70 %
  utilization as burst headroom.
- ``modelscale``: the tuner (``autoscaler.tuner.recommend``) at its own tick period.
- ``modelscale-fixed-10m``: the same tuner with ``keepAlive.policy: fixed`` and 10 minutes:
  its targets, and the fixed keep-alive. Against ``modelscale`` it shows what the learned
  keep-alive and pre-warm do on their own; against ``keepalive-10m``, what the targets cost.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from autoscaler.sim.model import DEFAULT_COLD_START_MEDIAN_S, ModelSpec
from autoscaler.sim.seams import Policy, RevisionPolicy
from autoscaler.tuner import HybridHistogram, HybridHistogramPolicy, plan
from autoscaler.tuner.idle import Activity, observe_activity
from autoscaler.tuner.observation import RevisionObservation
from autoscaler.tuner.policy import format_target, recommend
from autoscaler.tuner.settings import KeepAliveSettings, LoopSettings, TunerConfig
from autoscaler.tuner.spec import MAX_OBJECTIVE_LATENCY_MS, ModelScalerSpec
from autoscaler.tuner.state import new_state
from autoscaler.tuner.windows import KeepAliveWindows

PREFIX = "autoscaling.knative.dev/"
TARGET = PREFIX + "target"
MIN_SCALE = PREFIX + "min-scale"
RETENTION = PREFIX + "scale-to-zero-pod-retention-period"
STABLE_WINDOW_S = 60.0
FIXED_KEEP_ALIVE_S = 600.0
OBJECTIVE_PERCENTILE = 95.0
# The simulated ModelScalers' spec.target.min: one request per replica at least. Without it a
# model whose objective the CRD cannot express (over 10 min) is driven to the 0.01 floor.
TUNER_TARGET_MIN = 1.0


@dataclass
class StaticRevision:
    """A revision whose annotations never change."""

    annotations: dict[str, str]

    def initial_annotations(self) -> dict[str, str]:
        return dict(self.annotations)

    def next_tick_s(self, now_s: float) -> float:
        return math.inf

    def tick(self, now_s: float, observation: RevisionObservation) -> dict[str, str] | None:
        return None


def _next_tick(
    now_s: float,
    period_s: float,
    resting: bool,
    last_tick_s: float,
    prewarm_at_s: float | None,
) -> float:
    """When a ticked policy looks next: the next multiple of its period, or, at rest, never.

    A revision at zero with no traffic changes nothing until a request comes or a planned
    pre-warm is due. The simulator asks again (``now_s`` after the last tick) when a request
    reaches the revision at rest: that ends the rest, and the policy ticks on its grid again,
    as the controller keeps ticking every revision in a cluster.
    """
    grid = math.floor(now_s / period_s) * period_s + period_s
    if not resting or now_s > last_tick_s:
        return grid
    if prewarm_at_s is not None and prewarm_at_s > now_s:
        return max(grid, math.ceil(prewarm_at_s / period_s) * period_s)
    return math.inf


@dataclass(frozen=True)
class StaticPolicy:
    """The same annotations on every revision."""

    name: str
    annotations: dict[str, str] = field(default_factory=dict)

    def for_revision(self, model: ModelSpec) -> RevisionPolicy:
        return StaticRevision(dict(self.annotations))


def knative_default() -> Policy:
    return StaticPolicy("knative-default")


def kserve_default() -> Policy:
    return StaticPolicy("kserve-default", {MIN_SCALE: "1"})


def fixed_keep_alive(keep_alive_s: float = FIXED_KEEP_ALIVE_S) -> Policy:
    retention = max(0.0, keep_alive_s - STABLE_WINDOW_S)
    return StaticPolicy(f"keepalive-{keep_alive_s / 60:g}m", {RETENTION: f"{retention:g}s"})


def oracle_target(model: ModelSpec) -> float:
    """The hindsight target: the concurrency per replica at which the objective just holds."""
    return model.objective_slowdown * model.capacity


@dataclass(frozen=True)
class OraclePolicy:
    name: str = "oracle"

    def for_revision(self, model: ModelSpec) -> RevisionPolicy:
        return StaticRevision({TARGET: format_target(oracle_target(model))})


def tuner_objective_ms(model: ModelSpec) -> float:
    """The model's objective as the tuner's spec takes it: its p95 latency, ms.

    At no load the p95 latency is the p95 service time; the objective allows ``slowdown`` of it.
    """
    p95 = float(model.service.sample_quantile(OBJECTIVE_PERCENTILE / 100.0))
    objective = max(model.objective_slowdown * p95, model.objective_floor_s)
    return min(objective * 1000.0, MAX_OBJECTIVE_LATENCY_MS)


@dataclass
class TunerRevision:
    """The tuner on one revision: ``recommend`` each tick, changed annotations patched."""

    spec: ModelScalerSpec
    config: TunerConfig
    name: str
    state: object = None
    annotations: dict[str, str] = field(default_factory=dict)
    resting: bool = False
    prewarm_at_s: float | None = None
    last_tick_s: float = -math.inf

    def __post_init__(self) -> None:
        self.state = new_state(self.name, self.config.target.bin_ratio)

    def initial_annotations(self) -> dict[str, str]:
        return dict(self.annotations)

    def next_tick_s(self, now_s: float) -> float:
        period = self.config.loop.tick_period_s
        return _next_tick(now_s, period, self.resting, self.last_tick_s, self.prewarm_at_s)

    def tick(self, now_s: float, observation: RevisionObservation) -> dict[str, str] | None:
        self.last_tick_s = now_s
        rec, self.state = recommend(observation, self.spec, self.config, self.state, now_s)  # type: ignore[arg-type]
        self.prewarm_at_s = rec.prewarm_at_s
        # at rest only while nothing is asked of it: a pre-warm's min-scale 1 brings a replica
        # (the engine no longer wakes us) and must be lowered again when its window closes
        self.resting = (
            observation.ready_replicas == 0
            and observation.request_count == 0
            and (not observation.arrivals_s)
            and rec.min_scale == 0
        )
        if not rec.should_apply:
            return None
        self.annotations = {**self.annotations, **rec.changed_annotations()}
        return dict(self.annotations)


@dataclass(frozen=True)
class TunerPolicy:
    """modelscale's tuner with the simulator's cold start and its default settings."""

    name: str = "modelscale"
    cold_start_s: float = DEFAULT_COLD_START_MEDIAN_S
    config: TunerConfig | None = None
    # set: keepAlive.policy fixed at this many seconds after the last request (else learned)
    keep_alive_fixed_s: float | None = None

    def for_revision(self, model: ModelSpec) -> RevisionPolicy:
        config = self.config or TunerConfig(
            loop=LoopSettings(),
            keep_alive=KeepAliveSettings(cold_start_s=self.cold_start_s),
        )
        spec = ModelScalerSpec(
            target_ref_name=model.name,
            objective_latency_ms=tuner_objective_ms(model),
            objective_percentile=OBJECTIVE_PERCENTILE,
            target_min=TUNER_TARGET_MIN,
            keep_alive_policy="learned" if self.keep_alive_fixed_s is None else "fixed",
            keep_alive_fixed_s=self.keep_alive_fixed_s,
            replica_memory_mb=model.memory_mb,
        )
        return TunerRevision(spec, config, model.name)


@dataclass
class HybridRevision:
    """The hybrid-histogram keep-alive on one revision, ticked like the tuner."""

    policy: HybridHistogramPolicy
    settings: KeepAliveSettings
    tick_period_s: float
    hist: HybridHistogram = field(default_factory=HybridHistogram)
    activity: Activity = field(default_factory=Activity)
    annotations: dict[str, str] = field(default_factory=dict)
    resting: bool = False
    prewarm_at_s: float | None = None
    last_tick_s: float = -math.inf
    windows: KeepAliveWindows | None = None  # the policy's answer for the histogram as it is

    def initial_annotations(self) -> dict[str, str]:
        return dict(self.annotations)

    def next_tick_s(self, now_s: float) -> float:
        return _next_tick(
            now_s, self.tick_period_s, self.resting, self.last_tick_s, self.prewarm_at_s
        )

    def tick(self, now_s: float, observation: RevisionObservation) -> dict[str, str] | None:
        self.last_tick_s = now_s
        # the paper bins every idle time (no minimum), in minutes
        gaps, self.activity = observe_activity(observation, self.activity, 0.0)
        self.hist = self.policy.record_many(self.hist, gaps)
        if gaps or self.windows is None:  # decide reads the histogram alone
            self.windows = self.policy.decide(self.hist)
        windows = self.windows
        p = plan(windows, self.activity.last_request_s, now_s, self.settings, self.tick_period_s)
        self.prewarm_at_s = p.prewarm_at_s
        self.resting = (
            observation.ready_replicas == 0 and not observation.arrivals_s and p.min_scale == 0
        )
        wanted = {RETENTION: f"{round(p.retention_s)}s", MIN_SCALE: str(p.min_scale)}
        if wanted == self.annotations:
            return None
        self.annotations = wanted
        return dict(wanted)


@dataclass(frozen=True)
class HybridHistogramKeepAlive:
    name: str = "hybrid-histogram"
    cold_start_s: float = DEFAULT_COLD_START_MEDIAN_S
    tick_period_s: float = 30.0

    def for_revision(self, model: ModelSpec) -> RevisionPolicy:
        return HybridRevision(
            HybridHistogramPolicy(),
            KeepAliveSettings(cold_start_s=self.cold_start_s),
            self.tick_period_s,
        )


POLICY_NAMES = (
    "knative-default",
    "kserve-default",
    "keepalive-10m",
    "hybrid-histogram",
    "oracle",
    "modelscale",
    "modelscale-fixed-10m",
)


def make_policies(names: list[str] | tuple[str, ...], cold_start_s: float) -> list[Policy]:
    """The named policies, in the order given; a name given twice is an error."""
    makers: dict[str, Callable[[], Policy]] = {
        "knative-default": knative_default,
        "kserve-default": kserve_default,
        "keepalive-10m": fixed_keep_alive,
        "hybrid-histogram": lambda: HybridHistogramKeepAlive(cold_start_s=cold_start_s),
        "oracle": OraclePolicy,
        "modelscale": lambda: TunerPolicy(cold_start_s=cold_start_s),
        "modelscale-fixed-10m": lambda: TunerPolicy(
            "modelscale-fixed-10m", cold_start_s, keep_alive_fixed_s=FIXED_KEEP_ALIVE_S
        ),
    }
    out: list[Policy] = []
    for i, name in enumerate(names):
        if name not in makers:
            raise ValueError(f"unknown policy {name!r}; known: {', '.join(POLICY_NAMES)}")
        if name in names[:i]:
            raise ValueError(f"--policies: {name} is given twice (the report has one per name)")
        out.append(makers[name]())
    return out
