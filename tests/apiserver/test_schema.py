"""Structural schema validation, pruning and defaulting: (schema, object, expected) tables."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from autoscaler.apiserver.schema import check, compile_schema

from .conftest import UPSTREAM_CRDS


def obj_schema(props: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"spec": {"type": "object", "properties": props, **extra}},
    }


ERRORS = [
    (
        "type-integer",
        obj_schema({"n": {"type": "integer"}}),
        {"n": "x"},
        "spec.n",
        "must be of type integer",
    ),
    (
        "integer-not-bool",
        obj_schema({"n": {"type": "integer"}}),
        {"n": True},
        "spec.n",
        "must be of type integer",
    ),
    (
        "type-string",
        obj_schema({"s": {"type": "string"}}),
        {"s": 1},
        "spec.s",
        "must be of type string",
    ),
    (
        "required",
        obj_schema({"p": {"type": "object"}}, required=["p"]),
        {},
        "spec.p",
        "Required value",
    ),
    (
        "enum",
        obj_schema({"e": {"type": "string", "enum": ["a", "b"]}}),
        {"e": "c"},
        "spec.e",
        "supported values",
    ),
    (
        "pattern",
        obj_schema({"s": {"type": "string", "pattern": "^[a-z]+$"}}),
        {"s": "A1"},
        "spec.s",
        "should match",
    ),
    (
        "minimum",
        obj_schema({"n": {"type": "integer", "minimum": 0}}),
        {"n": -1},
        "spec.n",
        "greater than or equal to 0",
    ),
    (
        "maximum",
        obj_schema({"n": {"type": "integer", "maximum": 100}}),
        {"n": 101},
        "spec.n",
        "less than or equal to 100",
    ),
    (
        "exclusive-minimum",
        obj_schema({"n": {"type": "number", "minimum": 0, "exclusiveMinimum": True}}),
        {"n": 0},
        "spec.n",
        "greater than 0",
    ),
    (
        "min-length",
        obj_schema({"s": {"type": "string", "minLength": 2}}),
        {"s": "a"},
        "spec.s",
        "at least 2 chars",
    ),
    (
        "max-length",
        obj_schema({"s": {"type": "string", "maxLength": 2}}),
        {"s": "abc"},
        "spec.s",
        "Too long",
    ),
    (
        "min-items",
        obj_schema({"l": {"type": "array", "minItems": 1, "items": {"type": "string"}}}),
        {"l": []},
        "spec.l",
        "at least 1 items",
    ),
    (
        "max-items",
        obj_schema({"l": {"type": "array", "maxItems": 1, "items": {"type": "string"}}}),
        {"l": ["a", "b"]},
        "spec.l",
        "at most 1 items",
    ),
    (
        "item-path",
        obj_schema(
            {
                "l": {
                    "type": "array",
                    "items": {"type": "object", "properties": {"n": {"type": "integer"}}},
                }
            }
        ),
        {"l": [{"n": 1}, {"n": "x"}]},
        "spec.l[1].n",
        "must be of type integer",
    ),
    (
        # a null property is pruned (below); a null list item is not: it is invalid
        "null-item-not-nullable",
        obj_schema({"l": {"type": "array", "items": {"type": "string"}}}),
        {"l": ["a", None]},
        "spec.l[1]",
        "must be of type string",
    ),
    (
        "int-or-string",
        obj_schema(
            {
                "p": {
                    "x-kubernetes-int-or-string": True,
                    "anyOf": [{"type": "integer"}, {"type": "string"}],
                }
            }
        ),
        {"p": 1.5},
        "spec.p",
        "integer or string",
    ),
    (
        "date-time",
        obj_schema({"t": {"type": "string", "format": "date-time"}}),
        {"t": "yesterday"},
        "spec.t",
        "date-time",
    ),
    (
        "int32-range",
        obj_schema({"n": {"type": "integer", "format": "int32"}}),
        {"n": 2**40},
        "spec.n",
        "int32",
    ),
    (
        "list-set-duplicate",
        obj_schema(
            {"l": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}}}
        ),
        {"l": ["a", "a"]},
        "spec.l[1]",
        "Duplicate",
    ),
    (
        "additional-properties-values",
        obj_schema({"m": {"type": "object", "additionalProperties": {"type": "integer"}}}),
        {"m": {"a": "x"}},
        "spec.m.a",
        "must be of type integer",
    ),
]


@pytest.mark.parametrize(
    ("schema", "spec", "path", "fragment"), [c[1:] for c in ERRORS], ids=[c[0] for c in ERRORS]
)
def test_violations_name_the_field(
    schema: dict[str, Any], spec: Any, path: str, fragment: str
) -> None:
    out = check(compile_schema(schema), {"spec": spec})
    assert [c.field for c in out.errors] == [path]
    assert fragment in out.errors[0].message


VALID = [
    ("nullable-null", obj_schema({"s": {"type": "string", "nullable": True}}), {"s": None}),
    ("int-or-string-int", obj_schema({"p": {"x-kubernetes-int-or-string": True}}), {"p": 8080}),
    ("int-or-string-str", obj_schema({"p": {"x-kubernetes-int-or-string": True}}), {"p": "http"}),
    ("integer-valued-float", obj_schema({"n": {"type": "integer"}}), {"n": 3.0}),
    ("number-accepts-int", obj_schema({"n": {"type": "number"}}), {"n": 3}),
    (
        "date-time-ok",
        obj_schema({"t": {"type": "string", "format": "date-time"}}),
        {"t": "2025-01-02T03:04:05.123456Z"},
    ),
]


@pytest.mark.parametrize(("schema", "spec"), [c[1:] for c in VALID], ids=[c[0] for c in VALID])
def test_valid_objects_pass(schema: dict[str, Any], spec: Any) -> None:
    out = check(compile_schema(schema), {"spec": spec})
    assert out.errors == []
    assert out.value["spec"] == spec


PRUNING = [
    (
        "unknown-dropped",
        obj_schema({"a": {"type": "string"}}),
        {"a": "x", "foo": 1},
        {"a": "x"},
        ["spec.foo"],
    ),
    (
        "preserve-keeps",
        obj_schema({"a": {"type": "string"}}, **{"x-kubernetes-preserve-unknown-fields": True}),
        {"a": "x", "foo": 1},
        {"a": "x", "foo": 1},
        [],
    ),
    (
        "nested-unknown",
        obj_schema({"m": {"type": "object", "properties": {"k": {"type": "string"}}}}),
        {"m": {"k": "v", "z": 1}},
        {"m": {"k": "v"}},
        ["spec.m.z"],
    ),
    ("default-filled", obj_schema({"d": {"type": "integer", "default": 7}}), {}, {"d": 7}, []),
    (
        "null-not-nullable-pruned",
        obj_schema({"s": {"type": "string"}, "n": {"type": "string", "nullable": True}}),
        {"s": None, "n": None},
        {"n": None},
        [],
    ),
    (
        "null-not-nullable-defaulted",
        obj_schema({"d": {"type": "integer", "default": 7}}),
        {"d": None},
        {"d": 7},
        [],
    ),
    (
        "defaults-inside-a-default",
        obj_schema(
            {
                "t": {
                    "type": "object",
                    "default": {},
                    "properties": {"w": {"type": "string", "default": "60s"}},
                }
            }
        ),
        {},
        {"t": {"w": "60s"}},
        [],
    ),
    (
        "required-with-default",
        obj_schema({"m": {"type": "string", "default": "A"}}, required=["m"]),
        {},
        {"m": "A"},
        [],
    ),
    (
        "embedded-resource-keeps-type-meta",
        obj_schema(
            {
                "e": {
                    "type": "object",
                    "x-kubernetes-embedded-resource": True,
                    "x-kubernetes-preserve-unknown-fields": True,
                }
            }
        ),
        {
            "e": {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "c"},
                "data": {"a": "b"},
            }
        },
        {
            "e": {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "c"},
                "data": {"a": "b"},
            }
        },
        [],
    ),
]


@pytest.mark.parametrize(
    ("schema", "spec", "want", "unknown"), [c[1:] for c in PRUNING], ids=[c[0] for c in PRUNING]
)
def test_pruning_and_defaults(
    schema: dict[str, Any], spec: Any, want: Any, unknown: list[str]
) -> None:
    out = check(compile_schema(schema), {"spec": spec})
    assert out.errors == []
    assert out.value["spec"] == want
    assert out.unknown == unknown


def test_metadata_is_checked_as_object_meta() -> None:
    out = check(
        compile_schema(obj_schema({})), {"metadata": {"name": "a", "labels": {"x": 1}, "bogus": 1}}
    )
    assert [c.field for c in out.errors] == ["metadata.labels.x"]
    assert out.unknown == ["metadata.bogus"]


@pytest.fixture(scope="module")
def upstream_isvc_schema() -> dict[str, Any]:
    doc = yaml.load(
        (Path(UPSTREAM_CRDS) / "kserve_serving.kserve.io_inferenceservices.yaml").read_text(),
        Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader),
    )
    return doc["spec"]["versions"][0]["schema"]["openAPIV3Schema"]  # type: ignore[no-any-return]


ISVC = {
    "apiVersion": "serving.kserve.io/v1beta1",
    "kind": "InferenceService",
    "metadata": {"name": "m1", "namespace": "default"},
    "spec": {
        "predictor": {
            "minReplicas": 0,
            "maxReplicas": 3,
            "scaleMetric": "concurrency",
            "scaleTarget": 4,
            "model": {
                "modelFormat": {"name": "sklearn"},
                "storageUri": "gs://bucket/model",
                "resources": {"limits": {"cpu": "1", "memory": "2Gi"}},
                "env": [{"name": "A", "value": "1"}],
            },
        }
    },
}


def test_upstream_inferenceservice_validates_in_milliseconds(
    upstream_isvc_schema: dict[str, Any],
) -> None:
    node = compile_schema(upstream_isvc_schema)
    start = time.perf_counter()
    for _ in range(100):
        out = check(node, ISVC)
    per_object_s = (time.perf_counter() - start) / 100
    assert out.errors == [] and out.unknown == []
    assert per_object_s < 0.005, f"{per_object_s * 1000:.2f} ms per object"


UPSTREAM_BAD = [
    ("type", {"minReplicas": "two"}, "spec.predictor.minReplicas"),
    ("enum", {"scaleMetric": "latency"}, "spec.predictor.scaleMetric"),
    ("nested-required", {"containers": [{"image": "x"}]}, "spec.predictor.containers[0].name"),
]


@pytest.mark.parametrize(
    ("predictor", "path"), [c[1:] for c in UPSTREAM_BAD], ids=[c[0] for c in UPSTREAM_BAD]
)
def test_upstream_inferenceservice_violations(
    upstream_isvc_schema: dict[str, Any], predictor: dict[str, Any], path: str
) -> None:
    out = check(compile_schema(upstream_isvc_schema), {**ISVC, "spec": {"predictor": predictor}})
    assert path in [c.field for c in out.errors]
