"""The three patch formats, as tables of (original, patch, expected)."""

from __future__ import annotations

from typing import Any

import pytest

from autoscaler.apiserver.kinds import namespace_schema
from autoscaler.apiserver.patch import PatchError, json_patch, merge_patch, strategic_merge
from autoscaler.apiserver.schema import object_meta_schema

MERGE = [
    ("add-key", {"a": 1}, {"b": 2}, {"a": 1, "b": 2}),
    ("null-deletes", {"a": 1, "b": 2}, {"b": None}, {"a": 1}),
    ("nested", {"m": {"x": 1, "y": 2}}, {"m": {"y": 3}}, {"m": {"x": 1, "y": 3}}),
    ("list-replaces", {"l": [1, 2]}, {"l": [3]}, {"l": [3]}),
    ("scalar-over-map", {"m": {"x": 1}}, {"m": 5}, {"m": 5}),
]


@pytest.mark.parametrize(
    ("orig", "patch", "want"), [c[1:] for c in MERGE], ids=[c[0] for c in MERGE]
)
def test_merge_patch(orig: Any, patch: Any, want: Any) -> None:
    assert merge_patch(orig, patch) == want


JSONP = [
    ("add", {"a": 1}, [{"op": "add", "path": "/b", "value": 2}], {"a": 1, "b": 2}),
    ("add-to-list-end", {"l": [1]}, [{"op": "add", "path": "/l/-", "value": 2}], {"l": [1, 2]}),
    (
        "insert-in-list",
        {"l": [1, 3]},
        [{"op": "add", "path": "/l/1", "value": 2}],
        {"l": [1, 2, 3]},
    ),
    ("remove", {"a": 1, "b": 2}, [{"op": "remove", "path": "/a"}], {"b": 2}),
    ("replace", {"a": 1}, [{"op": "replace", "path": "/a", "value": 9}], {"a": 9}),
    ("move", {"a": 1}, [{"op": "move", "from": "/a", "path": "/b"}], {"b": 1}),
    (
        "copy",
        {"a": {"x": 1}},
        [{"op": "copy", "from": "/a", "path": "/b"}],
        {"a": {"x": 1}, "b": {"x": 1}},
    ),
    ("test-passes", {"a": 1}, [{"op": "test", "path": "/a", "value": 1}], {"a": 1}),
    (
        "escaped-slash",
        {"m": {"a/b": 1}},
        [{"op": "replace", "path": "/m/a~1b", "value": 2}],
        {"m": {"a/b": 2}},
    ),
]


@pytest.mark.parametrize(("orig", "ops", "want"), [c[1:] for c in JSONP], ids=[c[0] for c in JSONP])
def test_json_patch(orig: Any, ops: Any, want: Any) -> None:
    assert json_patch(orig, ops) == want


JSONP_BAD = [
    ("test-fails", {"a": 1}, [{"op": "test", "path": "/a", "value": 2}], "test failed"),
    ("missing-path", {"a": 1}, [{"op": "replace", "path": "/b/c", "value": 1}], "missing path"),
    ("remove-missing", {"a": 1}, [{"op": "remove", "path": "/b"}], "nonexistent"),
    ("bad-op", {}, [{"op": "frobnicate", "path": "/a"}], "unexpected operation"),
    ("not-a-list", {}, {"op": "add"}, "list of operations"),
    ("index-out-of-range", {"l": [1]}, [{"op": "add", "path": "/l/5", "value": 1}], "out of range"),
]


@pytest.mark.parametrize(
    ("orig", "ops", "fragment"), [c[1:] for c in JSONP_BAD], ids=[c[0] for c in JSONP_BAD]
)
def test_json_patch_errors_say_what_failed(orig: Any, ops: Any, fragment: str) -> None:
    with pytest.raises(PatchError, match=fragment):
        json_patch(orig, ops)


def _with_meta(schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"metadata": object_meta_schema(), **schema["properties"]},
    }


NS = _with_meta(namespace_schema())
OWNER_A = {"apiVersion": "v1", "kind": "X", "name": "a", "uid": "1"}
OWNER_B = {"apiVersion": "v1", "kind": "X", "name": "b", "uid": "2"}

STRATEGIC = [
    (
        "conditions-merge-by-type",
        {"status": {"conditions": [{"type": "A", "status": "True"}]}},
        {"status": {"conditions": [{"type": "B", "status": "False"}]}},
        {
            "status": {
                "conditions": [{"type": "A", "status": "True"}, {"type": "B", "status": "False"}]
            }
        },
    ),
    (
        "conditions-update-in-place",
        {"status": {"conditions": [{"type": "A", "status": "True", "reason": "x"}]}},
        {"status": {"conditions": [{"type": "A", "status": "False"}]}},
        {"status": {"conditions": [{"type": "A", "status": "False", "reason": "x"}]}},
    ),
    (
        "delete-directive-in-list",
        {
            "status": {
                "conditions": [{"type": "A", "status": "True"}, {"type": "B", "status": "True"}]
            }
        },
        {"status": {"conditions": [{"type": "A", "$patch": "delete"}]}},
        {"status": {"conditions": [{"type": "B", "status": "True"}]}},
    ),
    (
        "finalizers-merge-as-set",
        {"metadata": {"finalizers": ["a"]}},
        {"metadata": {"finalizers": ["b", "a"]}},
        {"metadata": {"finalizers": ["a", "b"]}},
    ),
    (
        "delete-from-primitive-list",
        {"metadata": {"finalizers": ["a", "b"]}},
        {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}},
        {"metadata": {"finalizers": ["b"]}},
    ),
    (
        "owner-references-by-uid",
        {"metadata": {"ownerReferences": [OWNER_A]}},
        {"metadata": {"ownerReferences": [OWNER_B]}},
        {"metadata": {"ownerReferences": [OWNER_A, OWNER_B]}},
    ),
    (
        "set-element-order",
        {"status": {"conditions": [{"type": "A", "status": "1"}, {"type": "B", "status": "2"}]}},
        {"status": {"$setElementOrder/conditions": [{"type": "B"}, {"type": "A"}]}},
        {"status": {"conditions": [{"type": "B", "status": "2"}, {"type": "A", "status": "1"}]}},
    ),
    (
        "list-without-strategy-replaces",
        {"spec": {"finalizers": ["a"]}},
        {"spec": {"finalizers": ["b"]}},
        {"spec": {"finalizers": ["b"]}},
    ),
    (
        "replace-directive-on-map",
        {"metadata": {"labels": {"a": "1", "b": "2"}}},
        {"metadata": {"labels": {"$patch": "replace", "c": "3"}}},
        {"metadata": {"labels": {"c": "3"}}},
    ),
    (
        "null-deletes-key",
        {"metadata": {"labels": {"a": "1", "b": "2"}}},
        {"metadata": {"labels": {"a": None}}},
        {"metadata": {"labels": {"b": "2"}}},
    ),
    (
        "retain-keys",
        {"spec": {"x": 1, "y": 2}},
        {"spec": {"$retainKeys": ["y"], "y": 3}},
        {"spec": {"y": 3}},
    ),
]


@pytest.mark.parametrize(
    ("orig", "patch", "want"), [c[1:] for c in STRATEGIC], ids=[c[0] for c in STRATEGIC]
)
def test_strategic_merge(orig: Any, patch: Any, want: Any) -> None:
    assert strategic_merge(orig, patch, NS) == want
