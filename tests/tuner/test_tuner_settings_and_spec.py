"""Tuner ConfigMap settings, ModelScaler spec validation, and the CRD that carries the spec."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from autoscaler.kube.scaler_status import CONDITION_TYPES
from autoscaler.tuner import (
    SettingsError,
    SpecError,
    TunerConfig,
    parse_spec,
    parse_tuner_config,
    tuner_config_to_configmap,
    validate_spec,
)
from autoscaler.tuner.spec import APPLY_METHODS, KEEP_ALIVE_POLICIES, UPDATE_MODES

CRD = (
    Path(__file__).resolve().parents[2] / "manifests" / "crds" / "modelscale.dev_modelscalers.yaml"
)


def test_empty_configmap_is_the_defaults_and_defaults_round_trip() -> None:
    assert parse_tuner_config({}) == TunerConfig()
    assert parse_tuner_config(tuner_config_to_configmap()) == TunerConfig()


def test_configmap_values_land_in_their_section() -> None:
    config = parse_tuner_config(
        {"tick_period_s": "15", "max_step_up_ratio": "1.3", "min_idle_samples": "8"}
    )
    assert config.loop.tick_period_s == 15
    assert config.target.max_step_up_ratio == 1.3
    assert config.keep_alive.min_idle_samples == 8


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param(
            {"tick_period_s": "fast"},
            r"tick_period_s: 'fast' is not a number in \[1, 3600\]",
            id="not-a-number",
        ),
        pytest.param(
            {"hysteresis_fraction": "0.9"},
            r"hysteresis_fraction: '0.9' is out of range, allowed a number in \[0, 0.5\]",
            id="out-of-range",
        ),
        pytest.param(
            {"max_step_up_ratio": "1"},
            r"max_step_up_ratio: '1' is out of range, allowed a number in \(1, 10\]",
            id="open-lower-bound",
        ),
        pytest.param(
            {"min_requests": "2.5"}, r"min_requests: '2.5' is not an integer", id="not-an-integer"
        ),
        pytest.param(
            {"tick_period": "30"}, r"tick_period: unknown tuner setting", id="unknown-key"
        ),
        pytest.param({"stale_after_s": "nan"}, r"stale_after_s: 'nan'", id="nan"),
        pytest.param(
            {"tick_period_s": "60", "stale_after_s": "30"},
            r"stale_after_s \(30\) must be >= tick_period_s \(60\)",
            id="cross-field",
        ),
    ],
)
def test_configmap_errors_name_key_value_and_range(data: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        parse_tuner_config(data)


VALID: dict[str, Any] = {"targetRef": {"name": "sklearn-iris"}, "objective": {"latencyMs": 200}}


def test_minimal_spec_parses_with_defaults() -> None:
    spec = parse_spec(VALID)
    assert (spec.target_ref_name, spec.objective_latency_ms, spec.objective_percentile) == (
        "sklearn-iris",
        200,
        95,
    )
    assert (spec.update_mode, spec.keep_alive_policy, spec.prewarm_enabled, spec.apply_method) == (
        "Auto", "learned", True, "revision",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        pytest.param(
            {"target": {"min": 8, "max": 4}},
            "spec.target.min (8) must be <= spec.target.max (4)",
            id="target-min-max",
        ),
        pytest.param(
            {"replicas": {"min": 3, "max": 2}},
            "spec.replicas.min (3) must be <= spec.replicas.max (2) (Knative: min-scale <= max-scale)",
            id="replicas-min-max",
        ),
        pytest.param(
            {"keepAlive": {"policy": "fixed"}},
            "spec.keepAlive.fixedSeconds: required when spec.keepAlive.policy is 'fixed'",
            id="fixed-needs-seconds",
        ),
        pytest.param(
            {"keepAlive": {"policy": "off", "fixedSeconds": 60}},
            "spec.keepAlive.fixedSeconds (60) is only used when spec.keepAlive.policy is 'fixed', not 'off'",
            id="seconds-without-fixed",
        ),
        pytest.param(
            {"keepAlive": {"policy": "off"}, "preWarm": {"enabled": True}},
            "spec.preWarm.enabled (true) needs spec.keepAlive.policy 'learned', not 'off'",
            id="prewarm-needs-learned",
        ),
        pytest.param(
            {"objective": {"latencyMs": 200, "percentile": 100}},
            "spec.objective.percentile: 100 is out of range, allowed [50, 99.9]",
            id="percentile-range",
        ),
        pytest.param(
            {"updateMode": "Sometimes"},
            "spec.updateMode: 'Sometimes' is not one of Off, Recommend, Auto",
            id="enum",
        ),
        pytest.param(
            {"target": {"min": 0.001}},
            "spec.target.min: 0.001 is out of range, allowed >= 0.01",
            id="knative-target-floor",
        ),
        pytest.param(
            {"objective": {"latencyMs": 2}},
            "spec.objective.latencyMs: 2 is under 5 ms, the bound of Knative's first latency "
            "bucket (0, 5] ms: latencies under it cannot be told apart, so every interval would "
            "read as a miss; use at least 5",
            id="objective-under-the-first-bucket",
        ),
        pytest.param(
            {"replicas": {"min": 3_000_000_000}},
            "spec.replicas.min: 3000000000 is out of range, allowed [0, 2147483647]",
            id="replicas-min-int32",
        ),
        pytest.param(
            {"replicas": {"max": 2_147_483_648}},
            "spec.replicas.max: 2147483648 is out of range, allowed [0, 2147483647]",
            id="replicas-max-int32",
        ),
    ],
)
def test_spec_validation_names_both_fields(extra: dict[str, Any], message: str) -> None:
    spec = {**VALID, **extra}
    assert message in validate_spec(spec)
    with pytest.raises(SpecError) as err:
        parse_spec(spec)
    assert message in err.value.messages


def test_spec_missing_required_fields() -> None:
    msgs = validate_spec({})
    assert "spec.targetRef.name: required (the InferenceService in this namespace)" in msgs
    assert "spec.objective.latencyMs: required" in msgs
    assert validate_spec([]) == ["spec: expected an object, got list"]  # type: ignore[arg-type]


def _crd() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(CRD.read_text())
    return doc


def test_crd_names_scope_and_status_subresource() -> None:
    crd = _crd()
    assert crd["metadata"]["name"] == "modelscalers.modelscale.dev"
    names = crd["spec"]["names"]
    assert (names["kind"], names["plural"], names["shortNames"]) == (
        "ModelScaler",
        "modelscalers",
        ["msc"],
    )
    assert crd["spec"]["scope"] == "Namespaced"
    (version,) = crd["spec"]["versions"]
    assert version["name"] == "v1alpha1" and version["subresources"] == {"status": {}}
    columns = [c["name"].upper() for c in version["additionalPrinterColumns"]]
    assert columns == ["TARGET", "KEEPALIVE", "REPLICAS", "MODE", "OBJECTIVE", "AGE"]


def _walk(schema: dict[str, Any], path: str = "") -> list[str]:
    """Paths of schema nodes without a type (a structural schema needs one everywhere)."""
    bad = [] if "type" in schema else [path or "<root>"]
    for name, sub in schema.get("properties", {}).items():
        bad += _walk(sub, f"{path}.{name}")
    if "items" in schema:
        bad += _walk(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        bad += _walk(schema["additionalProperties"], f"{path}{{}}")
    return bad


def test_crd_schema_is_structural_and_matches_the_parser() -> None:
    schema = _crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert _walk(schema) == []
    spec = schema["properties"]["spec"]
    assert spec["required"] == ["targetRef", "objective"]
    assert tuple(spec["properties"]["updateMode"]["enum"]) == UPDATE_MODES
    assert (
        tuple(spec["properties"]["keepAlive"]["properties"]["policy"]["enum"])
        == KEEP_ALIVE_POLICIES
    )
    assert tuple(spec["properties"]["apply"]["enum"]) == APPLY_METHODS
    pct = spec["properties"]["objective"]["properties"]["percentile"]
    assert (pct["minimum"], pct["maximum"]) == (50, 99.9)
    conditions = schema["properties"]["status"]["properties"]["conditions"]["items"]["properties"]
    assert conditions["type"]["enum"] == [
        "MetricsAvailable",
        "RecommendationReady",
        "Applied",
        "ObjectiveMet",
        "Invalid",
    ]
    assert set(conditions["type"]["enum"]) == set(CONDITION_TYPES)
    assert {"status", "reason", "message", "lastTransitionTime", "observedGeneration"} <= set(
        conditions
    )
