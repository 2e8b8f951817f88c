"""The Configuration reconcile: the status that observes a generation names its revision."""

from __future__ import annotations

import asyncio
from typing import Any

from autoscaler.clock import ManualClock
from autoscaler.runtime.reconcile import configuration, names
from autoscaler.runtime.reconcile.controller import ServingController
from tests.runtime.reconcile_testkit import Informer

R1, R2, R3 = "iris-predictor-00001", "iris-predictor-00002", "iris-predictor-00003"


def revision(name: str, generation: int) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "namespace": "default",
            "labels": {
                names.CONFIGURATION_LABEL: "iris-predictor",
                names.CONFIGURATION_GENERATION_LABEL: str(generation),
            },
        },
        "status": {"conditions": [names.condition("Ready", True)]},
    }


class Recorder(ServingController):
    """The controller's Configuration reconcile over stand-in informers and API writes."""

    def __init__(self, cfg: dict[str, Any], revisions: list[dict[str, Any]], exists: bool):
        self.clock = ManualClock()
        self.informers = {"cfg": Informer([cfg]), "rev": Informer(revisions)}
        self.exists = exists
        self.created: list[dict[str, Any]] = []
        self.statuses: list[dict[str, Any]] = []

    async def _create(self, kind: str, obj: dict[str, Any]) -> dict[str, Any] | None:
        assert kind == "rev"
        self.created.append(obj)
        return None if self.exists else {**obj, "metadata": {**obj["metadata"], "uid": "u"}}

    async def _write_status(
        self, kind: str, current: dict[str, Any], status: dict[str, Any]
    ) -> None:
        self.statuses.append(status)


def changed_configuration() -> dict[str, Any]:
    """Generation 3 (a changed template) whose status still tells of generation 2."""
    return {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Configuration",
        "metadata": {
            "name": "iris-predictor",
            "namespace": "default",
            "uid": "c1",
            "generation": 3,
        },
        "spec": {"template": {"spec": {"containers": [{"image": "x"}]}}},
        "status": {
            "observedGeneration": 2,
            "latestCreatedRevisionName": R2,
            "latestReadyRevisionName": R2,
            "conditions": [names.condition("Ready", True)],
        },
    }


def test_the_status_observing_a_new_generation_names_the_revision_just_created() -> None:
    ctl = Recorder(changed_configuration(), [revision(R1, 1), revision(R2, 2)], exists=False)
    asyncio.run(ctl._reconcile_cfg("default", "iris-predictor"))
    assert [r["metadata"]["name"] for r in ctl.created] == [R3]
    (st,) = ctl.statuses
    assert st["observedGeneration"] == 3
    assert (st["latestCreatedRevisionName"], st["latestReadyRevisionName"]) == (R3, R2)
    assert names.get_condition({"status": st}, "Ready")["status"] == "Unknown"  # type: ignore[index]


def test_a_revision_already_there_but_not_yet_seen_writes_no_status() -> None:
    # the informer has not delivered it: a status now would observe generation 3 with 00002
    # the latest created and Ready, as if the new spec were settled
    ctl = Recorder(changed_configuration(), [revision(R1, 1), revision(R2, 2)], exists=True)
    asyncio.run(ctl._reconcile_cfg("default", "iris-predictor"))
    assert ctl.statuses == []


def test_an_unchanged_generation_writes_its_status_as_before() -> None:
    cfg = changed_configuration()
    revs = [revision(R1, 1), revision(R2, 2), revision(R3, 3)]
    ctl = Recorder(cfg, revs, exists=False)
    asyncio.run(ctl._reconcile_cfg("default", "iris-predictor"))
    assert ctl.created == []
    assert ctl.statuses == [configuration.status(cfg, revs, ctl._now_iso())]
