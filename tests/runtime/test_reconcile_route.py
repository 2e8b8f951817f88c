"""The Route reconcile: traffic that cannot be assigned leaves the last good traffic serving."""

from __future__ import annotations

import asyncio
from typing import Any

from autoscaler.clock import ManualClock
from autoscaler.runtime.dataplane import DataPlane
from autoscaler.runtime.reconcile import names
from autoscaler.runtime.reconcile.controller import ServingController
from autoscaler.runtime.spec import RevisionKey
from tests.runtime.reconcile_testkit import Informer

NS, CFG = "models", "iris-predictor"
R1, R2, R3 = "iris-predictor-00001", "iris-predictor-00002", "iris-predictor-00003"
HOST = f"{CFG}.{NS}.example.com"


def revision(name: str) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "namespace": NS,
            "generation": 1,
            "labels": {names.CONFIGURATION_LABEL: CFG},
        },
        "status": {"observedGeneration": 1, "conditions": [names.condition("Ready", True)]},
    }


def configuration(latest_ready: str) -> dict[str, Any]:
    return {
        "metadata": {"name": CFG, "namespace": NS, "generation": 1},
        "status": {
            "observedGeneration": 1,
            "latestReadyRevisionName": latest_ready,
            "conditions": [names.condition("Ready", True)],
        },
    }


def route_to(traffic: list[dict[str, Any]], generation: int = 1) -> dict[str, Any]:
    return {
        "metadata": {"name": CFG, "namespace": NS, "generation": generation},
        "spec": {"traffic": traffic},
    }


LATEST = [{"configurationName": CFG, "latestRevision": True, "percent": 100}]
PINNED_R3 = [{"revisionName": R3, "percent": 100}]


class Recorder(ServingController):
    """The controller's Route reconcile over stand-in informers, a real data plane (its route
    table; no replica is started) and status writes the informers see at once."""

    def __init__(self, objs: dict[str, list[dict[str, Any]]]) -> None:
        self.clock = ManualClock()
        self.informers = {kind: Informer(objs.get(kind, [])) for kind in ("route", "cfg", "rev")}
        self.dataplane = DataPlane(self.clock, domain="example.com")
        self.domain = self.dataplane.domain
        self._route_hosts = {}
        self._routed_by = {}
        self.enqueued: list[tuple[str, str, str]] = []

    def enqueue(self, kind: str, namespace: str, name: str) -> None:
        self.enqueued.append((kind, namespace, name))

    async def _write_status(
        self, kind: str, current: dict[str, Any], status: dict[str, Any]
    ) -> None:
        current["status"] = status

    def reconcile(self) -> dict[str, Any]:
        asyncio.run(self._reconcile_route(NS, CFG))
        rt = self.informers["route"].get(NS, CFG)
        assert rt is not None
        return rt

    def serving(self, host: str = HOST) -> list[tuple[str, int]]:
        route = self.dataplane.routes.lookup(host)
        return [] if route is None else [(t.revision.name, t.percent) for t in route.targets]


def conds(rt: dict[str, Any]) -> dict[str, tuple[str, str | None]]:
    return {c["type"]: (c["status"], c.get("reason")) for c in rt["status"]["conditions"]}


def served_revisions(rt: dict[str, Any]) -> list[tuple[str, int]]:
    return [(t["revisionName"], t["percent"]) for t in rt["status"]["traffic"]]


def test_traffic_to_a_missing_revision_leaves_the_last_good_traffic_serving() -> None:
    rt = route_to(LATEST)
    revs = [revision(R1), revision(R2)]
    ctl = Recorder({"route": [rt], "cfg": [configuration(R2)], "rev": revs})
    ctl.reconcile()
    assert ctl.serving() == [(R2, 100)]
    # the spec now pins a revision that does not exist: no traffic goes to it
    rt["spec"]["traffic"], rt["metadata"]["generation"] = PINNED_R3, 2
    ctl.reconcile()
    assert ctl.serving() == [(R2, 100)]
    assert ctl.serving(f"{CFG}.{NS}.svc.cluster.local") == [(R2, 100)]
    assert served_revisions(rt) == [(R2, 100)]
    assert conds(rt)["AllTrafficAssigned"] == ("False", "RevisionMissing")
    assert conds(rt)["IngressReady"] == ("True", None)
    assert conds(rt)["Ready"] == ("False", "RevisionMissing")
    # the revision appears and is ready: its event brings the Route back, which now moves
    revs.append(revision(R3))
    ctl.enqueue_related("rev", revs[-1])
    assert ("route", NS, CFG) in ctl.enqueued
    ctl.reconcile()
    assert ctl.serving() == [(R3, 100)]
    assert served_revisions(rt) == [(R3, 100)]
    assert conds(rt)["Ready"] == ("True", None)


def test_a_revision_not_yet_ready_takes_no_traffic() -> None:
    rt = route_to(LATEST)
    unready = revision(R3)
    unready["status"]["conditions"] = [names.condition("Ready", None, "Deploying")]
    revs = [revision(R2), unready]
    ctl = Recorder({"route": [rt], "cfg": [configuration(R2)], "rev": revs})
    ctl.reconcile()
    rt["spec"]["traffic"] = [
        {"revisionName": R2, "percent": 50},
        {"revisionName": R3, "percent": 50},
    ]
    ctl.reconcile()
    assert ctl.serving() == [(R2, 100)]
    assert served_revisions(rt) == [(R2, 100)]
    assert conds(rt)["AllTrafficAssigned"] == ("Unknown", "RevisionMissing")


def test_after_a_restart_the_traffic_last_assigned_is_served() -> None:
    # a Route whose status tells of R2 at 100 % while its spec pins a missing revision: the
    # new controller's data plane starts empty, where Knative's ingress would still route to R2
    rt = route_to(LATEST)
    objs = {"route": [rt], "cfg": [configuration(R2)], "rev": [revision(R1), revision(R2)]}
    Recorder(objs).reconcile()
    rt["spec"]["traffic"], rt["metadata"]["generation"] = PINNED_R3, 2
    restarted = Recorder(objs)
    restarted.reconcile()
    assert restarted.serving() == [(R2, 100)]
    assert served_revisions(rt) == [(R2, 100)]
    assert conds(rt)["AllTrafficAssigned"] == ("False", "RevisionMissing")
    assert conds(rt)["IngressReady"] == ("True", None)
    assert restarted._routed_by[(NS, CFG)] == {RevisionKey(NS, R2)}


def test_a_route_never_assigned_serves_nothing() -> None:
    rt = route_to(PINNED_R3)
    ctl = Recorder({"route": [rt], "cfg": [configuration(R2)], "rev": [revision(R2)]})
    ctl.reconcile()
    assert ctl.dataplane.routes.hosts() == []
    assert rt["status"]["traffic"] == []
    assert conds(rt)["IngressReady"] == ("Unknown", None)


def test_a_revision_event_requeues_only_the_routes_naming_it() -> None:
    pinned, other = route_to(PINNED_R3), route_to(LATEST)
    other["metadata"]["name"] = "other"
    ctl = Recorder({"route": [pinned, other]})
    ctl.enqueue_related("rev", revision(R3))
    assert ctl.enqueued == [("rev", NS, R3), ("cfg", NS, CFG), ("route", NS, CFG)]
