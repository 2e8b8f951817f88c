"""Parsing config-autoscaler and the autoscaling annotations, with every validation range."""

from __future__ import annotations

import pytest

from autoscaler.kpa.annotations import PREFIX, RevisionScaling, annotation_problems
from autoscaler.kpa.settings import (
    AutoscalerConfig,
    InvalidAnnotation,
    InvalidConfig,
    parse_duration_s,
)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("60s", 60.0),
        ("1m30s", 90.0),
        ("1h", 3600.0),
        ("1.5m", 90.0),
        ("500ms", 0.5),
        ("0", 0.0),
        ("2h0m0s", 7200.0),
        ("-1s", -1.0),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration_s(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "60", "1x", "s", "1m 30s", "abc"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration_s(text)


def test_empty_configmap_gives_the_knative_defaults() -> None:
    cfg = AutoscalerConfig.from_configmap({})
    assert cfg == AutoscalerConfig()
    assert (cfg.max_scale_up_rate, cfg.max_scale_down_rate) == (1000.0, 2.0)
    assert (cfg.stable_window_s, cfg.scale_to_zero_grace_period_s) == (60.0, 30.0)
    assert (cfg.target_burst_capacity, cfg.container_concurrency_target_percentage) == (211.0, 70.0)
    assert (cfg.panic_window_percentage, cfg.panic_threshold_percentage) == (10.0, 200.0)
    assert (cfg.initial_scale, cfg.activation_scale, cfg.max_scale) == (1, 1, 0)


def test_configmap_keys_parse() -> None:
    cfg = AutoscalerConfig.from_configmap(
        {
            "stable-window": "1m30s",
            "scale-to-zero-grace-period": "45s",
            "scale-to-zero-pod-retention-period": "2m",
            "scale-down-delay": "15s",
            "enable-scale-to-zero": "false",
            "max-scale-up-rate": "10",
            "max-scale-down-rate": "4",
            "container-concurrency-target-percentage": "0.8",  # legacy fraction
            "container-concurrency-target-default": "50",
            "requests-per-second-target-default": "300",
            "target-burst-capacity": "-1",
            "panic-window-percentage": "20",
            "panic-threshold-percentage": "300",
            "activator-capacity": "200",
            "initial-scale": "0",
            "allow-zero-initial-scale": "true",
            "max-scale": "20",
            "_example": "ignored",
        }
    )
    assert cfg.stable_window_s == 90.0
    assert cfg.scale_to_zero_grace_period_s == 45.0
    assert cfg.scale_to_zero_pod_retention_period_s == 120.0
    assert cfg.scale_down_delay_s == 15.0
    assert cfg.enable_scale_to_zero is False
    assert cfg.container_concurrency_target_percentage == pytest.approx(80.0)
    assert cfg.rps_target_default == 300.0
    assert cfg.target_burst_capacity == -1.0
    assert cfg.initial_scale == 0
    assert cfg.max_scale == 20


CONFIG_ERRORS = [
    ("stable-window", "5s"),
    ("stable-window", "2h"),
    ("stable-window", "60.5s"),
    ("stable-window", "sixty"),
    ("scale-to-zero-grace-period", "0s"),
    ("scale-to-zero-grace-period", "5s"),  # Knative: at least the least window, 6 s
    ("scale-down-delay", "-1s"),
    ("scale-down-delay", "2h"),
    ("scale-to-zero-pod-retention-period", "-5s"),
    ("target-burst-capacity", "-2"),
    ("container-concurrency-target-percentage", "120"),
    ("requests-per-second-target-default", "0"),
    ("activator-capacity", "0.5"),
    ("max-scale-up-rate", "1"),
    ("max-scale-down-rate", "1.0"),
    ("panic-window-percentage", "0.5"),
    ("panic-window-percentage", "101"),
    ("panic-threshold-percentage", "100"),
    ("panic-threshold-percentage", "1001"),
    ("initial-scale", "0"),
    ("max-scale", "-1"),
    ("enable-scale-to-zero", "yes"),
    ("activation-scale", "0"),
]


@pytest.mark.parametrize(
    ("key", "value"), CONFIG_ERRORS, ids=[f"{k}={v}" for k, v in CONFIG_ERRORS]
)
def test_configmap_errors_name_key_value_and_range(key: str, value: str) -> None:
    with pytest.raises(InvalidConfig) as info:
        AutoscalerConfig.from_configmap({key: value})
    assert info.value.key == key
    assert info.value.value == value
    assert key in str(info.value) and value in str(info.value)


def test_full_annotation_set_parses() -> None:
    a = {
        PREFIX + "class": "kpa.autoscaling.knative.dev",
        PREFIX + "metric": "rps",
        PREFIX + "target": "50",
        PREFIX + "target-utilization-percentage": "80",
        PREFIX + "target-burst-capacity": "0",
        PREFIX + "window": "2m",
        PREFIX + "panic-window-percentage": "20",
        PREFIX + "panic-threshold-percentage": "150",
        PREFIX + "min-scale": "1",
        PREFIX + "max-scale": "5",
        PREFIX + "initial-scale": "2",
        PREFIX + "activation-scale": "3",
        PREFIX + "scale-down-delay": "30s",
        PREFIX + "scale-to-zero-pod-retention-period": "1m5s",
        PREFIX + "metric-aggregation-algorithm": "weighted-exponential",
    }
    s = RevisionScaling.from_annotations(a, container_concurrency=10)
    assert s == RevisionScaling(
        metric="rps",
        target=50.0,
        target_utilization_percentage=80.0,
        target_burst_capacity=0.0,
        window_s=120.0,
        panic_window_percentage=20.0,
        panic_threshold_percentage=150.0,
        min_scale=1,
        max_scale=5,
        initial_scale=2,
        activation_scale=3,
        scale_down_delay_s=30.0,
        scale_to_zero_pod_retention_period_s=65.0,
        metric_aggregation_algorithm="weighted-exponential",
        container_concurrency=10,
    )


def test_no_annotations_is_all_defaults() -> None:
    assert RevisionScaling.from_annotations({}) == RevisionScaling()


ANNOTATION_ERRORS = [
    ("class", "foo.autoscaling.knative.dev"),
    ("metric", "cpu"),
    ("metric-aggregation-algorithm", "median"),
    ("target", "0.001"),
    ("target", "ten"),
    ("target-utilization-percentage", "0.5"),
    ("target-utilization-percentage", "101"),
    ("target-burst-capacity", "-2"),
    ("window", "5s"),
    ("window", "1h1s"),
    ("window", "6500ms"),
    ("panic-window-percentage", "0.9"),
    ("panic-window-percentage", "100.1"),
    ("panic-threshold-percentage", "109"),
    ("panic-threshold-percentage", "1001"),
    ("min-scale", "-1"),
    ("min-scale", "two"),
    ("max-scale", "-3"),
    ("initial-scale", "0"),
    ("initial-scale", "-1"),
    ("activation-scale", "0"),
    ("scale-down-delay", "-1s"),
    ("scale-down-delay", "1h0m1s"),
    ("scale-down-delay", "1500ms"),
    ("scale-to-zero-pod-retention-period", "-1s"),
    ("scale-to-zero-pod-retention-period", "2h"),
]


@pytest.mark.parametrize(
    ("key", "value"), ANNOTATION_ERRORS, ids=[f"{k}={v}" for k, v in ANNOTATION_ERRORS]
)
def test_annotation_errors_name_key_value_and_range(key: str, value: str) -> None:
    full_key = PREFIX + key
    problems = annotation_problems({full_key: value})
    assert [p.key for p in problems] == [full_key]
    with pytest.raises(InvalidAnnotation) as info:
        RevisionScaling.from_annotations({full_key: value})
    assert info.value.key == full_key and info.value.value == value
    assert full_key in str(info.value) and value in str(info.value)
    assert "must" in str(info.value)


@pytest.mark.parametrize(
    ("annotations", "bad_key"),
    [
        ({"min-scale": "5", "max-scale": "3"}, "max-scale"),
        ({"activation-scale": "4", "max-scale": "3"}, "activation-scale"),
    ],
    ids=["max-below-min", "activation-above-max"],
)
def test_cross_field_checks(annotations: dict[str, str], bad_key: str) -> None:
    problems = annotation_problems({PREFIX + k: v for k, v in annotations.items()})
    assert [p.key for p in problems] == [PREFIX + bad_key]


def test_all_problems_are_listed_at_once() -> None:
    problems = annotation_problems(
        {PREFIX + "window": "1s", PREFIX + "target": "0", PREFIX + "min-scale": "x"},
        container_concurrency=2000,
    )
    assert {p.key for p in problems} == {
        PREFIX + "window",
        PREFIX + "target",
        PREFIX + "min-scale",
        "containerConcurrency",
    }


def test_zero_initial_scale_needs_the_config_flag() -> None:
    cfg = AutoscalerConfig(allow_zero_initial_scale=True)
    assert annotation_problems({PREFIX + "initial-scale": "0"}, config=cfg) == []


def test_max_scale_limit_applies_to_the_annotation() -> None:
    cfg = AutoscalerConfig(max_scale_limit=10, max_scale=5)
    assert [p.key for p in annotation_problems({PREFIX + "max-scale": "11"}, config=cfg)] == [
        PREFIX + "max-scale"
    ]


def test_other_classes_keep_their_own_metrics() -> None:
    a = {PREFIX + "class": "hpa.autoscaling.knative.dev", PREFIX + "metric": "cpu"}
    assert annotation_problems(a) == []
    assert not RevisionScaling.from_annotations(a).is_kpa
