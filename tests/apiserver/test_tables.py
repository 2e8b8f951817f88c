"""Table rendering: ages as kubectl prints them and printer-column cells."""

from __future__ import annotations

from typing import Any

import pytest

from autoscaler.apiserver.kinds import builtin_types
from autoscaler.apiserver.registry import types_from_crd
from autoscaler.apiserver.tables import cells, columns, human_duration, table

AGES = [
    ("seconds", 5, "5s"),
    ("under-two-minutes", 119, "119s"),
    ("minutes-seconds", 185, "3m5s"),
    ("whole-minutes", 180, "3m"),
    ("tens-of-minutes", 1500, "25m"),
    ("hours-minutes", 4 * 3600 + 120, "4h2m"),
    ("hours", 20 * 3600, "20h"),
    ("days-hours", 3 * 86400 + 3600, "3d1h"),
    ("days", 30 * 86400, "30d"),
    ("years-days", 3 * 365 * 86400 + 86400, "3y1d"),
    ("clock-skew", -1, "0s"),
]


@pytest.mark.parametrize(("seconds", "text"), [c[1:] for c in AGES], ids=[c[0] for c in AGES])
def test_human_duration(seconds: float, text: str) -> None:
    assert human_duration(seconds) == text


NOW = 1_700_000_000.0  # 2023-11-14T22:13:20Z

CRD = {
    "metadata": {"name": "widgets.example.com"},
    "spec": {
        "group": "example.com",
        "names": {"plural": "widgets", "kind": "Widget"},
        "scope": "Namespaced",
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "additionalPrinterColumns": [
                    {"name": "Size", "type": "integer", "jsonPath": ".spec.size"},
                    {
                        "name": "Ready",
                        "type": "string",
                        "jsonPath": ".status.conditions[?(@.type=='Ready')].status",
                    },
                    {"name": "Created", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                    {"name": "Flag", "type": "boolean", "jsonPath": ".spec.flag", "priority": 1},
                ],
            }
        ],
    },
}
WIDGET: dict[str, Any] = {
    "metadata": {"name": "w", "creationTimestamp": "2023-11-14T22:10:20Z"},
    "spec": {"size": 3, "flag": True},
    "status": {"conditions": [{"type": "Ready", "status": "True"}]},
}


def test_crd_printer_columns() -> None:
    rt = types_from_crd(CRD)[0]
    assert [c["name"] for c in columns(rt)] == ["Name", "Size", "Ready", "Created", "Flag"]
    assert cells(rt, WIDGET, NOW) == ["w", 3, "True", "3m", True]


def test_missing_values_are_none() -> None:
    rt = types_from_crd(CRD)[0]
    assert cells(rt, {"metadata": {"name": "w"}}, NOW) == ["w", None, None, None, None]


def test_crd_without_columns_prints_name_and_age() -> None:
    crd = {
        **CRD,
        "spec": {**CRD["spec"], "versions": [{"name": "v1", "served": True, "storage": True}]},
    }
    rt = types_from_crd(crd)[0]
    assert [c["name"] for c in columns(rt)] == ["Name", "Age"]
    assert cells(rt, WIDGET, NOW) == ["w", "3m"]


BUILTIN = [
    (
        "configmaps",
        {
            "metadata": {"name": "c", "creationTimestamp": "2023-11-14T22:13:00Z"},
            "data": {"a": "1", "b": "2"},
        },
        ["c", 2, "20s"],
    ),
    (
        "namespaces",
        {
            "metadata": {"name": "n", "creationTimestamp": "2023-11-14T22:13:00Z"},
            "status": {"phase": "Active"},
        },
        ["n", "Active", "20s"],
    ),
    (
        "leases",
        {
            "metadata": {"name": "l", "creationTimestamp": "2023-11-14T22:13:00Z"},
            "spec": {"holderIdentity": "me"},
        },
        ["l", "me", "20s"],
    ),
]


@pytest.mark.parametrize(("plural", "obj", "want"), BUILTIN, ids=[c[0] for c in BUILTIN])
def test_builtin_columns(plural: str, obj: dict[str, Any], want: list[Any]) -> None:
    rt = next(
        t for t in builtin_types() if t.plural == plural and t.group in ("", "coordination.k8s.io")
    )
    assert cells(rt, obj, NOW) == want


def test_table_rows_carry_partial_metadata_by_default() -> None:
    rt = types_from_crd(CRD)[0]
    t = table(rt, [WIDGET], now=NOW, resource_version="9")
    assert t["kind"] == "Table" and t["metadata"]["resourceVersion"] == "9"
    assert t["rows"][0]["object"]["kind"] == "PartialObjectMetadata"
    full = table(rt, [WIDGET], now=NOW, resource_version="9", include="Object", headers=False)
    assert full["rows"][0]["object"] is WIDGET and full["columnDefinitions"] == []
