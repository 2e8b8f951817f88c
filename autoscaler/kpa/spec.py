"""The resolved scaling spec of one revision: global config and annotations merged into numbers.

Mirrors knative/serving ``pkg/reconciler/autoscaling/kpa/resources/decider.go`` (``MakeDecider``),
``pkg/reconciler/autoscaling/resources/target.go`` (``ResolveMetricTarget``) and ``metric.go``
(``MakeMetric``: the panic window), and the PodAutoscaler's ``ScaleBounds``.

Worked numbers: containerConcurrency 0 and no annotations give total 100 and target
``100 x 0.7 = 70`` concurrent requests per pod; metric rps gives ``200 x 0.7 = 140`` rps; a
``target`` annotation of 10 with containerConcurrency 4 gives total ``min(10, 4) = 4`` and target
``2.8``. The panic window is ``60 s x 10 % = 6 s``.
"""

from __future__ import annotations

from dataclasses import dataclass

from autoscaler.kpa.annotations import CONCURRENCY, RPS, WEIGHTED_EXPONENTIAL, RevisionScaling
from autoscaler.kpa.settings import TARGET_MIN, AutoscalerConfig

# The rps path uses Knative's fixed default utilization (config.TargetUtilization), which the
# ConfigMap does not expose; only the annotation changes it.
RPS_TARGET_UTILIZATION = 0.7
BUCKET_S = 1.0


@dataclass(frozen=True, slots=True)
class ScalingSpec:
    """Everything the decider and the scaler need for one revision, in plain numbers."""

    metric: str
    target_per_pod: float  # the value each pod should carry (Knative's TargetValue)
    total_per_pod: float  # the most a pod may carry (TotalValue), used for burst capacity
    target_burst_capacity: float
    panic_threshold: float  # a ratio: 2.0 for 200 %
    stable_window_s: float
    panic_window_s: float
    weighted_average: bool
    max_scale_up_rate: float
    max_scale_down_rate: float
    scale_down_delay_s: float
    activation_scale: int
    activator_capacity: float
    min_scale: int
    max_scale: int
    initial_scale: int
    enable_scale_to_zero: bool
    scale_to_zero_grace_period_s: float
    scale_to_zero_pod_retention_period_s: float


def resolve_target(config: AutoscalerConfig, scaling: RevisionScaling) -> tuple[float, float]:
    """``(target, total)`` per pod: ``target = max(0.01, total x utilization)``."""
    cc = scaling.container_concurrency
    if scaling.metric == RPS:
        total = config.rps_target_default
        utilization = RPS_TARGET_UTILIZATION
    else:
        total = float(cc) if cc != 0 else config.container_concurrency_target_default
        utilization = config.container_concurrency_target_fraction
    if scaling.target is not None:
        total = scaling.target
        if scaling.metric == CONCURRENCY and cc != 0:
            # Never aim above what a pod can hold.
            total = min(scaling.target, float(cc))
    if scaling.target_utilization_percentage is not None:
        utilization = scaling.target_utilization_percentage / 100.0
    return max(TARGET_MIN, total * utilization), total


def panic_window_s(stable_window_s: float, panic_window_percentage: float) -> float:
    """Stable window x percentage, rounded to whole 1 s buckets, at least one bucket.

    As Knative computes it (``resources.MakeMetric``): the product in float nanoseconds,
    truncated to whole nanoseconds (``time.Duration``), then ``Round(time.Second)``, which
    rounds halves up. The truncation matters where the product lands a hair under a half:
    125 s at 16.4 % is 20.4999999999 s, so 20 s, not the 21 s the product in seconds gives."""
    bucket_ns = round(BUCKET_S * 1e9)
    ns = int(float(round(stable_window_s * 1e9)) * panic_window_percentage / 100.0)
    rest = ns % bucket_ns
    rounded_ns = ns - rest if rest + rest < bucket_ns else ns + bucket_ns - rest
    return max(BUCKET_S, rounded_ns / 1e9)


def resolve(config: AutoscalerConfig, scaling: RevisionScaling) -> ScalingSpec:
    """Merge the global config and a revision's annotations, annotation first."""
    target, total = resolve_target(config, scaling)
    stable = scaling.window_s if scaling.window_s is not None else config.stable_window_s
    pwp = (
        scaling.panic_window_percentage
        if scaling.panic_window_percentage is not None
        else config.panic_window_percentage
    )
    ptp = (
        scaling.panic_threshold_percentage
        if scaling.panic_threshold_percentage is not None
        else config.panic_threshold_percentage
    )

    def pick(value: float | int | None, default: float | int) -> float:
        return float(value) if value is not None else float(default)

    return ScalingSpec(
        metric=scaling.metric,
        target_per_pod=target,
        total_per_pod=total,
        target_burst_capacity=pick(scaling.target_burst_capacity, config.target_burst_capacity),
        panic_threshold=ptp / 100.0,
        stable_window_s=stable,
        panic_window_s=panic_window_s(stable, pwp),
        weighted_average=scaling.metric_aggregation_algorithm == WEIGHTED_EXPONENTIAL,
        max_scale_up_rate=config.max_scale_up_rate,
        max_scale_down_rate=config.max_scale_down_rate,
        scale_down_delay_s=pick(scaling.scale_down_delay_s, config.scale_down_delay_s),
        activation_scale=int(pick(scaling.activation_scale, config.activation_scale)),
        activator_capacity=config.activator_capacity,
        min_scale=int(pick(scaling.min_scale, config.min_scale)),
        max_scale=int(pick(scaling.max_scale, config.max_scale)),
        initial_scale=int(pick(scaling.initial_scale, config.initial_scale)),
        enable_scale_to_zero=config.enable_scale_to_zero,
        scale_to_zero_grace_period_s=config.scale_to_zero_grace_period_s,
        scale_to_zero_pod_retention_period_s=pick(
            scaling.scale_to_zero_pod_retention_period_s,
            config.scale_to_zero_pod_retention_period_s,
        ),
    )
