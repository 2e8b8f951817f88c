"""The official kubernetes Python client against the server: list, watch, patch, conflicts,
the status subresource, 410 on an old resourceVersion, leader election."""

from __future__ import annotations

import datetime
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

from autoscaler.apiserver.testing import RunningAPIServer, running_apiserver

ISVC_GROUP, ISVC_VERSION, ISVC_PLURAL = "serving.kserve.io", "v1beta1", "inferenceservices"


@pytest.fixture
def api(server: RunningAPIServer) -> Iterator[client.ApiClient]:
    c = server.api_client()
    yield c
    c.close()


def isvc(name: str, min_replicas: int = 0) -> dict[str, Any]:
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": name},
        "spec": {
            "predictor": {
                "minReplicas": min_replicas,
                "model": {"modelFormat": {"name": "sklearn"}},
            }
        },
    }


def test_create_list_with_selectors_and_pagination(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="paging")))
    for i in range(5):
        core.create_namespaced_config_map(
            "paging",
            client.V1ConfigMap(
                metadata=client.V1ObjectMeta(
                    name=f"cm{i}", labels={"parity": "even" if i % 2 == 0 else "odd"}
                ),
                data={"i": str(i)},
            ),
        )
    even = core.list_namespaced_config_map("paging", label_selector="parity=even")
    assert [c.metadata.name for c in even.items] == ["cm0", "cm2", "cm4"]
    one = core.list_namespaced_config_map("paging", field_selector="metadata.name=cm3")
    assert [c.metadata.name for c in one.items] == ["cm3"]
    page1 = core.list_namespaced_config_map("paging", limit=2)
    assert [c.metadata.name for c in page1.items] == ["cm0", "cm1"]
    assert page1.metadata.remaining_item_count == 3
    page2 = core.list_namespaced_config_map("paging", limit=2, _continue=page1.metadata._continue)
    page3 = core.list_namespaced_config_map("paging", limit=2, _continue=page2.metadata._continue)
    assert [c.metadata.name for c in page2.items + page3.items] == ["cm2", "cm3", "cm4"]
    assert not page3.metadata._continue
    everywhere = core.list_config_map_for_all_namespaces(label_selector="parity in (odd)")
    assert {(c.metadata.namespace, c.metadata.name) for c in everywhere.items} == {
        ("paging", "cm1"),
        ("paging", "cm3"),
    }


def test_create_sets_system_metadata_and_rejects_duplicates(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    made = core.create_namespaced_config_map(
        "default", client.V1ConfigMap(metadata=client.V1ObjectMeta(generate_name="gen-"))
    )
    assert made.metadata.name.startswith("gen-") and len(made.metadata.name) == 9
    assert made.metadata.uid and made.metadata.creation_timestamp and made.metadata.resource_version
    with pytest.raises(ApiException) as info:
        core.create_namespaced_config_map(
            "default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name=made.metadata.name))
        )
    assert info.value.status == 409 and "AlreadyExists" in info.value.body
    with pytest.raises(ApiException) as info:
        core.create_namespaced_config_map(
            "nowhere", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="x"))
        )
    assert info.value.status == 404 and 'namespaces \\"nowhere\\" not found' in info.value.body


def test_stale_update_conflicts_naming_the_version(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    cm = core.create_namespaced_config_map(
        "default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="occ"), data={"v": "1"})
    )
    stale = cm.metadata.resource_version
    cm.data = {"v": "2"}
    core.replace_namespaced_config_map("occ", "default", cm)
    cm.data = {"v": "3"}
    cm.metadata.resource_version = stale
    with pytest.raises(ApiException) as info:
        core.replace_namespaced_config_map("occ", "default", cm)
    assert info.value.status == 409
    assert "Conflict" in info.value.body and f"resourceVersion {stale} is stale" in info.value.body


def test_patch_kinds_on_builtin_and_custom(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    custom = client.CustomObjectsApi(api)
    core.create_namespaced_config_map(
        "default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="p"), data={"a": "1"})
    )
    # the client picks the media type from the body: a list is a JSON patch, a dict strategic merge
    got = core.patch_namespaced_config_map(
        "p", "default", [{"op": "add", "path": "/data/b", "value": "2"}]
    )
    assert got.data == {"a": "1", "b": "2"}
    got = core.patch_namespaced_config_map("p", "default", {"data": {"a": None, "c": "3"}})
    assert got.data == {"b": "2", "c": "3"}
    got = core.patch_namespaced_config_map(
        "p",
        "default",
        {"metadata": {"labels": {"m": "1"}}, "data": {"b": None}},
        _content_type="application/merge-patch+json",
    )
    assert got.data == {"c": "3"} and got.metadata.labels == {"m": "1"}
    applied = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "p"},
        "data": {"d": "4"},
    }
    got = core.patch_namespaced_config_map(
        "p", "default", applied, field_manager="test", _content_type="application/apply-patch+yaml"
    )
    assert got.data == {"c": "3", "d": "4"}
    applied["metadata"]["name"] = "p-new"
    got = core.patch_namespaced_config_map(
        "p-new",
        "default",
        applied,
        field_manager="test",
        _content_type="application/apply-patch+yaml",
    )
    assert got.metadata.uid and got.data == {"d": "4"}, "apply creates what is missing"
    with pytest.raises(ApiException) as info:
        core.patch_namespaced_config_map(
            "p", "default", applied, _content_type="application/apply-patch+yaml"
        )
    assert info.value.status == 400 and "fieldManager" in info.value.body
    custom.create_namespaced_custom_object(
        ISVC_GROUP, ISVC_VERSION, "default", ISVC_PLURAL, isvc("patchme")
    )
    got = custom.patch_namespaced_custom_object(
        ISVC_GROUP,
        ISVC_VERSION,
        "default",
        ISVC_PLURAL,
        "patchme",
        {"spec": {"predictor": {"minReplicas": 2}}},
    )
    assert got["spec"]["predictor"]["minReplicas"] == 2 and got["metadata"]["generation"] == 2
    got = custom.patch_namespaced_custom_object(
        ISVC_GROUP,
        ISVC_VERSION,
        "default",
        ISVC_PLURAL,
        "patchme",
        [{"op": "replace", "path": "/spec/predictor/minReplicas", "value": 1}],
        _content_type="application/json-patch+json",
    )
    assert got["spec"]["predictor"]["minReplicas"] == 1 and got["metadata"]["generation"] == 3


def test_strategic_merge_on_a_custom_resource_is_415(raw: Any) -> None:
    r = raw(
        "PATCH",
        "/apis/serving.kserve.io/v1beta1/namespaces/default/inferenceservices/x",
        data=b"{}",
        headers={"Content-Type": "application/strategic-merge-patch+json"},
    )
    assert r.status_code == 415 and r.json()["reason"] == "UnsupportedMediaType"


def test_status_subresource_and_generation(api: client.ApiClient) -> None:
    custom = client.CustomObjectsApi(api)
    made = custom.create_namespaced_custom_object(
        ISVC_GROUP,
        ISVC_VERSION,
        "default",
        ISVC_PLURAL,
        {**isvc("st"), "status": {"url": "ignored"}},
    )
    assert "status" not in made and made["metadata"]["generation"] == 1
    status = {
        "url": "http://st.default.example.com",
        "conditions": [{"type": "Ready", "status": "True"}],
    }
    after = custom.patch_namespaced_custom_object_status(
        ISVC_GROUP,
        ISVC_VERSION,
        "default",
        ISVC_PLURAL,
        "st",
        {"status": status, "spec": {"predictor": {"minReplicas": 9}}},
    )
    assert after["status"] == status
    assert after["spec"]["predictor"]["minReplicas"] == 0, "a status write changes only status"
    assert after["metadata"]["generation"] == 1, "status changes do not bump generation"
    labelled = custom.patch_namespaced_custom_object(
        ISVC_GROUP,
        ISVC_VERSION,
        "default",
        ISVC_PLURAL,
        "st",
        {"metadata": {"labels": {"a": "b"}}, "status": {"url": "main-write"}},
    )
    assert labelled["metadata"]["generation"] == 1, "metadata changes do not bump generation"
    assert labelled["status"]["url"] == status["url"], "main writes ignore status"
    spec = custom.patch_namespaced_custom_object(
        ISVC_GROUP,
        ISVC_VERSION,
        "default",
        ISVC_PLURAL,
        "st",
        {"spec": {"predictor": {"minReplicas": 1}}},
    )
    assert spec["metadata"]["generation"] == 2
    rv = spec["metadata"]["resourceVersion"]
    same = custom.patch_namespaced_custom_object(
        ISVC_GROUP,
        ISVC_VERSION,
        "default",
        ISVC_PLURAL,
        "st",
        {"spec": {"predictor": {"minReplicas": 1}}},
    )
    assert same["metadata"]["resourceVersion"] == rv, "a no-op write makes no new version"


def test_invalid_custom_object_names_the_field(api: client.ApiClient) -> None:
    custom = client.CustomObjectsApi(api)
    with pytest.raises(ApiException) as info:
        custom.create_namespaced_custom_object(
            ISVC_GROUP, ISVC_VERSION, "default", ISVC_PLURAL, isvc("bad", min_replicas=-1)
        )
    assert info.value.status == 422
    import json

    body = json.loads(info.value.body)
    assert body["reason"] == "Invalid"
    assert body["details"]["causes"][0]["field"] == "spec.predictor.minReplicas"
    bad = isvc("bad2")
    bad["spec"]["predictor"]["canaryTrafficPercent"] = 101
    with pytest.raises(ApiException) as info:
        custom.create_namespaced_custom_object(
            ISVC_GROUP, ISVC_VERSION, "default", ISVC_PLURAL, bad
        )
    assert "spec.predictor.canaryTrafficPercent" in info.value.body
    with pytest.raises(ApiException) as info:
        custom.create_namespaced_custom_object(
            ISVC_GROUP, ISVC_VERSION, "default", ISVC_PLURAL, {**isvc("bad3"), "spec": {}}
        )
    assert "spec.predictor: Required value" in info.value.body


def test_watch_stream_sees_changes_in_order(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="watched")))
    start = core.list_namespaced_config_map("watched").metadata.resource_version
    core.create_namespaced_config_map(
        "watched", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="w"), data={"n": "1"})
    )
    core.patch_namespaced_config_map("w", "watched", {"data": {"n": "2"}})
    core.delete_namespaced_config_map("w", "watched")
    w = watch.Watch()
    seen = []
    for event in w.stream(
        core.list_namespaced_config_map, "watched", resource_version=start, timeout_seconds=5
    ):
        seen.append(
            (event["type"], event["object"].metadata.name, (event["object"].data or {}).get("n"))
        )
        if len(seen) == 3:
            w.stop()
    assert seen == [("ADDED", "w", "1"), ("MODIFIED", "w", "2"), ("DELETED", "w", "2")]


def test_watch_from_zero_starts_with_current_state(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="initial")))
    core.create_namespaced_config_map(
        "initial", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="here"))
    )
    w = watch.Watch()
    events = list(
        w.stream(
            core.list_namespaced_config_map, "initial", resource_version="0", timeout_seconds=1
        )
    )
    assert [(e["type"], e["object"].metadata.name) for e in events] == [("ADDED", "here")]


def test_watch_bookmarks(raw: Any, api: client.ApiClient) -> None:
    handle = raw.handle
    handle.server.settings.bookmark_interval_s = 0.2
    try:
        r = raw(
            "GET",
            "/api/v1/namespaces/default/configmaps?watch=true&allowWatchBookmarks=true&timeoutSeconds=1&resourceVersion="
            + str(handle.server.store.rv),
            stream=True,
        )
        lines = [line for line in r.iter_lines() if line]
    finally:
        handle.server.settings.bookmark_interval_s = 10.0
    import json

    kinds = [json.loads(line)["type"] for line in lines]
    assert "BOOKMARK" in kinds
    mark = next(json.loads(line) for line in lines if json.loads(line)["type"] == "BOOKMARK")
    assert int(mark["object"]["metadata"]["resourceVersion"]) >= 1


def test_watch_from_compacted_version_is_410(tmp_path: Any) -> None:
    with running_apiserver(tmp_path, history=20) as small:
        api = small.api_client()
        core = client.CoreV1Api(api)
        old = core.list_namespaced_config_map("default").metadata.resource_version
        for i in range(30):
            core.create_namespaced_config_map(
                "default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name=f"c{i}"))
            )
        with pytest.raises(ApiException) as info:
            for _ in watch.Watch().stream(
                core.list_namespaced_config_map,
                "default",
                resource_version=old,
                timeout_seconds=2,
                _request_timeout=10,
            ):
                pass
        assert info.value.status == 410 and "Expired" in str(info.value.reason)
        recent = str(small.server.store.rv - 5)
        events = list(
            watch.Watch().stream(
                core.list_namespaced_config_map,
                "default",
                resource_version=recent,
                timeout_seconds=1,
            )
        )
        assert [e["object"].metadata.name for e in events] == [f"c{i}" for i in range(25, 30)]
        api.close()


def test_finalizers_hold_deletion(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_config_map(
        "default",
        client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name="fin", finalizers=["example.com/hold"])
        ),
    )
    core.delete_namespaced_config_map("fin", "default")
    held = core.read_namespaced_config_map("fin", "default")
    assert held.metadata.deletion_timestamp is not None
    core.patch_namespaced_config_map(
        "fin",
        "default",
        {"metadata": {"$deleteFromPrimitiveList/finalizers": ["example.com/hold"]}},
    )
    with pytest.raises(ApiException) as info:
        core.read_namespaced_config_map("fin", "default")
    assert info.value.status == 404


def test_a_deleted_pod_is_answered_with_the_pod_others_with_a_status(
    api: client.ApiClient,
) -> None:
    """As Kubernetes' storage does: a Pod's DELETE answers with the Pod as it was, a
    ConfigMap's and a custom resource's with a Status naming it (its group, its resource in
    ``kind``, its uid); a custom resource held by a finalizer with the object, now deleting."""
    core = client.CoreV1Api(api)
    custom = client.CustomObjectsApi(api)
    made = custom.create_namespaced_custom_object(
        ISVC_GROUP, ISVC_VERSION, "default", ISVC_PLURAL, isvc("gone")
    )
    answer = custom.delete_namespaced_custom_object(
        ISVC_GROUP, ISVC_VERSION, "default", ISVC_PLURAL, "gone"
    )
    assert (answer["kind"], answer["status"]) == ("Status", "Success")
    assert answer["details"] == {
        "name": "gone",
        "group": ISVC_GROUP,
        "kind": ISVC_PLURAL,
        "uid": made["metadata"]["uid"],
    }
    held = isvc("held")
    held["metadata"]["finalizers"] = ["example.com/hold"]
    custom.create_namespaced_custom_object(ISVC_GROUP, ISVC_VERSION, "default", ISVC_PLURAL, held)
    answer = custom.delete_namespaced_custom_object(
        ISVC_GROUP, ISVC_VERSION, "default", ISVC_PLURAL, "held"
    )
    assert answer["kind"] == "InferenceService"
    assert answer["metadata"]["deletionTimestamp"]
    core.create_namespaced_pod(
        "default",
        {"metadata": {"name": "p1"}, "spec": {"containers": [{"name": "c", "image": "x:1"}]}},
    )
    core.create_namespaced_config_map("default", {"metadata": {"name": "c1"}})
    resp = core.delete_namespaced_pod("p1", "default", _preload_content=False)
    answer = json.loads(resp.data)
    assert (answer["kind"], answer["metadata"]["name"]) == ("Pod", "p1")
    assert answer["spec"]["containers"][0]["name"] == "c"
    resp = core.delete_namespaced_config_map("c1", "default", _preload_content=False)
    answer = json.loads(resp.data)
    assert (answer["kind"], answer["status"]) == ("Status", "Success")
    assert (answer["details"]["name"], answer["details"]["kind"]) == ("c1", "configmaps")
    for read in (core.read_namespaced_pod, core.read_namespaced_config_map):
        with pytest.raises(ApiException) as info:
            read("p1" if read == core.read_namespaced_pod else "c1", "default")
        assert info.value.status == 404


def test_delete_collection_and_dry_run(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="bulk")))
    for i in range(3):
        core.create_namespaced_config_map(
            "bulk",
            client.V1ConfigMap(
                metadata=client.V1ObjectMeta(name=f"b{i}", labels={"k": "v" if i else "w"})
            ),
        )
    core.create_namespaced_config_map(
        "bulk", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="dry")), dry_run="All"
    )
    core.delete_namespaced_config_map("b0", "bulk", dry_run="All")
    assert sorted(c.metadata.name for c in core.list_namespaced_config_map("bulk").items) == [
        "b0",
        "b1",
        "b2",
    ]
    core.delete_collection_namespaced_config_map(
        "bulk", label_selector="k=v", propagation_policy="Background"
    )
    assert [c.metadata.name for c in core.list_namespaced_config_map("bulk").items] == ["b0"]
    core.delete_namespace("bulk")
    with pytest.raises(ApiException) as info:
        core.read_namespace("bulk")
    assert info.value.status == 404
    assert core.list_namespaced_config_map("bulk").items == []


def test_events_in_both_groups_share_storage(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_event(
        "default",
        client.CoreV1Event(
            metadata=client.V1ObjectMeta(name="ev1"),
            involved_object=client.V1ObjectReference(
                kind="InferenceService", name="m1", namespace="default"
            ),
            reason="Scaled",
            message="scaled to 2",
            type="Normal",
            event_time=datetime.datetime(2025, 1, 2, 3, 4, 5, 123456, tzinfo=datetime.UTC),
        ),
    )
    found = core.list_namespaced_event(
        "default", field_selector="involvedObject.kind=InferenceService,involvedObject.name=m1"
    )
    assert [e.metadata.name for e in found.items] == ["ev1"]
    ev = client.EventsV1Api(api).read_namespaced_event("ev1", "default")
    assert ev.note == "scaled to 2" and ev.regarding.name == "m1"


def test_leader_election_with_lease_and_configmap_locks(server: RunningAPIServer) -> None:
    from kubernetes.leaderelection import electionconfig, leaderelection
    from kubernetes.leaderelection.resourcelock.configmaplock import ConfigMapLock
    from kubernetes.leaderelection.resourcelock.leaselock import LeaseLock

    config.load_kube_config(config_file=str(server.kubeconfig_path))
    for lock in (LeaseLock("tuner", "default", "me"), ConfigMapLock("tuner-cm", "default", "me")):
        leading = threading.Event()
        release = threading.Event()

        def started(leading: threading.Event = leading, release: threading.Event = release) -> None:
            leading.set()
            release.wait(10)
            raise RuntimeError("done leading")  # ends the renew loop

        cfg = electionconfig.Config(
            lock,
            lease_duration=4,
            renew_deadline=3,
            retry_period=1,
            onstarted_leading=started,
            onstopped_leading=lambda: None,
        )
        thread = threading.Thread(target=leaderelection.LeaderElection(cfg).run, daemon=True)
        thread.start()
        assert leading.wait(10), f"{type(lock).__name__} never led"
        time.sleep(0.1)
        release.set()
        thread.join(10)
    api = server.api_client()
    lease = client.CoordinationV1Api(api).read_namespaced_lease("tuner", "default")
    assert lease.spec.holder_identity == "me"
    cm = client.CoreV1Api(api).read_namespaced_config_map("tuner-cm", "default")
    assert "control-plane.alpha.kubernetes.io/leader" in cm.metadata.annotations
    api.close()
