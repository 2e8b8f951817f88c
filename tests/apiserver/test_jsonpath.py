"""The JSONPath subset of printer columns: expression, object, expected matches."""

from __future__ import annotations

from typing import Any

import pytest

from autoscaler.apiserver.jsonpath import JSONPathError, compile_path, find

ISVC: dict[str, Any] = {
    "metadata": {
        "name": "m1",
        "labels": {"serving.knative.dev/configuration": "m1-predictor"},
        "annotations": {"eventing.knative.dev/broker.class": "MTChannelBasedBroker"},
    },
    "status": {
        "url": "http://m1.default.example.com",
        "conditions": [
            {"type": "PredictorReady", "status": "True"},
            {"type": "Ready", "status": "False", "reason": "Scaling"},
        ],
        "components": {
            "predictor": {
                "traffic": [
                    {"tag": "prev", "percent": 90, "revisionName": "m1-00001"},
                    {"latestRevision": True, "percent": 10, "revisionName": "m1-00002"},
                ]
            }
        },
    },
    "spec": {"containers": [{"name": "a"}, {"name": "b"}]},
}

CASES = [
    ("field", ".status.url", ["http://m1.default.example.com"]),
    ("braces-and-dollar", "{$.metadata.name}", ["m1"]),
    ("filter-single-quotes", ".status.conditions[?(@.type=='Ready')].status", ["False"]),
    ("filter-double-quotes", '.status.conditions[?(@.type=="Ready")].reason', ["Scaling"]),
    (
        "filter-bool",
        ".status.components.predictor.traffic[?(@.latestRevision==true)].percent",
        [10],
    ),
    (
        "filter-tag",
        ".status.components.predictor.traffic[?(@.tag=='prev')].revisionName",
        ["m1-00001"],
    ),
    ("filter-no-match", ".status.conditions[?(@.type=='Missing')].status", []),
    (
        "bracket-escaped-key",
        ".metadata.labels['serving\\.knative\\.dev/configuration']",
        ["m1-predictor"],
    ),
    (
        "escaped-dots",
        ".metadata.annotations.eventing\\.knative\\.dev/broker\\.class",
        ["MTChannelBasedBroker"],
    ),
    ("wildcard", ".spec.containers[*].name", ["a", "b"]),
    ("index", ".spec.containers[1].name", ["b"]),
    ("negative-index", ".spec.containers[-1].name", ["b"]),
    ("slice", ".spec.containers[0:1].name", ["a"]),
    ("missing", ".status.nothing.here", []),
    ("filter-exists", ".status.conditions[?(@.reason)].type", ["Ready"]),
    ("filter-greater", ".status.components.predictor.traffic[?(@.percent>50)].tag", ["prev"]),
]


@pytest.mark.parametrize(("expr", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_find(expr: str, expected: list[Any]) -> None:
    assert find(expr, ISVC) == expected


@pytest.mark.parametrize(
    "expr",
    [".a[", ".a[?(@.x=)]", "a.b", ".a[x]"],
    ids=["open-bracket", "bad-filter", "no-dot", "bad-subscript"],
)
def test_malformed_expression(expr: str) -> None:
    with pytest.raises(JSONPathError):
        compile_path(expr)
