"""PodMirror driven by pool snapshots against a real API server, with a hand-driven clock: what
kubectl shows of a replica at each step, the Deployment, coalesced writes with backoff while the
API refuses them, deleted Pods stopping their replica, a crashed replica restarting in its Pod,
and an earlier run's Pods removed."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import pytest_asyncio
from kubernetes import client

from autoscaler.apiserver.tables import parse_time
from autoscaler.apiserver.testing import RunningAPIServer, running_apiserver
from autoscaler.clock import ManualClock
from autoscaler.kube.endpoints import replica_endpoints
from autoscaler.runtime.podmirror import (
    FINALIZER,
    PodMirror,
    PoolView,
    ReplicaView,
    go_duration,
)
from autoscaler.runtime.replica import ReplicaState
from autoscaler.runtime.restarts import Crashed, Termination
from autoscaler.runtime.spec import RevisionKey

REV = "iris-predictor-00001"
HASH = "5d875957c9"
POD = f"{REV}-deployment-{HASH}-x2k4b"


def revision(namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Revision",
        "metadata": {
            "name": REV,
            "namespace": namespace,
            "uid": "rev-uid-1",
            "labels": {
                "serving.knative.dev/configuration": "iris-predictor",
                "serving.knative.dev/routingState": "active",
                "serving.kserve.io/inferenceservice": "iris",
            },
        },
        "spec": {
            "containers": [{"name": "kserve-container", "image": "kserve/sklearnserver:v0.21.0"}]
        },
    }


def replica(state: ReplicaState, clock: ManualClock, **kw: Any) -> ReplicaView:
    return ReplicaView(POD, state, kw.pop("stopping", False), clock.wall() - 5, **kw)


STARTING = {"state": ReplicaState.STARTING}
UP = {"launched": 1_700_000_000.0, "user_port": 40001, "proxy_port": 40002, "metrics_port": 40003}


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningAPIServer]:
    with running_apiserver(tmp_path_factory.mktemp("mirror")) as handle:
        yield handle


class Harness:
    def __init__(self, api: RunningAPIServer, namespace: str) -> None:
        self.api = api
        self.ns = namespace
        self.key = RevisionKey(namespace, REV)
        self.clock = ManualClock()
        self.deleted: list[tuple[RevisionKey, str]] = []
        self.deleted_event = asyncio.Event()
        self.client = api.api_client()
        self.core = client.CoreV1Api(self.client)
        self.mirror = PodMirror(
            self.client,
            self.clock,
            lambda key: revision(key.namespace) if key == self.key else None,
            self._delete_replica,
            node_name="node-1",
            coalesce_s=0.0,  # each step written at once: the steps are checked one by one
        )

    def _delete_replica(self, key: RevisionKey, name: str) -> bool:
        self.deleted.append((key, name))
        self.deleted_event.set()
        return True

    async def show(
        self,
        desired: int,
        *replicas: ReplicaView,
        closed: bool = False,
        crashed: tuple[Crashed, ...] = (),
    ) -> None:
        self.mirror.observe(PoolView(self.key, desired, HASH, replicas, closed, crashed))
        await asyncio.wait_for(self.mirror.settled(), 20)

    def get(self, *args: str) -> Any:
        out = self.api.kubectl("get", "-n", self.ns, *args, "-o", "json")
        return json.loads(out.stdout) if out.returncode == 0 else None

    def table(self, *args: str) -> list[list[str]]:
        """kubectl's rows without AGE (the server's clock, not the one driven here)."""
        out = self.api.kubectl("get", "-n", self.ns, *args)
        assert out.returncode == 0, out.stderr
        header = out.stdout.splitlines()[0].split()
        age = header.index("AGE")
        return [
            line.split()[:age] + line.split()[age + 1 :] for line in out.stdout.splitlines()[1:]
        ]


@pytest_asyncio.fixture
async def harness(api: RunningAPIServer, request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    ns = request.node.name.replace("_", "-")[5:40].strip("-")
    api.kubectl("create", "namespace", ns)
    h = Harness(api, ns)
    await h.mirror.start()
    try:
        yield h
    finally:
        await h.mirror.stop()


async def test_a_replica_shows_as_a_pod_from_creating_to_gone(harness: Harness) -> None:
    h, clock = harness, harness.clock
    await h.show(1, replica(clock=clock, **STARTING))
    assert h.table("pods") == [[POD, "0/2", "ContainerCreating", "0"]]
    pod = h.get("pod", POD)
    assert pod["metadata"]["labels"] == {
        "serving.knative.dev/configuration": "iris-predictor",
        "serving.kserve.io/inferenceservice": "iris",
        "serving.knative.dev/revision": REV,
        "serving.knative.dev/revisionUID": "rev-uid-1",
        "app": REV,
        "pod-template-hash": HASH,
    }
    assert pod["metadata"]["ownerReferences"][0]["kind"] == "Deployment"
    assert pod["metadata"]["finalizers"] == [FINALIZER]
    assert [c["name"] for c in pod["spec"]["containers"]] == ["kserve-container", "queue-proxy"]
    assert pod["status"]["phase"] == "Pending"

    await h.show(1, replica(clock=clock, **STARTING, **UP))  # the model loads
    assert h.table("pods") == [[POD, "0/2", "Running", "0"]]  # up: its containers started
    up = h.get("pod", POD)
    ports = [
        [(p["name"], p["containerPort"]) for p in c["ports"]] for c in up["spec"]["containers"]
    ]
    assert ports == [
        [("user-port", 40001)],
        [("http1", 40002), ("http-autometric", 40003)],
    ]
    assert replica_endpoints([up]) == ()  # not ready: the tuner's Pod resolver leaves it out

    await h.show(1, replica(ReplicaState.READY, clock, **UP, ready=clock.wall()))
    # ready: the resolver reads its one metrics port once
    ready = h.get("pod", POD)
    assert [e.urls for e in replica_endpoints([ready])] == [("http://127.0.0.1:40003/metrics",)]
    wide = h.table("pods", "-o", "wide", "-l", f"serving.knative.dev/revision={REV}")
    assert [row[:6] for row in wide] == [[POD, "2/2", "Running", "0", "127.0.0.1", "node-1"]]
    assert h.table("deploy") == [[f"{REV}-deployment", "1/1", "1", "1"]]
    deploy = h.get("deploy", f"{REV}-deployment")
    # as Knative's: by the revision's uid
    assert deploy["spec"]["selector"] == {
        "matchLabels": {"serving.knative.dev/revisionUID": "rev-uid-1"}
    }
    owner = deploy["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["controller"]) == ("Revision", REV, True)
    available = {c["type"]: c["status"] for c in deploy["status"]["conditions"]}
    assert available == {"Available": "True", "Progressing": "True"}

    draining = replica(ReplicaState.DRAINING, clock, stopping=True, **UP, ready=clock.wall())
    await h.show(0, draining)  # scaled down: it drains
    assert h.table("pods")[0][:3] == [POD, "1/2", "Terminating"]
    assert h.table("deploy")[0][:2] == [f"{REV}-deployment", "0/0"]

    await h.show(0)  # the process has exited
    assert h.get("pods")["items"] == []
    assert h.deleted == []  # the runtime's own deletions stop no replica

    await h.show(0, closed=True)  # the revision was deleted: no garbage collector removes it
    assert h.get("deploy", f"{REV}-deployment") is None


async def test_api_errors_back_off_and_a_burst_is_written_once(harness: Harness) -> None:
    h, clock = harness, harness.clock
    h.key = RevisionKey("not-yet", REV)
    h.ns = "not-yet"
    await h.show(1, replica(clock=clock, **STARTING))  # no such namespace: refused
    assert h.mirror.failures == 1 and clock.sleepers() == 1
    for step in (UP, {**UP, "ready": clock.wall()}):
        state = ReplicaState.READY if "ready" in step else ReplicaState.STARTING
        h.mirror.observe(PoolView(h.key, 1, HASH, (replica(state, clock, **step),)))
    assert h.api.kubectl("create", "namespace", "not-yet").returncode == 0
    requests = h.api.server.record_requests()
    clock.advance(0.2)  # the first backoff
    await asyncio.wait_for(h.mirror.settled(), 20)
    assert h.mirror.failures == 0
    assert h.table("pods")[0][:3] == [POD, "2/2", "Running"]
    writes = [(r.verb, r.resource, r.subresource) for r in requests if r.verb != "list"]
    # the three steps observed while refused are one Pod create and one status write
    assert writes.count(("create", "pods", "")) == 1
    assert writes.count(("update", "pods", "status")) == 1


async def test_a_deleted_pod_stops_its_replica_and_stale_pods_go_at_start(
    harness: Harness,
) -> None:
    h, clock = harness, harness.clock
    stale = f"{REV}-deployment-{HASH}-old00"
    h.core.create_namespaced_pod(
        h.ns,
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": stale,
                "labels": {"serving.knative.dev/revision": REV},
                "finalizers": [FINALIZER],
            },
            "spec": {"containers": [{"name": "kserve-container", "image": "x"}]},
        },
    )
    await h.mirror.stop()
    h.mirror = PodMirror(
        h.client, clock, lambda key: revision(key.namespace), h._delete_replica, coalesce_s=0.0
    )
    await h.mirror.start()  # a new run: the old Pod's process is gone
    assert h.get("pod", stale) is None

    await h.show(1, replica(ReplicaState.READY, clock, **UP, ready=clock.wall()))
    await asyncio.to_thread(h.core.delete_namespaced_pod, POD, h.ns)  # as kubectl delete pod
    await asyncio.wait_for(h.deleted_event.wait(), 20)
    assert h.deleted == [(h.key, POD)]
    assert h.table("pods")[0][:3] == [POD, "2/2", "Terminating"]  # until the process exits
    draining = replica(ReplicaState.DRAINING, clock, stopping=True, **UP, ready=clock.wall())
    await h.show(1, draining)
    await h.show(1)
    assert h.get("pods")["items"] == []


async def _until(check: Any, timeout_s: float = 10.0) -> None:
    """Poll ``check`` (a real watch's event arrives on its own thread) until true or timeout."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not check():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_a_deleted_deployment_is_made_again_and_one_revisions_backoff_holds_up_no_other(
    harness: Harness,
) -> None:
    h, clock = harness, harness.clock
    await h.show(1, replica(ReplicaState.READY, clock, **UP, ready=clock.wall()))
    name = f"{REV}-deployment"
    first = h.get("deploy", name)["metadata"]["uid"]

    # another revision the mirror cannot write yet backs off, alone
    other = RevisionKey(h.ns, "unknown-00001")
    h.mirror.observe(PoolView(other, 1, HASH))
    await asyncio.wait_for(h.mirror.settled(), 20)
    assert h.mirror.failures == 1
    await h.show(2, replica(ReplicaState.READY, clock, **UP, ready=clock.wall()))
    assert h.table("deploy")[0][:2] == [name, "1/2"]  # written with no clock moved

    # someone deletes the Deployment: it is made again, as a revision's would be
    assert h.api.kubectl("delete", "deploy", "-n", h.ns, name).returncode == 0
    await _until(
        lambda: (h.get("deploy", name) or {}).get("metadata", {}).get("uid") not in (None, first)
    )
    await asyncio.wait_for(h.mirror.settled(), 20)
    again = h.get("deploy", name)
    assert again["status"].get("readyReplicas") == 1
    # its Pod follows the new owner
    pod = h.get("pod", POD)
    assert pod["metadata"]["ownerReferences"][0]["uid"] == again["metadata"]["uid"]


async def test_a_replicas_start_is_written_once_it_has_gathered(harness: Harness) -> None:
    """Steps observed within the coalescing time are one round of writes after it: nothing is
    written on the loop while a replica wakes from zero."""
    h, clock = harness, harness.clock
    await h.mirror.stop()
    h.mirror = PodMirror(
        h.client, clock, lambda key: revision(key.namespace), h._delete_replica, coalesce_s=0.25
    )
    await h.mirror.start()
    requests = h.api.server.record_requests()
    for view in (
        replica(clock=clock, **STARTING),
        replica(clock=clock, **STARTING, **UP),
        replica(ReplicaState.READY, clock, **UP, ready=clock.wall()),
    ):
        h.mirror.observe(PoolView(h.key, 1, HASH, (view,)))
        await asyncio.sleep(0)
    await _until(lambda: clock.sleepers() == 1)
    assert [r for r in requests if r.verb not in ("list", "watch")] == []
    clock.advance(0.25)
    await asyncio.wait_for(h.mirror.settled(), 20)
    writes = [
        (r.verb, r.resource, r.subresource) for r in requests if r.verb not in ("list", "watch")
    ]
    assert writes.count(("create", "pods", "")) == 1
    assert writes.count(("update", "pods", "status")) == 1
    assert h.table("pods")[0][:3] == [POD, "2/2", "Running"]


KILLED = Termination(
    137, "Error", "exited unexpectedly (code -9)", 1_700_000_000.0, 1_700_000_100.0
)


def crashed(clock: ManualClock, **kw: Any) -> Crashed:
    """The replica of ``replica()`` crashed (killed) in its first run."""
    fields: dict[str, Any] = {
        "name": POD,
        "created_at": clock.wall() - 5,
        "launched_at": UP["launched"],
        "restart_count": 0,
        "terminated": KILLED,
        "last_state": None,
        "backoff_s": 2.0,
    }
    return Crashed(**{**fields, **kw})


def terminated(t: Termination) -> dict[str, Any]:
    """``t`` as a container state's ``terminated``, its times as seconds (see ``at``)."""
    return {
        "exitCode": t.exit_code,
        "reason": t.reason,
        "message": t.message,
        "startedAt": t.started_at,
        "finishedAt": t.finished_at,
    }


def at(state: dict[str, Any]) -> dict[str, Any]:
    """A container state (or last state) with its times as seconds: the client library the
    mirror writes with turns ``Z`` into ``+00:00``, both RFC 3339 forms of UTC."""
    return {
        kind: {k: parse_time(v) if k.endswith("At") else v for k, v in fields.items()}
        for kind, fields in state.items()
    }


async def test_a_crashed_replica_restarts_in_its_pod(harness: Harness) -> None:
    """The same Pod throughout: CrashLoopBackOff with the kubelet's message while the pool backs
    off (Ready False, the queue-proxy running but not ready), then the next run with restart
    count 1 and the run that ended as its last state; a crash restarted at once shows as the
    run that ended (kubectl: Error) with the run before as its last state."""
    h, clock = harness, harness.clock
    await h.show(1, replica(ReplicaState.READY, clock, **UP, ready=clock.wall()))
    uid = h.get("pod", POD)["metadata"]["uid"]
    crash = crashed(clock)
    await h.show(1, crashed=(crash,))
    assert h.table("pods") == [[POD, "0/2", "CrashLoopBackOff", "0"]]  # no restart yet
    pod = h.get("pod", POD)
    assert pod["metadata"]["uid"] == uid and pod["status"]["phase"] == "Running"
    user, queue = pod["status"]["containerStatuses"]
    message = f"back-off 2s restarting failed container=kserve-container pod={POD}_{h.ns}({uid})"
    assert user["state"] == {"waiting": {"reason": "CrashLoopBackOff", "message": message}}
    assert at(user["lastState"]) == {"terminated": terminated(KILLED)}
    assert (user["restartCount"], user["ready"], user["started"]) == (0, False, False)
    assert (at(queue["state"]), queue["ready"]) == ({"running": {"startedAt": 1.7e9}}, False)
    conditions = {c["type"]: c for c in pod["status"]["conditions"]}
    for type_ in ("Ready", "ContainersReady"):
        assert conditions[type_]["status"] == "False"
        assert conditions[type_]["reason"] == "ContainersNotReady"
        assert parse_time(conditions[type_]["lastTransitionTime"]) == KILLED.finished_at
    assert replica_endpoints([pod]) == ()

    # the next run: restarted in the same Pod; until its process is up the container shows the
    # run that ended, as the kubelet does until the new container exists
    await h.show(1, replica(clock=clock, **STARTING, restarted_from=crash))
    assert h.table("pods") == [[POD, "0/2", "Error", "0"]]
    user = h.get("pod", POD)["status"]["containerStatuses"][0]
    assert (at(user["state"]), user["restartCount"]) == ({"terminated": terminated(KILLED)}, 0)
    run = {**UP, "launched": 1_700_000_102.0, "restarted_from": crash}
    await h.show(1, replica(clock=clock, **STARTING, **run))
    assert h.table("pods")[0][:4] == [POD, "0/2", "Running", "1"]  # RESTARTS 1 (... ago)
    await h.show(1, replica(ReplicaState.READY, clock, **run, ready=clock.wall()))
    assert h.table("pods")[0][:4] == [POD, "2/2", "Running", "1"]
    pod = h.get("pod", POD)
    assert pod["metadata"]["uid"] == uid
    user = pod["status"]["containerStatuses"][0]
    assert at(user["state"]) == {"running": {"startedAt": 1_700_000_102.0}}
    assert (user["restartCount"], at(user["lastState"])) == (1, {"terminated": terminated(KILLED)})
    assert [e.urls for e in replica_endpoints([pod])] == [("http://127.0.0.1:40003/metrics",)]

    # it crashes again, restarted at once: the run that ended, the one before as last state
    again = Termination(
        1, "Error", "exited unexpectedly (code 1)", 1_700_000_102.0, 1_700_000_200.0
    )
    await h.show(
        1,
        crashed=(
            crashed(clock, restart_count=1, terminated=again, last_state=KILLED, backoff_s=None),
        ),
    )
    assert h.table("pods")[0][:4] == [POD, "0/2", "Error", "1"]
    user = h.get("pod", POD)["status"]["containerStatuses"][0]
    assert at(user["state"]) == {"terminated": terminated(again)}
    assert (user["restartCount"], at(user["lastState"])) == (1, {"terminated": terminated(KILLED)})
    assert h.deleted == []


async def test_a_crashed_replica_shows_even_if_never_written_and_goes_when_its_pod_is_deleted(
    harness: Harness,
) -> None:
    """Its Pod is written even if the replica came and went between two writes, so `kubectl
    logs` can read what went wrong; deleting it gives it up in the pool, and then it goes."""
    h, clock = harness, harness.clock
    failed = Termination(1, "Error", "replica failed: ValueError: bad model", 1.7e9, 1.7e9 + 1)
    await h.show(1, crashed=(crashed(clock, terminated=failed, launched_at=None, backoff_s=0.5),))
    assert h.table("pods") == [[POD, "0/2", "CrashLoopBackOff", "0"]]
    pod = h.get("pod", POD)
    user, queue = pod["status"]["containerStatuses"]
    assert user["state"]["waiting"]["message"].startswith("back-off 500ms restarting failed")
    assert user["lastState"]["terminated"]["message"] == "replica failed: ValueError: bad model"
    assert queue["state"] == {"waiting": {"reason": "ContainerCreating"}}  # never started
    assert pod["status"]["phase"] == "Pending"  # as the kubelet's: a container waits to start
    assert replica_endpoints([pod]) == ()
    assert h.api.kubectl("delete", "pod", "-n", h.ns, POD, "--wait=false").returncode == 0
    await asyncio.wait_for(h.deleted_event.wait(), 20)
    assert h.deleted == [(h.key, POD)]
    await h.show(1)  # the pool gave it up
    assert h.get("pods")["items"] == []


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(10, "10s"), (80, "1m20s"), (300, "5m0s"), (1.5, "1.5s"), (0.5, "500ms"), (0, "0s"),
     (3600, "1h0m0s"), (0.0015, "1.5ms")],
    ids=str,
)  # fmt: skip
def test_durations_print_as_go_prints_them(seconds: float, shown: str) -> None:
    assert go_duration(seconds) == shown
