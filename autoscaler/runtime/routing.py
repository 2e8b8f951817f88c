"""Routes: which revision a request goes to, by Host and traffic percent. Pure.

Mirrors what Knative's ingress does with a Route (a host and a traffic split over revisions, with
tags giving each tagged target its own host ``<tag>-<host>``, as KServe's tag routing uses
``latest-`` and ``prev-``), and the model a KServe path names. Hosts follow Knative's
``<name>.<namespace>.<domain>`` with the default domain ``example.com``.

Every path and method of a known host goes to its revision, as Knative's ingress routes a host
whatever the path: the model server's ``/metrics``, ``GET /v1/models``, ``/v2/models/{m}/versions/
{v}/...``, ``/v2/repository/...`` and whatever a function serves. ``model_in_path`` names the
model a KServe model route is for, so the ingress can answer a request for another model 404
without waking a revision at zero, with the model server's own answer.

The traffic draw is an argument (a number in [0, 100)), so tests can be exact.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from autoscaler.runtime.spec import RevisionKey

DEFAULT_DOMAIN = "example.com"

# KServe's REST routes that name a model and answer 404 for one the server does not hold
# (kserve/protocol/rest/server.py): (method, path). A name is what its route's parameter takes
# (anything but "/"): ``GET /v1/models/iris:predict`` is the model-ready route for a model named
# ``iris:predict``. The versioned routes answer 501 whatever the model, so the server answers
# those itself, as other methods (405).
_MODEL_ROUTES = (
    ("GET", re.compile(r"^/v1/models/(?P<model>[^/]+)$")),
    ("POST", re.compile(r"^/v1/models/(?P<model>[^/]+):(predict|explain)$")),
    ("GET", re.compile(r"^/v2/models/(?P<model>[^/]+)(/ready)?$")),
    ("POST", re.compile(r"^/v2/models/(?P<model>[^/]+)/infer$")),
)


def service_host(name: str, namespace: str, domain: str = DEFAULT_DOMAIN) -> str:
    return f"{name}.{namespace}.{domain}"


def tag_host(tag: str, host: str) -> str:
    return f"{tag}-{host}"


def normalize_host(host: str) -> str:
    """Lower case, without a port."""
    host = host.strip().lower()
    if host.startswith("["):  # an IPv6 literal keeps its colons
        return host.split("]")[0] + "]"
    return host.rsplit(":", 1)[0] if ":" in host else host


def model_in_path(method: str, path: str) -> str | None:
    """The model a KServe model route names (``POST /v1/models/iris:predict``: ``iris``), else
    None.

    Server paths (``/v2/health/ready``, ``/metrics``, ``/v1/models``, ``/v2/repository/...``),
    versioned model paths, a method the route does not take and any other path name none.
    """
    if not path.startswith(("/v1/models/", "/v2/models/")):
        return None
    for route_method, pattern in _MODEL_ROUTES:
        if method == route_method:
            m = pattern.match(path)
            if m:
                return m.group("model")
    return None


@dataclass(frozen=True)
class TrafficTarget:
    revision: RevisionKey
    percent: int
    tag: str | None = None


@dataclass(frozen=True)
class Route:
    host: str
    targets: tuple[TrafficTarget, ...]

    def pick(self, draw: float) -> RevisionKey:
        """The revision for a draw in [0, 100): targets own consecutive percent ranges."""
        acc = 0
        for t in self.targets:
            acc += t.percent
            if draw < acc:
                return t.revision
        return self.targets[-1].revision


def make_route(host: str, targets: Sequence[TrafficTarget]) -> Route:
    """Validate a route as Knative does: percents in 0..100 summing to 100."""
    if not targets:
        raise ValueError(f"route {host!r}: traffic needs at least one target")
    for t in targets:
        if not 0 <= t.percent <= 100:
            raise ValueError(f"route {host!r}: percent={t.percent} for {t.revision} not in 0..100")
    total = sum(t.percent for t in targets)
    if total != 100:
        raise ValueError(f"route {host!r}: traffic percents sum to {total}, must be 100")
    return Route(normalize_host(host), tuple(t for t in targets))


class RouteTable:
    """Hosts to routes; each tagged target also answers on ``<tag>-<host>`` with 100 %."""

    def __init__(self) -> None:
        self._routes: dict[str, Route] = {}
        self._owned: dict[str, list[str]] = {}

    def set_route(self, host: str, targets: Sequence[TrafficTarget]) -> Route:
        route = make_route(host, targets)
        self.remove_route(route.host)
        hosts = [route.host]
        self._routes[route.host] = route
        for t in route.targets:
            if t.tag:
                th = tag_host(t.tag, route.host)
                self._routes[th] = Route(th, (TrafficTarget(t.revision, 100, t.tag),))
                hosts.append(th)
        self._owned[route.host] = hosts
        return route

    def remove_route(self, host: str) -> None:
        for h in self._owned.pop(normalize_host(host), []):
            self._routes.pop(h, None)

    def lookup(self, host: str) -> Route | None:
        return self._routes.get(normalize_host(host))

    def hosts(self) -> list[str]:
        return sorted(self._routes)

    def revisions(self) -> set[RevisionKey]:
        return {t.revision for r in self._routes.values() for t in r.targets}
