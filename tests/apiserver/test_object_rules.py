"""Rules on writes and reads the upstream API server enforces: no finalizer added to an object
being deleted, immutable ConfigMaps, no metadata.generation on kinds that have none, and paged
lists read from one snapshot."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from autoscaler.apiserver.testing import RunningAPIServer, running_apiserver


@pytest.fixture
def core(server: RunningAPIServer) -> Iterator[client.CoreV1Api]:
    api = server.api_client()
    yield client.CoreV1Api(api)
    api.close()


def _namespace(core: client.CoreV1Api, name: str) -> str:
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    return name


def test_no_new_finalizer_on_an_object_being_deleted(core: client.CoreV1Api) -> None:
    ns = _namespace(core, "finalizing")
    core.create_namespaced_config_map(
        ns, {"metadata": {"name": "f1", "finalizers": ["example.com/a"]}}
    )
    core.delete_namespaced_config_map("f1", ns)
    assert core.read_namespaced_config_map("f1", ns).metadata.deletion_timestamp is not None
    with pytest.raises(ApiException) as err:
        core.patch_namespaced_config_map(
            "f1", ns, {"metadata": {"finalizers": ["example.com/a", "example.com/b"]}}
        )
    assert err.value.status == 422
    body = json.loads(err.value.body)
    assert body["reason"] == "Invalid"
    (cause,) = body["details"]["causes"]
    assert cause["field"] == "metadata.finalizers"
    assert cause["reason"] == "FieldValueForbidden"
    assert "no new finalizers can be added if the object is being deleted" in cause["message"]
    assert '"example.com/b"' in cause["message"]
    # other changes, and removing finalizers, still go through; the last one removes it
    core.patch_namespaced_config_map("f1", ns, {"data": {"k": "v"}})
    core.patch_namespaced_config_map("f1", ns, {"metadata": {"finalizers": None}})
    with pytest.raises(ApiException) as gone:
        core.read_namespaced_config_map("f1", ns)
    assert gone.value.status == 404


def test_immutable_configmap(server: RunningAPIServer) -> None:
    out = server.kubectl(
        "apply",
        "-f",
        "-",
        input="apiVersion: v1\nkind: ConfigMap\nmetadata: {name: im, namespace: default}\n"
        "immutable: true\ndata: {a: '1'}\n",
    )
    assert out.returncode == 0, out.stderr
    out = server.kubectl("patch", "cm", "im", "--type=merge", "-p", '{"data":{"a":"2"}}')
    assert out.returncode != 0
    assert (
        'The ConfigMap "im" is invalid: data: Forbidden: field is immutable when `immutable` is set'
        in out.stderr
    )
    out = server.kubectl("patch", "cm", "im", "--type=merge", "-p", '{"immutable":false}')
    assert out.returncode != 0 and "immutable: Forbidden" in out.stderr
    out = server.kubectl("patch", "cm", "im", "--type=merge", "-p", '{"binaryData":{"b":"AA=="}}')
    assert out.returncode != 0 and "binaryData: Forbidden" in out.stderr
    # metadata stays writable, and the object can be deleted
    assert server.kubectl("label", "cm", "im", "x=y").returncode == 0
    got = server.kubectl("get", "cm", "im", "-o", "jsonpath={.data.a} {.metadata.labels.x}")
    assert got.stdout == "1 y"
    assert server.kubectl("delete", "cm", "im").returncode == 0


def test_generation_only_on_kinds_that_have_one(server: RunningAPIServer) -> None:
    api = server.api_client()
    try:
        core = client.CoreV1Api(api)
        made = core.create_namespaced_config_map(
            "default", {"metadata": {"name": "nogen"}, "data": {"a": "1"}}
        )
        assert made.metadata.generation is None
        changed = core.patch_namespaced_config_map("nogen", "default", {"data": {"a": "2"}})
        assert changed.metadata.generation is None
        lease = client.CoordinationV1Api(api).create_namespaced_lease(
            "default", {"metadata": {"name": "nogen"}, "spec": {"holderIdentity": "x"}}
        )
        assert lease.metadata.generation is None
        deploy = client.AppsV1Api(api).create_namespaced_deployment(
            "default",
            {
                "metadata": {"name": "withgen"},
                "spec": {
                    "selector": {"matchLabels": {"app": "g"}},
                    "template": {
                        "metadata": {"labels": {"app": "g"}},
                        "spec": {"containers": [{"name": "c", "image": "i"}]},
                    },
                },
            },
        )
        assert deploy.metadata.generation == 1
    finally:
        api.close()


def test_paged_list_reads_one_snapshot(core: client.CoreV1Api) -> None:
    ns = _namespace(core, "snapshot")
    for name in ("a", "b", "c"):
        core.create_namespaced_config_map(ns, {"metadata": {"name": name}, "data": {"v": "1"}})
    p1 = core.list_namespaced_config_map(ns, limit=1)
    snapshot = p1.metadata.resource_version
    assert [i.metadata.name for i in p1.items] == ["a"] and p1.metadata._continue
    b_rv = core.read_namespaced_config_map("b", ns).metadata.resource_version
    # after the first page: one created, one changed, one deleted
    core.create_namespaced_config_map(ns, {"metadata": {"name": "bb"}, "data": {"v": "1"}})
    core.patch_namespaced_config_map("b", ns, {"data": {"v": "2"}})
    core.delete_namespaced_config_map("c", ns)
    p2 = core.list_namespaced_config_map(ns, limit=1, _continue=p1.metadata._continue)
    assert [(i.metadata.name, i.data) for i in p2.items] == [("b", {"v": "1"})]
    assert p2.items[0].metadata.resource_version == b_rv
    assert p2.metadata.resource_version == snapshot
    p3 = core.list_namespaced_config_map(ns, limit=1, _continue=p2.metadata._continue)
    assert [(i.metadata.name, i.data) for i in p3.items] == [("c", {"v": "1"})]
    assert p3.metadata.resource_version == snapshot and not p3.metadata._continue
    # a new list sees the present
    now = core.list_namespaced_config_map(ns)
    assert [(i.metadata.name, i.data["v"]) for i in now.items] == [
        ("a", "1"),
        ("b", "2"),
        ("bb", "1"),
    ]


def test_continue_token_beyond_the_history_is_410(tmp_path: Path) -> None:
    with running_apiserver(tmp_path, history=5) as small:
        api = small.api_client()
        core = client.CoreV1Api(api)
        for name in ("a", "b"):
            core.create_namespaced_config_map("default", {"metadata": {"name": name}})
        p1 = core.list_namespaced_config_map("default", limit=1)
        for i in range(8):
            core.patch_namespaced_config_map("b", "default", {"data": {"i": str(i)}})
        with pytest.raises(ApiException) as err:
            core.list_namespaced_config_map("default", limit=1, _continue=p1.metadata._continue)
        assert err.value.status == 410 and json.loads(err.value.body)["reason"] == "Expired"
        api.close()
