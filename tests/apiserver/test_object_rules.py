"""Rules on writes and reads the upstream API server enforces: no finalizer added to an object
being deleted, immutable ConfigMaps, no metadata.generation on kinds that have none, and paged
lists read from one snapshot."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from autoscaler.apiserver.testing import RunningAPIServer, open_crd, running_apiserver


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


def test_namespaces_carry_their_name_label(server: RunningAPIServer) -> None:
    """Every namespace is labelled kubernetes.io/metadata.name=<name>, the initial ones too; a
    write that changes or removes the label gets it back."""
    assert server.kubectl("create", "namespace", "team-a").returncode == 0
    for ns in ("team-a", "default", "kube-system"):
        out = server.kubectl("get", "ns", "-l", f"kubernetes.io/metadata.name={ns}", "-o", "name")
        assert out.returncode == 0, out.stderr
        assert out.stdout.split() == [f"namespace/{ns}"]
    out = server.kubectl("label", "ns", "team-a", "--overwrite", "kubernetes.io/metadata.name=x")
    assert out.returncode == 0, out.stderr
    out = server.kubectl("label", "ns", "team-a", "kubernetes.io/metadata.name-", "other=1")
    assert out.returncode == 0, out.stderr
    got = server.kubectl("get", "ns", "team-a", "-o", "jsonpath={.metadata.labels}")
    assert json.loads(got.stdout) == {"kubernetes.io/metadata.name": "team-a", "other": "1"}


def test_namespaces_stored_without_the_name_label_get_it_on_start(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with running_apiserver(tmp_path, data_dir=data) as first:
        assert first.kubectl("create", "namespace", "older").returncode == 0
    conn = sqlite3.connect(str(data / "store.db"))
    with conn:
        for name, body in conn.execute(
            "SELECT name, body FROM objects WHERE grp='' AND plural='namespaces'"
        ).fetchall():
            obj = json.loads(body)
            obj["metadata"].pop("labels")
            conn.execute(
                "UPDATE objects SET body=? WHERE grp='' AND plural='namespaces' AND name=?",
                (json.dumps(obj), name),
            )
    conn.close()
    with running_apiserver(tmp_path, data_dir=data) as second:
        out = second.kubectl("get", "ns", "-l", "kubernetes.io/metadata.name=older", "-o", "name")
        assert out.stdout.split() == ["namespace/older"]
        out = second.kubectl("get", "ns", "-l", "kubernetes.io/metadata.name=default", "-o", "name")
        assert out.stdout.split() == ["namespace/default"]


def test_patching_a_terminating_namespace_keeps_it_while_it_has_content(
    core: client.CoreV1Api,
) -> None:
    ns = _namespace(core, "terminating-label")
    core.create_namespaced_config_map(
        ns, {"metadata": {"name": "held", "finalizers": ["example.com/hold"]}}
    )
    core.delete_namespace(ns)
    core.patch_namespace(ns, {"metadata": {"labels": {"touched": "yes"}}})
    got = core.read_namespace(ns)
    assert got.status.phase == "Terminating"
    assert got.metadata.labels["touched"] == "yes"
    core.patch_namespaced_config_map("held", ns, {"metadata": {"finalizers": None}})
    with pytest.raises(ApiException) as gone:
        core.read_namespace(ns)
    assert gone.value.status == 404


def test_delete_that_marks_an_object_bumps_its_generation(server: RunningAPIServer) -> None:
    """A delete that leaves the object for its finalizers sets deletionTimestamp and moves
    metadata.generation on (kinds with a generation only); a second delete changes nothing."""
    api = server.api_client()
    try:
        ext = client.ApiextensionsV1Api(api)
        ext.create_custom_resource_definition(open_crd("gadgets", "Gadget"))
        custom = client.CustomObjectsApi(api)
        args = ("example.com", "v1", "default", "gadgets")
        custom.create_namespaced_custom_object(
            *args,
            {
                "apiVersion": "example.com/v1",
                "kind": "Gadget",
                "metadata": {"name": "g1", "finalizers": ["example.com/hold"]},
                "spec": {"a": 1},
            },
        )
        custom.patch_namespaced_custom_object(*args, "g1", {"spec": {"a": 2}})
        assert custom.get_namespaced_custom_object(*args, "g1")["metadata"]["generation"] == 2
        custom.delete_namespaced_custom_object(*args, "g1")
        marked = custom.get_namespaced_custom_object(*args, "g1")["metadata"]
        assert marked["deletionTimestamp"]
        assert marked["generation"] == 3
        custom.delete_namespaced_custom_object(*args, "g1")
        again = custom.get_namespaced_custom_object(*args, "g1")["metadata"]
        assert again["generation"] == 3
        assert again["resourceVersion"] == marked["resourceVersion"]
        core = client.CoreV1Api(api)
        core.create_namespaced_config_map(
            "default", {"metadata": {"name": "gen-del", "finalizers": ["example.com/hold"]}}
        )
        core.delete_namespaced_config_map("gen-del", "default")
        cm = core.read_namespaced_config_map("gen-del", "default")
        assert cm.metadata.deletion_timestamp is not None
        assert cm.metadata.generation is None
        core.patch_namespaced_config_map("gen-del", "default", {"metadata": {"finalizers": None}})
        custom.patch_namespaced_custom_object(*args, "g1", {"metadata": {"finalizers": None}})
        with pytest.raises(ApiException) as gone:
            custom.get_namespaced_custom_object(*args, "g1")
        assert gone.value.status == 404
    finally:
        api.close()


def test_uid_in_an_update_is_a_precondition_and_immutable(core: client.CoreV1Api) -> None:
    """A PUT whose body names another uid (a saved copy of a since recreated object) is a 409
    precondition failure; a patch changing metadata.uid is a 422 (field is immutable)."""
    saved = core.create_namespaced_config_map(
        "default", {"metadata": {"name": "uid-pre"}, "data": {"who": "first"}}
    )
    core.delete_namespaced_config_map("uid-pre", "default")
    again = core.create_namespaced_config_map(
        "default", {"metadata": {"name": "uid-pre"}, "data": {"who": "recreated"}}
    )
    saved.metadata.resource_version = None
    saved.data = {"who": "stale copy"}
    with pytest.raises(ApiException) as err:
        core.replace_namespaced_config_map("uid-pre", "default", saved)
    assert err.value.status == 409
    body = json.loads(err.value.body)
    assert body["reason"] == "Conflict"
    assert body["message"] == (
        'Operation cannot be fulfilled on configmaps "uid-pre": Precondition failed: UID in '
        f"precondition: {saved.metadata.uid}, UID in object meta: {again.metadata.uid}"
    )
    assert core.read_namespaced_config_map("uid-pre", "default").data == {"who": "recreated"}
    # the right uid, or none, goes through
    again.metadata.resource_version = None
    again.data = {"who": "replaced"}
    assert core.replace_namespaced_config_map("uid-pre", "default", again).data["who"] == (
        "replaced"
    )
    with pytest.raises(ApiException) as err:
        core.patch_namespaced_config_map(
            "uid-pre", "default", {"metadata": {"uid": "11111111-1111-1111-1111-111111111111"}}
        )
    assert err.value.status == 422
    body = json.loads(err.value.body)
    assert body["reason"] == "Invalid"
    assert body["details"]["causes"] == [
        {
            "reason": "FieldValueInvalid",
            "message": 'Invalid value: "11111111-1111-1111-1111-111111111111": field is immutable',
            "field": "metadata.uid",
        }
    ]
    assert core.read_namespaced_config_map("uid-pre", "default").metadata.uid == again.metadata.uid


def test_kubectl_replace_of_a_saved_copy_over_a_recreated_object_is_refused(
    server: RunningAPIServer,
) -> None:
    out = server.kubectl("create", "configmap", "uid-kubectl", "--from-literal=who=first")
    assert out.returncode == 0, out.stderr
    saved = json.loads(server.kubectl("get", "cm", "uid-kubectl", "-o", "json").stdout)
    assert server.kubectl("delete", "cm", "uid-kubectl").returncode == 0
    assert server.kubectl("create", "cm", "uid-kubectl", "--from-literal=who=new").returncode == 0
    del saved["metadata"]["resourceVersion"]
    out = server.kubectl("replace", "-f", "-", input=json.dumps(saved))
    assert out.returncode != 0
    assert "Precondition failed: UID in precondition" in out.stderr
    got = server.kubectl("get", "cm", "uid-kubectl", "-o", "jsonpath={.data.who}")
    assert got.stdout == "new"
