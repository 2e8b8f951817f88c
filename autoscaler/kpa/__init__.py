"""Knative's Pod Autoscaler (KPA) as a pure library: no I/O, no clock; ``now`` is an argument.

Mirrors knative/serving ``pkg/autoscaler/`` and ``pkg/reconciler/autoscaling/kpa/``. Both the
one-machine runtime and the trace simulator drive it the same way::

    from autoscaler.kpa import AutoscalerConfig, RevisionAutoscaler, RevisionScaling, Stat

    config = AutoscalerConfig.from_configmap(configmap_data)
    scaling = RevisionScaling.from_annotations(annotations, container_concurrency=0, config=config)
    kpa = RevisionAutoscaler(config, scaling, now=created_at)
    kpa.record(now, Stat(pod_name="p1", average_concurrent_requests=3.0))
    decision = kpa.tick(now, ready_pods=1, reachable=True)
    decision.desired_pods, decision.activator_in_path, decision.gauges()

Modules, one concept each: ``settings`` (config-autoscaler), ``annotations`` (per-revision
annotations and their validation), ``spec`` (the two merged into numbers), ``windows`` (bucketed
averages and the max window), ``collector`` (reports to revision totals), ``decider`` (the
autoscaler decision), ``scaler`` (bounds, scale to zero, activator, activeness), ``decision``
(the frozen result) and ``revision`` (one revision's KPA).
"""

from autoscaler.kpa.annotations import (
    CONCURRENCY,
    KPA_CLASS,
    LINEAR,
    PREFIX,
    RPS,
    WEIGHTED_EXPONENTIAL,
    RevisionScaling,
    annotation_problems,
)
from autoscaler.kpa.collector import MetricCollector, Stat
from autoscaler.kpa.decider import Decider, DeciderResult
from autoscaler.kpa.decision import ScaleDecision
from autoscaler.kpa.revision import RevisionAutoscaler
from autoscaler.kpa.scaler import ACTIVATING, ACTIVE, INACTIVE, ScalerState
from autoscaler.kpa.settings import (
    AutoscalerConfig,
    InvalidAnnotation,
    InvalidConfig,
    InvalidSetting,
    parse_duration_s,
)
from autoscaler.kpa.spec import ScalingSpec, resolve
from autoscaler.kpa.windows import MaxWindow, TimedBuckets, WeightedBuckets

__all__ = [
    "ACTIVATING",
    "ACTIVE",
    "CONCURRENCY",
    "INACTIVE",
    "KPA_CLASS",
    "LINEAR",
    "PREFIX",
    "RPS",
    "WEIGHTED_EXPONENTIAL",
    "AutoscalerConfig",
    "Decider",
    "DeciderResult",
    "InvalidAnnotation",
    "InvalidConfig",
    "InvalidSetting",
    "MaxWindow",
    "MetricCollector",
    "RevisionAutoscaler",
    "RevisionScaling",
    "ScaleDecision",
    "ScalerState",
    "ScalingSpec",
    "Stat",
    "TimedBuckets",
    "WeightedBuckets",
    "annotation_problems",
    "parse_duration_s",
    "resolve",
]
