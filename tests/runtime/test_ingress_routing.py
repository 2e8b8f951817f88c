"""Route tables, the model a KServe path names, and traffic picks: pure."""

from __future__ import annotations

import random

import pytest

from autoscaler.runtime.routing import (
    RouteTable,
    TrafficTarget,
    model_in_path,
    normalize_host,
    service_host,
)
from autoscaler.runtime.spec import RevisionKey

A = RevisionKey("default", "iris-00001")
B = RevisionKey("default", "iris-00002")


@pytest.mark.parametrize(
    ("method", "path", "model"),
    [
        ("POST", "/v1/models/iris:predict", "iris"),
        ("POST", "/v1/models/iris:explain", "iris"),
        ("GET", "/v1/models/iris", "iris"),
        # KServe's GET route takes the whole segment: the model-ready route for "iris:predict"
        ("GET", "/v1/models/iris:predict", "iris:predict"),
        ("POST", "/v1/models/a:b:predict", "a:b"),
        ("POST", "/v2/models/iris/infer", "iris"),
        ("GET", "/v2/models/iris", "iris"),
        ("GET", "/v2/models/iris/ready", "iris"),
        # the server answers these itself: versioned paths (501), a method a route does not take
        ("GET", "/v2/models/iris/versions/1", None),
        ("POST", "/v2/models/iris/versions/1/infer", None),
        ("GET", "/v2/models/iris/versions/1/ready", None),
        ("GET", "/v2/models/iris/infer", None),
        ("POST", "/v2/models/iris", None),
        ("PUT", "/v1/models/iris:predict", None),
        ("GET", "/v2/health/ready", None),
        ("GET", "/v2/health/live", None),
        ("GET", "/v1/models", None),
        ("GET", "/metrics", None),
        ("GET", "/v2/repository/index", None),
        ("POST", "/v2/repository/models/iris/load", None),
        ("GET", "/admin", None),
        ("POST", "/v1/models/iris:predict/extra", None),
    ],
    ids=lambda v: str(v),
)
def test_model_in_path(method: str, path: str, model: str | None) -> None:
    assert model_in_path(method, path) == model


@pytest.mark.parametrize(
    ("draw", "expected"), [(0.0, A), (79.99, A), (80.0, B), (99.99, B)], ids=str
)
def test_pick_by_percent(draw: float, expected: RevisionKey) -> None:
    table = RouteTable()
    route = table.set_route(
        "iris.default.example.com", [TrafficTarget(A, 80), TrafficTarget(B, 20)]
    )
    assert route.pick(draw) == expected


def test_seeded_split_is_within_tolerance() -> None:
    table = RouteTable()
    route = table.set_route("h", [TrafficTarget(A, 80), TrafficTarget(B, 20)])
    rng = random.Random(7)
    picks = [route.pick(rng.random() * 100) for _ in range(1000)]
    assert abs(picks.count(B) / 1000 - 0.20) <= 0.05


def test_tagged_targets_get_their_own_host() -> None:
    table = RouteTable()
    host = service_host("iris", "default")
    table.set_route(host, [TrafficTarget(A, 80, "prev"), TrafficTarget(B, 20, "latest")])
    latest = table.lookup("latest-iris.default.example.com:8080")
    prev = table.lookup("PREV-iris.default.example.com")
    assert latest is not None and prev is not None
    assert latest.pick(0.0) == B and prev.pick(99.0) == A
    table.remove_route(host)
    assert table.hosts() == []


@pytest.mark.parametrize(
    ("targets", "message"),
    [
        ([TrafficTarget(A, 50), TrafficTarget(B, 40)], "sum to 90, must be 100"),
        ([TrafficTarget(A, 120)], "percent=120"),
        ([], "at least one target"),
    ],
    ids=["short-of-100", "over-100", "empty"],
)
def test_invalid_routes_name_the_problem(targets: list[TrafficTarget], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RouteTable().set_route("h", targets)


def test_normalize_host() -> None:
    assert normalize_host("Iris.Default.Example.com:80") == "iris.default.example.com"
