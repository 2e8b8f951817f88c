"""The example tuner ConfigMap in manifests/config/ is the defaults, exactly."""

from __future__ import annotations

import yaml

from autoscaler.tuner import TunerConfig, parse_tuner_config, tuner_config_to_configmap
from tests.kube.kit import REPO


def test_example_configmap_is_the_defaults() -> None:
    doc = yaml.safe_load((REPO / "manifests" / "config" / "tuner-config.yaml").read_text())
    assert (doc["apiVersion"], doc["kind"], doc["metadata"]["name"]) == (
        "v1",
        "ConfigMap",
        "modelscale-tuner",
    )
    assert doc["data"] == tuner_config_to_configmap()
    assert parse_tuner_config(doc["data"]) == TunerConfig()
