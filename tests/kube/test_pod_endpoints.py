"""The direct source's replicas from a watch of the revisions' Pods, on the embedded API server.

A tick and every sampling round between ticks ask for each tuned revision's replicas; in a
cluster they come from a cache fed by one watch of the Pods labelled with a revision, not from a
LIST per revision per round. Before the watch has listed, a call lists the revision's Pods.
The informer under it goes on from the last event's resourceVersion when the server ends a
watch, so nothing is replayed to it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from autoscaler.apiserver.audit import RequestRecord
from autoscaler.apiserver.errors import APIError
from autoscaler.apiserver.testing import RunningAPIServer
from autoscaler.kube.endpoints import (
    PodEndpoints,
    endpoint_fields,
    replica_endpoints,
    revision_of,
)
from autoscaler.kube.informer import PODS, Informer
from autoscaler.kube.retry import Backoff
from autoscaler.runtime.reconcile import names
from tests.kube.kit import wait_for

NS = "default"


def pod(core: client.CoreV1Api, name: str, revision: str, *, ip: str = "", phase: str = "Running", ns: str = NS) -> None:  # fmt: skip
    body: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {names.REVISION_LABEL: revision}},
        "spec": {"containers": [{"name": "queue-proxy", "image": "example/queue:1"}]},
    }
    core.create_namespaced_pod(ns, body)
    if ip:
        core.patch_namespaced_pod_status(name, ns, {"status": {"phase": phase, "podIP": ip}})


@pytest.fixture
def core(server: RunningAPIServer) -> client.CoreV1Api:
    api = client.CoreV1Api(server.api_client())
    api.create_namespace({"metadata": {"name": "other"}})
    return api


@pytest.fixture
def endpoints(server: RunningAPIServer) -> Iterator[PodEndpoints]:
    pe = PodEndpoints(server.api_client())
    yield pe
    pe.stop()


def names_of(pe: PodEndpoints, revision: str, ns: str = NS) -> list[str]:
    return [r.pod for r in pe.replicas(ns, revision)]


def refuse_pod_watches(
    server: RunningAPIServer, nth: int | None = None, code: int = 403
) -> list[int]:
    """Have the server refuse Pod watches (only the ``nth``, from 1, if given) with ``code``;
    returns a one-item list counting the watch requests seen."""
    seen = [0]

    def refuse(record: RequestRecord) -> None:
        if record.verb == "watch" and record.resource == "pods":
            seen[0] += 1
            if nth is None or seen[0] == nth:
                reason = "Forbidden" if code == 403 else "ServiceUnavailable"
                raise APIError(code, reason, f"pods: watch refused ({code})")

    server.server.audit_hooks.append(refuse)
    return seen


def test_replicas_come_from_the_watch_with_no_list_per_call(
    server: RunningAPIServer, core: client.CoreV1Api, endpoints: PodEndpoints
) -> None:
    pod(core, "r1-a", "r1", ip="10.0.0.1")
    pod(core, "r1-b", "r1", ip="fd00::2")
    pod(core, "r1-pending", "r1", ip="10.0.0.3", phase="Pending")
    pod(core, "r1-no-ip", "r1")
    pod(core, "r2-a", "r2", ip="10.0.0.4")
    pod(core, "r1-elsewhere", "r1", ip="10.0.0.5", ns="other")
    endpoints.start()
    assert endpoints.wait_synced(10.0)
    log = server.server.record_requests()
    for _ in range(20):  # a tick and the sampling rounds of many revisions
        assert names_of(endpoints, "r1") == ["r1-a", "r1-b"]
        assert names_of(endpoints, "r2") == ["r2-a"]
    assert names_of(endpoints, "r1", "other") == ["r1-elsewhere"]
    assert [r for r in log if r.resource == "pods"] == []
    assert endpoints.lists == 0
    a, b = endpoints.replicas(NS, "r1")
    assert a.urls == ("http://10.0.0.1:9090/metrics", "http://10.0.0.1:9091/metrics")
    assert a.gauge_urls == ("http://10.0.0.1:9090/metrics",)
    assert b.gauge_urls == ("http://[fd00::2]:9090/metrics",)


def test_pods_that_start_stop_or_go_are_seen(
    core: client.CoreV1Api, endpoints: PodEndpoints
) -> None:
    pod(core, "r1-a", "r1", ip="10.0.0.1")
    endpoints.start()
    assert endpoints.wait_synced(10.0)
    pod(core, "r1-b", "r1", ip="10.0.0.2")
    wait_for(lambda: names_of(endpoints, "r1") == ["r1-a", "r1-b"], 10.0, "the new pod")
    core.patch_namespaced_pod_status("r1-a", NS, {"status": {"phase": "Failed"}})
    wait_for(lambda: names_of(endpoints, "r1") == ["r1-b"], 10.0, "the failed pod to go")
    core.delete_namespaced_pod("r1-b", NS, _preload_content=False)
    wait_for(lambda: names_of(endpoints, "r1") == [], 10.0, "the deleted pod to go")
    assert endpoints.lists == 0


def test_the_cache_files_pods_by_revision_and_keeps_no_spec(
    server: RunningAPIServer, core: client.CoreV1Api, endpoints: PodEndpoints
) -> None:
    """A call reads its revision's Pods from an index (a Pod relabelled moves, one deleted
    goes), and the cache holds a Pod's name, labels, phase and IP, not its spec."""
    pod(core, "r1-a", "r1", ip="10.0.0.1")
    pod(core, "r1-b", "r1", ip="10.0.0.2")
    pod(core, "r2-a", "r2", ip="10.0.0.3")
    endpoints.start()
    assert endpoints.wait_synced(10.0)
    informer = endpoints._informer
    assert informer is not None
    cached = informer.get(NS, "r1-a")
    assert cached is not None and "spec" not in cached
    assert cached["status"] == {"phase": "Running", "podIP": "10.0.0.1"}
    assert cached["metadata"]["labels"] == {names.REVISION_LABEL: "r1"}
    assert sorted(p["metadata"]["name"] for p in informer.indexed(NS, "r1")) == ["r1-a", "r1-b"]
    core.patch_namespaced_pod("r1-b", NS, {"metadata": {"labels": {names.REVISION_LABEL: "r2"}}})
    wait_for(lambda: names_of(endpoints, "r2") == ["r1-b", "r2-a"], 10.0, "the relabelled pod")
    assert names_of(endpoints, "r1") == ["r1-a"]
    core.delete_namespaced_pod("r2-a", NS, _preload_content=False)
    wait_for(lambda: names_of(endpoints, "r2") == ["r1-b"], 10.0, "the deleted pod to go")
    # a Pod that loses the label leaves its revision
    core.patch_namespaced_pod("r1-a", NS, {"metadata": {"labels": {names.REVISION_LABEL: None}}})
    wait_for(lambda: names_of(endpoints, "r1") == [], 10.0, "the unlabelled pod to go")
    assert endpoints.lists == 0


def test_a_trimmed_pod_gives_the_endpoint_its_whole_object_gives() -> None:
    """The cache keeps of a Pod what ``endpoint_fields`` keeps; the list fallback reads whole
    Pods: both give the same replicas."""
    pods = [
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": n,
                "namespace": NS,
                "resourceVersion": "7",
                "labels": {names.REVISION_LABEL: "r1"},
                "annotations": {"a": "b"},
            },
            "spec": {"containers": [{"name": "queue-proxy"}]},
            "status": status,
        }
        for n, status in (
            ("v4", {"phase": "Running", "podIP": "10.0.0.1", "hostIP": "10.1.0.1"}),
            ("v6", {"phase": "Running", "podIP": "fd00::2"}),
            ("pending", {"phase": "Pending", "podIP": "10.0.0.3"}),
            ("bare", {}),
        )
    ]
    trimmed = [endpoint_fields(p) for p in pods]
    assert replica_endpoints(trimmed) == replica_endpoints(pods)
    assert [r.pod for r in replica_endpoints(trimmed)] == ["v4", "v6"]
    assert all("spec" not in p and "annotations" not in p["metadata"] for p in trimmed)


def test_a_list_files_the_pods_anew(server: RunningAPIServer, core: client.CoreV1Api) -> None:
    """After a list (the watch's history expired, or it kept failing) the index holds what the
    list holds: a Pod gone in between is in no revision's replicas."""
    pod(core, "r1-a", "r1", ip="10.0.0.1")
    pod(core, "r1-b", "r1", ip="10.0.0.2")
    informer = Informer(server.api_client(), PODS, index=revision_of, transform=endpoint_fields)
    informer._relist()  # not started: the test lists when it wants
    assert len(informer.indexed(NS, "r1")) == 2
    core.delete_namespaced_pod("r1-b", NS, _preload_content=False)
    informer._relist()
    assert [p["metadata"]["name"] for p in informer.indexed(NS, "r1")] == ["r1-a"]
    assert informer.indexed(NS, "r2") == []


def test_before_the_watch_has_listed_each_call_lists_the_revision(
    server: RunningAPIServer, core: client.CoreV1Api, endpoints: PodEndpoints
) -> None:
    pod(core, "r1-a", "r1", ip="10.0.0.1")
    pod(core, "r2-a", "r2", ip="10.0.0.4")
    log = server.server.record_requests()
    assert names_of(endpoints, "r1") == ["r1-a"]  # not started: no cache
    assert endpoints.lists == 1
    listed = [r for r in log if r.resource == "pods"]
    assert [(r.verb, r.namespace) for r in listed] == [("list", NS)]
    unwatched = PodEndpoints(server.api_client(), watch=False)
    unwatched.start()
    assert not unwatched.wait_synced(0.1)
    assert names_of(unwatched, "r2") == ["r2-a"] and unwatched.lists == 1


def test_the_watch_goes_on_from_its_last_event_when_the_server_ends_it(
    server: RunningAPIServer, core: client.CoreV1Api
) -> None:
    seen: list[tuple[str, str]] = []
    informer = Informer(
        server.api_client(), PODS, namespace=NS, label_selector=names.REVISION_LABEL,
        watch_timeout_s=1,
    )  # fmt: skip
    informer.add_handler(lambda kind, obj: seen.append((kind, obj["metadata"]["name"])))
    informer.start()
    try:
        assert informer.wait_synced(10.0)
        pod(core, "r1-a", "r1", ip="10.0.0.1")
        wait_for(lambda: len(seen) >= 2, 10.0, "the pod's creation and status")
        first = informer.watches
        # three more watches, each begun where the one before ended
        wait_for(lambda: informer.watches >= first + 3, 20.0, "the server to end watches")
        assert seen == [("ADDED", "r1-a"), ("MODIFIED", "r1-a")]
        assert informer.relists == 1
        obj = informer.get(NS, "r1-a")
        assert obj is not None and obj["status"]["podIP"] == "10.0.0.1"
        assert obj["apiVersion"] == "v1" and obj["kind"] == "Pod"
    finally:
        informer.stop()


def test_an_informer_of_another_core_kind_is_refused(server: RunningAPIServer) -> None:
    from autoscaler.kube.informer import Resource

    with pytest.raises(ValueError, match="only pods"):
        Informer(server.api_client(), Resource("", "v1", "services", "Service"))


def test_while_the_watch_is_refused_each_call_lists(
    server: RunningAPIServer, core: client.CoreV1Api
) -> None:
    """A role that grants list but not watch (the server answers the watch 403): the cache
    would fall behind, so calls list the revision's Pods instead, and see every change."""

    refuse_pod_watches(server)
    pod(core, "r1-a", "r1", ip="10.0.0.1")
    pe = PodEndpoints(server.api_client())
    pe.start()
    try:
        assert pe.wait_synced(10.0)  # the list worked
        informer = pe._informer
        assert informer is not None
        wait_for(lambda: informer.watches >= 1 and not informer.is_current(), 10.0, "a refusal")
        core.delete_namespaced_pod("r1-a", NS, _preload_content=False)
        pod(core, "r1-b", "r1", ip="10.0.0.2")
        assert names_of(pe, "r1") == ["r1-b"]
        assert pe.lists == 1
    finally:
        pe.stop()


def test_a_failed_watch_goes_on_from_its_last_event(
    server: RunningAPIServer, core: client.CoreV1Api
) -> None:
    """A watch the server refuses once (503) after one that delivered events: the next goes on
    from the last event delivered, not from the list's version, so nothing comes twice."""
    seen: list[tuple[str, str]] = []
    informer = Informer(
        server.api_client(), PODS, namespace=NS, label_selector=names.REVISION_LABEL,
        watch_timeout_s=1, backoff=Backoff(base_s=0.01, cap_s=0.05, attempts=1_000_000),
    )  # fmt: skip
    informer.add_handler(lambda kind, obj: seen.append((kind, obj["metadata"]["name"])))
    watches = refuse_pod_watches(server, nth=2, code=503)
    informer.start()
    try:
        assert informer.wait_synced(10.0)
        pod(core, "r1-a", "r1", ip="10.0.0.1")
        wait_for(lambda: watches[0] >= 4, 20.0, "the watch cut once and resumed twice")
        assert seen == [("ADDED", "r1-a"), ("MODIFIED", "r1-a")]
        assert informer.relists == 1
    finally:
        informer.stop()


def test_after_a_failed_watch_the_next_one_serves_the_cache_again(
    server: RunningAPIServer, core: client.CoreV1Api
) -> None:
    """One watch refused (a blip): calls list until the next watch delivers an event, then the
    cache serves them again, without waiting for that watch to end (a minute)."""
    watches = refuse_pod_watches(server, nth=1, code=503)
    pod(core, "r1-a", "r1", ip="10.0.0.1")
    pe = PodEndpoints(server.api_client())
    informer = pe._informer
    assert informer is not None
    informer._backoff = Backoff(base_s=0.01, cap_s=0.05, attempts=1_000_000)
    pe.start()
    try:
        assert pe.wait_synced(10.0)
        wait_for(lambda: watches[0] >= 2, 20.0, "a watch after the refused one")
        pod(core, "r1-b", "r1", ip="10.0.0.2")  # events on the open watch

        def following() -> bool:
            b = informer.get(NS, "r1-b")
            return informer.is_current() and b is not None and bool(b["status"].get("podIP"))

        wait_for(following, 10.0, "the cache to follow again")
        lists = pe.lists
        assert names_of(pe, "r1") == ["r1-a", "r1-b"]
        assert pe.lists == lists
    finally:
        pe.stop()


def test_a_failing_list_falls_back_to_the_cache(
    server: RunningAPIServer, core: client.CoreV1Api
) -> None:
    """The watch refused and then the list failing too (an API server in trouble): the
    replicas last known, not none (no replicas reads as a revision at zero)."""
    state = {"list_fails": False}

    def refuse_lists(record: RequestRecord) -> None:
        if record.verb == "list" and record.resource == "pods" and state["list_fails"]:
            raise APIError(500, "InternalError", "etcd is down")

    refuse_pod_watches(server)
    server.server.audit_hooks.append(refuse_lists)
    pod(core, "r1-a", "r1", ip="10.0.0.1")
    pe = PodEndpoints(server.api_client())
    pe.start()
    try:
        assert pe.wait_synced(10.0)
        informer = pe._informer
        assert informer is not None
        wait_for(lambda: not informer.is_current(), 10.0, "the refused watch")
        state["list_fails"] = True
        assert names_of(pe, "r1") == ["r1-a"]
        unwatched = PodEndpoints(server.api_client(), watch=False)
        assert names_of(unwatched, "r1") == []  # no cache to fall back to
    finally:
        pe.stop()


def _running(name: str, ports: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": {names.REVISION_LABEL: "r1"}},
        "spec": {"containers": [{"name": "kserve-container"}, {"name": "queue-proxy", "ports": ports}]},
        "status": {"phase": "Running", "podIP": "127.0.0.1"},
    }  # fmt: skip


def test_declared_queue_proxy_ports_are_read_where_declared() -> None:
    """Knative's port names say where the queue-proxy serves: Knative's own numbers when a Pod
    does not name them, the named ones when it does (a replica on a loopback port of its own),
    and one URL read whole when both names give one port."""
    admin = {"name": "http-queueadm", "containerPort": 8022}
    pods = [
        _running("knative", [admin]),
        _running("split", [
            {"name": "http-autometric", "containerPort": 41001},
            {"name": "http-usermetric", "containerPort": 41002},
        ]),
        _running("one", [
            {"name": "http-autometric", "containerPort": 41003},
            {"name": "http-usermetric", "containerPort": 41003},
        ]),
        _running("gauges", [{"name": "http-autometric", "containerPort": 41004}]),
    ]  # fmt: skip
    got = {r.pod: r for r in replica_endpoints(pods)}
    assert got["knative"].urls == (
        "http://127.0.0.1:9090/metrics",
        "http://127.0.0.1:9091/metrics",
    )
    assert got["knative"].gauge_urls == ("http://127.0.0.1:9090/metrics",)
    assert got["split"].urls == (
        "http://127.0.0.1:41001/metrics",
        "http://127.0.0.1:41002/metrics",
    )
    assert got["split"].gauge_urls == ("http://127.0.0.1:41001/metrics",)
    assert got["one"].urls == ("http://127.0.0.1:41003/metrics",)
    assert got["one"].gauge_urls == ()
    assert got["gauges"].urls == ("http://127.0.0.1:41004/metrics",)
    # the watch's cache keeps the named ports, so both paths agree
    assert replica_endpoints([endpoint_fields(p) for p in pods]) == replica_endpoints(pods)


def test_pods_starting_or_draining_are_no_endpoints() -> None:
    """As a Service's Endpoints: a Pod that says it is not Ready, or is being deleted, is not
    scraped; one that says nothing of readiness is judged by its phase."""
    ready = {"type": "Ready", "status": "True"}
    unready = {"type": "Ready", "status": "False"}
    pods = [_running(n, []) for n in ("ready", "starting", "draining", "silent")]
    pods[0]["status"]["conditions"] = [ready]
    pods[1]["status"]["conditions"] = [unready]
    pods[2]["status"]["conditions"] = [ready]
    pods[2]["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    assert [r.pod for r in replica_endpoints(pods)] == ["ready", "silent"]
    trimmed = [endpoint_fields(p) for p in pods]
    assert [r.pod for r in replica_endpoints(trimmed)] == ["ready", "silent"]
