"""Per-revision autoscaling settings: the ``autoscaling.knative.dev/*`` annotations.

Mirrors knative/serving ``pkg/apis/autoscaling/annotation_validation.go`` (the ranges) and the
PodAutoscaler accessors in ``pkg/apis/autoscaling/v1alpha1/pa_lifecycle.go``. ``annotation_problems``
returns every problem at once (what an API server answers on apply); ``RevisionScaling.from_annotations``
raises the first as ``InvalidAnnotation``.

Departures from Knative: the legacy camelCase keys (``minScale``, ``maxScale``, ...) are not read;
``activation-scale`` is checked to be an integer >= 1 and at most a non-zero ``max-scale``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from autoscaler.kpa.settings import (
    INT32_MAX,
    PANIC_THRESHOLD_PERCENTAGE_MAX,
    PANIC_THRESHOLD_PERCENTAGE_MIN,
    PANIC_WINDOW_PERCENTAGE_MAX,
    PANIC_WINDOW_PERCENTAGE_MIN,
    TARGET_MIN,
    WINDOW_MAX_S,
    WINDOW_MIN_S,
    AutoscalerConfig,
    InvalidAnnotation,
    is_whole_seconds,
    parse_duration_s,
    parse_float,
    parse_int32,
)

PREFIX = "autoscaling.knative.dev/"
KPA_CLASS = "kpa.autoscaling.knative.dev"
HPA_CLASS = "hpa.autoscaling.knative.dev"
CONCURRENCY = "concurrency"
RPS = "rps"
LINEAR = "linear"
WEIGHTED_EXPONENTIAL = "weighted-exponential"
_WEIGHTED_ALIASES = (WEIGHTED_EXPONENTIAL, "weightedExponential")

CLASS_KEY = PREFIX + "class"
METRIC_KEY = PREFIX + "metric"
TARGET_KEY = PREFIX + "target"
TARGET_UTILIZATION_KEY = PREFIX + "target-utilization-percentage"
TARGET_BURST_CAPACITY_KEY = PREFIX + "target-burst-capacity"
WINDOW_KEY = PREFIX + "window"
PANIC_WINDOW_PERCENTAGE_KEY = PREFIX + "panic-window-percentage"
PANIC_THRESHOLD_PERCENTAGE_KEY = PREFIX + "panic-threshold-percentage"
MIN_SCALE_KEY = PREFIX + "min-scale"
MAX_SCALE_KEY = PREFIX + "max-scale"
INITIAL_SCALE_KEY = PREFIX + "initial-scale"
ACTIVATION_SCALE_KEY = PREFIX + "activation-scale"
SCALE_DOWN_DELAY_KEY = PREFIX + "scale-down-delay"
RETENTION_KEY = PREFIX + "scale-to-zero-pod-retention-period"
AGGREGATION_KEY = PREFIX + "metric-aggregation-algorithm"
CONTAINER_CONCURRENCY_KEY = "containerConcurrency"
CONTAINER_CONCURRENCY_MAX = 1000


@dataclass(frozen=True, slots=True)
class RevisionScaling:
    """One revision's autoscaling overrides; ``None`` means "use the global config"."""

    autoscaler_class: str = KPA_CLASS
    metric: str = CONCURRENCY
    target: float | None = None
    target_utilization_percentage: float | None = None
    target_burst_capacity: float | None = None
    window_s: float | None = None
    panic_window_percentage: float | None = None
    panic_threshold_percentage: float | None = None
    min_scale: int | None = None
    max_scale: int | None = None
    initial_scale: int | None = None
    activation_scale: int | None = None
    scale_down_delay_s: float | None = None
    scale_to_zero_pod_retention_period_s: float | None = None
    metric_aggregation_algorithm: str = LINEAR
    container_concurrency: int = 0

    @property
    def is_kpa(self) -> bool:
        return self.autoscaler_class == KPA_CLASS

    @classmethod
    def from_annotations(
        cls,
        annotations: Mapping[str, str],
        container_concurrency: int = 0,
        config: AutoscalerConfig | None = None,
    ) -> RevisionScaling:
        """Parse a revision's annotations; raises the first problem as ``InvalidAnnotation``."""
        problems = annotation_problems(annotations, container_concurrency, config)
        if problems:
            raise problems[0]
        a = annotations

        def flt(key: str) -> float | None:
            return parse_float(a[key]) if key in a else None

        def num(key: str) -> int | None:
            return parse_int32(a[key]) if key in a else None

        def dur(key: str) -> float | None:
            return parse_duration_s(a[key]) if key in a else None

        algorithm = a.get(AGGREGATION_KEY, LINEAR)
        return cls(
            autoscaler_class=a.get(CLASS_KEY, KPA_CLASS),
            metric=a.get(METRIC_KEY, CONCURRENCY),
            target=flt(TARGET_KEY),
            target_utilization_percentage=flt(TARGET_UTILIZATION_KEY),
            target_burst_capacity=flt(TARGET_BURST_CAPACITY_KEY),
            window_s=dur(WINDOW_KEY),
            panic_window_percentage=flt(PANIC_WINDOW_PERCENTAGE_KEY),
            panic_threshold_percentage=flt(PANIC_THRESHOLD_PERCENTAGE_KEY),
            min_scale=num(MIN_SCALE_KEY),
            max_scale=num(MAX_SCALE_KEY),
            initial_scale=num(INITIAL_SCALE_KEY),
            activation_scale=num(ACTIVATION_SCALE_KEY),
            scale_down_delay_s=dur(SCALE_DOWN_DELAY_KEY),
            scale_to_zero_pod_retention_period_s=dur(RETENTION_KEY),
            metric_aggregation_algorithm=(
                WEIGHTED_EXPONENTIAL if algorithm in _WEIGHTED_ALIASES else LINEAR
            ),
            container_concurrency=container_concurrency,
        )


def annotation_problems(
    annotations: Mapping[str, str],
    container_concurrency: int = 0,
    config: AutoscalerConfig | None = None,
) -> list[InvalidAnnotation]:
    """Every problem with a revision's autoscaling annotations, in a stable order; [] if none."""
    cfg = config if config is not None else AutoscalerConfig()
    a = annotations
    problems: list[InvalidAnnotation] = []

    def bad(key: str, allowed: str) -> None:
        problems.append(InvalidAnnotation(key, a.get(key, ""), allowed))

    def float_in(key: str, lo: float, hi: float, allowed: str) -> None:
        if key not in a:
            return
        try:
            value = parse_float(a[key])
        except ValueError:
            bad(key, allowed)
            return
        if not lo <= value <= hi:
            bad(key, allowed)

    def int_ge0(key: str) -> int:
        if key not in a:
            return 0
        try:
            value = parse_int32(a[key])
        except ValueError:
            bad(key, f"must be an integer in [0, {INT32_MAX}]")
            return 0
        if value < 0:
            bad(key, f"must be an integer in [0, {INT32_MAX}]")
            return 0
        return value

    def duration_in(key: str, lo: float, allowed: str) -> None:
        if key not in a:
            return
        try:
            value = parse_duration_s(a[key])
        except ValueError:
            bad(key, allowed)
            return
        if not lo <= value <= WINDOW_MAX_S:
            bad(key, allowed)
        elif not is_whole_seconds(value):
            bad(key, "must have at most second precision")

    cls_value = a.get(CLASS_KEY, KPA_CLASS)
    if (
        CLASS_KEY in a
        and cls_value.endswith("autoscaling.knative.dev")
        and cls_value not in (KPA_CLASS, HPA_CLASS)
    ):
        bad(CLASS_KEY, f"must be {KPA_CLASS} or {HPA_CLASS}")
    is_kpa = cls_value == KPA_CLASS

    # Scale bounds.
    lo = int_ge0(MIN_SCALE_KEY)
    hi = int_ge0(MAX_SCALE_KEY)
    if hi != 0 and hi < lo:
        bad(MAX_SCALE_KEY, f"must be 0 (no limit) or >= min-scale ({lo})")
    if MAX_SCALE_KEY in a and cfg.max_scale_limit > 0 and not 1 <= hi <= cfg.max_scale_limit:
        bad(MAX_SCALE_KEY, f"must be in [1, {cfg.max_scale_limit}] (max-scale-limit)")

    # Floats.
    float_in(
        PANIC_WINDOW_PERCENTAGE_KEY,
        PANIC_WINDOW_PERCENTAGE_MIN,
        PANIC_WINDOW_PERCENTAGE_MAX,
        "must be a number in [1, 100]",
    )
    float_in(
        PANIC_THRESHOLD_PERCENTAGE_KEY,
        PANIC_THRESHOLD_PERCENTAGE_MIN,
        PANIC_THRESHOLD_PERCENTAGE_MAX,
        "must be a number in [110, 1000]",
    )
    float_in(TARGET_KEY, TARGET_MIN, float("inf"), f"must be a number >= {TARGET_MIN}")
    float_in(TARGET_UTILIZATION_KEY, 1.0, 100.0, "must be a number in [1, 100]")
    if TARGET_BURST_CAPACITY_KEY in a:
        try:
            tbc = parse_float(a[TARGET_BURST_CAPACITY_KEY])
        except ValueError:
            tbc = -2.0
        if tbc < 0 and tbc != -1:
            bad(
                TARGET_BURST_CAPACITY_KEY, "must be a number >= 0, or -1 (activator always in path)"
            )

    # Durations.
    duration_in(WINDOW_KEY, WINDOW_MIN_S, "must be a duration in [6s, 1h]")
    duration_in(RETENTION_KEY, 0.0, "must be a duration in [0s, 1h]")
    duration_in(SCALE_DOWN_DELAY_KEY, 0.0, "must be a duration in [0s, 1h]")

    # Metric and aggregation algorithm (only the KPA's values are checked, as Knative does).
    if METRIC_KEY in a:
        metric = a[METRIC_KEY]
        if is_kpa and metric not in (CONCURRENCY, RPS):
            bad(METRIC_KEY, f"must be {CONCURRENCY} or {RPS} for the KPA")
        elif cls_value == HPA_CLASS and not metric:
            bad(METRIC_KEY, "must not be empty")
    if is_kpa and a.get(AGGREGATION_KEY) and a[AGGREGATION_KEY] not in (LINEAR, *_WEIGHTED_ALIASES):
        bad(AGGREGATION_KEY, f"must be {LINEAR} or {WEIGHTED_EXPONENTIAL}")

    # Initial and activation scale.
    if INITIAL_SCALE_KEY in a:
        least = 0 if cfg.allow_zero_initial_scale else 1
        try:
            initial = parse_int32(a[INITIAL_SCALE_KEY])
        except ValueError:
            initial = -1
        if initial < least:
            bad(
                INITIAL_SCALE_KEY,
                f"must be an integer >= {least} (0 needs allow-zero-initial-scale)",
            )
    if ACTIVATION_SCALE_KEY in a:
        try:
            activation = parse_int32(a[ACTIVATION_SCALE_KEY])
        except ValueError:
            activation = 0
        if activation < 1:
            bad(ACTIVATION_SCALE_KEY, f"must be an integer in [1, {INT32_MAX}]")
        elif hi != 0 and activation > hi:
            bad(ACTIVATION_SCALE_KEY, f"must be at most max-scale ({hi})")

    if not 0 <= container_concurrency <= CONTAINER_CONCURRENCY_MAX:
        problems.append(
            InvalidAnnotation(
                CONTAINER_CONCURRENCY_KEY,
                str(container_concurrency),
                f"must be an integer in [0, {CONTAINER_CONCURRENCY_MAX}]",
            )
        )
    return problems
