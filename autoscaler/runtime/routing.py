"""Routes: which revision a request goes to, by Host, KServe path and traffic percent. Pure.

Mirrors what Knative's ingress does with a Route (a host and a traffic split over revisions, with
tags giving each tagged target its own host ``<tag>-<host>``, as KServe's tag routing uses
``latest-`` and ``prev-``) and the KServe paths the model server answers. Hosts follow Knative's
``<name>.<namespace>.<domain>`` with the default domain ``example.com``.

Which paths a revision answers depends on what it is: an InferenceService's revision runs the
KServe model server, so only KServe's paths reach it (anything else is a 404 answered without
waking it); a Knative Service of its own (a function) gets every path and method, as Knative
routes a host to its revision whatever the path.

The traffic draw is an argument (a number in [0, 100)), so tests can be exact.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from autoscaler.runtime.spec import RevisionKey

DEFAULT_DOMAIN = "example.com"

# KServe's REST paths and whether they name a model (kserve/protocol/rest/v1_endpoints.py,
# v2_endpoints.py).
_MODEL_PATHS = (
    re.compile(r"^/v1/models/(?P<model>[^/:]+):(predict|explain)$"),
    re.compile(r"^/v1/models/(?P<model>[^/:]+)$"),
    re.compile(r"^/v2/models/(?P<model>[^/]+)/(infer|ready)$"),
    re.compile(r"^/v2/models/(?P<model>[^/]+)/versions/[^/]+/(infer|ready)$"),
    re.compile(r"^/v2/models/(?P<model>[^/]+)$"),
)
_SERVER_PATHS = frozenset({"/v2/health/ready", "/v2/health/live", "/v2", "/"})


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


@dataclass(frozen=True)
class PathMatch:
    known: bool
    model: str | None = None


def match_path(path: str, kserve_paths: bool = True) -> PathMatch:
    """Whether a revision takes ``path``, and the model it names if any.

    With ``kserve_paths`` (an InferenceService's revision) only KServe's paths are known; without
    (a Knative Service of its own) every path is, naming no model.
    """
    if not kserve_paths:
        return PathMatch(True)
    if path in _SERVER_PATHS:
        return PathMatch(True)
    for pattern in _MODEL_PATHS:
        m = pattern.match(path)
        if m:
            return PathMatch(True, m.group("model"))
    return PathMatch(False)


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
