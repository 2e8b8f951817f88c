"""Server-side apply with field ownership (metadata.managedFields): kubectl apply --server-side,
conflicts and --force-conflicts, fields a manager stops applying, ownership taken by other
writes, keyed lists and sets, the status subresource."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes import client

from autoscaler.apiserver.testing import RunningAPIServer
from tests.apiserver.conftest import Raw

APPLY = {"Content-Type": "application/apply-patch+yaml"}
MERGE = {"Content-Type": "application/merge-patch+json"}


def ok(result: Any) -> str:
    assert result.returncode == 0, result.stderr
    return str(result.stdout)


def cm(name: str, data: dict[str, str] | None, labels: dict[str, str] | None = None) -> str:
    meta: dict[str, Any] = {"name": name}
    if labels:
        meta["labels"] = labels
    obj: dict[str, Any] = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta}
    if data is not None:
        obj["data"] = data
    return json.dumps(obj)


def managers(obj: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """(manager, operation) -> fieldsV1."""
    return {
        (e["manager"], e["operation"]): e["fieldsV1"]
        for e in obj["metadata"].get("managedFields") or ()
    }


def get_cm(raw: Raw, name: str) -> dict[str, Any]:
    r = raw("GET", f"/api/v1/namespaces/default/configmaps/{name}")
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_apply_removes_what_the_manager_stopped_applying(
    server: RunningAPIServer, raw: Raw
) -> None:
    ok(
        server.kubectl(
            "apply",
            "--server-side",
            "-f",
            "-",
            input=cm("s1", {"k1": "v1", "k2": "v2"}, {"a": "x", "b": "y"}),
        )
    )
    ok(
        server.kubectl(
            "apply", "--server-side", "-f", "-", input=cm("s1", {"k1": "v1"}, {"a": "x"})
        )
    )
    got = get_cm(raw, "s1")
    assert got["data"] == {"k1": "v1"} and got["metadata"]["labels"] == {"a": "x"}
    (entry,) = got["metadata"]["managedFields"]
    assert entry["manager"] == "kubectl" and entry["operation"] == "Apply"
    assert entry["apiVersion"] == "v1" and entry["fieldsType"] == "FieldsV1" and entry["time"]
    assert entry["fieldsV1"] == {"f:data": {"f:k1": {}}, "f:metadata": {"f:labels": {"f:a": {}}}}


def test_conflict_then_force_takes_ownership(server: RunningAPIServer, raw: Raw) -> None:
    ok(
        server.kubectl(
            "apply", "--server-side", "-f", "-", input=cm("s2", {"k1": "v1"}, {"a": "x"})
        )
    )
    other = cm("s2", {"k1": "other"})
    refused = server.kubectl(
        "apply", "--server-side", "--field-manager=someone-else", "-f", "-", input=other
    )
    assert refused.returncode != 0
    assert 'Apply failed with 1 conflict: conflict with "kubectl": .data.k1' in refused.stderr
    r = raw(
        "PATCH",
        "/api/v1/namespaces/default/configmaps/s2?fieldManager=someone-else",
        data=other,
        headers=APPLY,
    )
    assert r.status_code == 409
    status = r.json()
    assert status["reason"] == "Conflict"
    assert status["message"] == 'Apply failed with 1 conflict: conflict with "kubectl": .data.k1'
    assert status["details"]["causes"] == [
        {
            "reason": "FieldManagerConflict",
            "message": 'conflict with "kubectl"',
            "field": ".data.k1",
        }
    ]
    assert get_cm(raw, "s2")["data"] == {"k1": "v1"}
    # applying the same value is no conflict: both own it
    ok(
        server.kubectl(
            "apply",
            "--server-side",
            "--field-manager=co-owner",
            "-f",
            "-",
            input=cm("s2", {"k1": "v1"}),
        )
    )
    ok(
        server.kubectl(
            "apply",
            "--server-side",
            "--field-manager=someone-else",
            "--force-conflicts",
            "-f",
            "-",
            input=other,
        )
    )
    got = get_cm(raw, "s2")
    assert got["data"] == {"k1": "other"}
    owners = managers(got)
    assert owners[("someone-else", "Apply")] == {"f:data": {"f:k1": {}}}
    assert owners[("kubectl", "Apply")] == {"f:metadata": {"f:labels": {"f:a": {}}}}
    assert ("co-owner", "Apply") not in owners, "force took the field from every manager"
    # kubectl's own configuration now conflicts with the new owner
    again = server.kubectl(
        "apply", "--server-side", "-f", "-", input=cm("s2", {"k1": "v1"}, {"a": "x"})
    )
    assert again.returncode != 0 and 'conflict with "someone-else": .data.k1' in again.stderr


def test_a_field_another_manager_owns_is_kept(server: RunningAPIServer, raw: Raw) -> None:
    path = "/api/v1/namespaces/default/configmaps/s3"
    assert (
        raw(
            "PATCH", path + "?fieldManager=a", data=cm("s3", {"k1": "1", "k2": "2"}), headers=APPLY
        ).status_code
        == 201
    )
    assert (
        raw(
            "PATCH", path + "?fieldManager=b", data=cm("s3", {"k2": "2"}), headers=APPLY
        ).status_code
        == 200
    )
    r = raw("PATCH", path + "?fieldManager=a", data=cm("s3", None), headers=APPLY)
    assert r.status_code == 200 and r.json()["data"] == {"k2": "2"}
    assert managers(r.json()) == {("b", "Apply"): {"f:data": {"f:k2": {}}}}
    # a no-op apply writes nothing
    again = raw("PATCH", path + "?fieldManager=b", data=cm("s3", {"k2": "2"}), headers=APPLY)
    assert again.json()["metadata"]["resourceVersion"] == r.json()["metadata"]["resourceVersion"]


def test_other_writes_take_the_fields_they_change(server: RunningAPIServer, raw: Raw) -> None:
    ok(server.kubectl("create", "configmap", "s4", "--from-literal=k1=v1", "--from-literal=k2=v2"))
    refused = server.kubectl("apply", "--server-side", "-f", "-", input=cm("s4", {"k1": "v9"}))
    assert refused.returncode != 0
    assert 'conflict with "kubectl-create" using v1: .data.k1' in refused.stderr
    ok(server.kubectl("apply", "--server-side", "-f", "-", input=cm("s4", {"k1": "v1"})))
    api = server.api_client()
    try:
        client.CoreV1Api(api).patch_namespaced_config_map(
            "s4", "default", {"data": {"k1": "v2"}}, field_manager="editor"
        )
    finally:
        api.close()
    ok(server.kubectl("label", "configmap", "s4", "team=x"))
    # no fieldManager: the User-Agent's product names the manager
    r = raw(
        "PATCH",
        "/api/v1/namespaces/default/configmaps/s4",
        data=json.dumps({"data": {"k3": "v3"}}),
        headers=MERGE,
    )
    assert r.status_code == 200
    owners = managers(r.json())
    assert owners[("editor", "Update")] == {"f:data": {"f:k1": {}}}
    assert owners[("kubectl-create", "Update")] == {"f:data": {"f:k2": {}}}
    assert owners[("kubectl-label", "Update")] == {"f:metadata": {"f:labels": {"f:team": {}}}}
    assert owners[("python-requests", "Update")] == {"f:data": {"f:k3": {}}}
    assert ("kubectl", "Apply") not in owners, "kubectl's only field went to the editor"
    # a removed field leaves its owner; managedFields [{}] clears them all
    r = raw(
        "PATCH",
        "/api/v1/namespaces/default/configmaps/s4",
        data=json.dumps({"data": {"k2": None}}),
        headers=MERGE,
    )
    assert ("kubectl-create", "Update") not in managers(r.json())
    r = raw(
        "PATCH",
        "/api/v1/namespaces/default/configmaps/s4",
        data=json.dumps({"metadata": {"managedFields": [{}]}}),
        headers=MERGE,
    )
    assert "managedFields" not in r.json()["metadata"]


GADGETS_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "gadgets.example.com"},
    "spec": {
        "group": "example.com",
        "scope": "Namespaced",
        "names": {"plural": "gadgets", "kind": "Gadget"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "properties": {
                                    "ports": {
                                        "type": "array",
                                        "x-kubernetes-list-type": "map",
                                        "x-kubernetes-list-map-keys": ["name"],
                                        "items": {
                                            "type": "object",
                                            "required": ["name"],
                                            "properties": {
                                                "name": {"type": "string"},
                                                "port": {"type": "integer"},
                                            },
                                        },
                                    },
                                    "tags": {
                                        "type": "array",
                                        "x-kubernetes-list-type": "set",
                                        "items": {"type": "string"},
                                    },
                                    "args": {"type": "array", "items": {"type": "string"}},
                                },
                            },
                            "status": {
                                "type": "object",
                                "x-kubernetes-preserve-unknown-fields": True,
                            },
                        },
                    }
                },
            }
        ],
    },
}


@pytest.fixture(scope="module")
def gadgets(server: RunningAPIServer) -> str:
    r = Raw(server)
    try:
        made = r(
            "POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", json=GADGETS_CRD
        )
        assert made.status_code == 201, made.text
    finally:
        r.close()
    ok(
        server.kubectl(
            "wait", "--for", "condition=established", "crd/gadgets.example.com", "--timeout=10s"
        )
    )
    return "/apis/example.com/v1/namespaces/default/gadgets"


def gadget(spec: dict[str, Any] | None = None, status: dict[str, Any] | None = None) -> str:
    obj: dict[str, Any] = {
        "apiVersion": "example.com/v1",
        "kind": "Gadget",
        "metadata": {"name": "g"},
    }
    if spec is not None:
        obj["spec"] = spec
    if status is not None:
        obj["status"] = status
    return json.dumps(obj)


def test_keyed_lists_sets_and_atomic_lists(raw: Raw, gadgets: str) -> None:
    g = gadgets + "/g"
    first = {
        "ports": [{"name": "a", "port": 1}, {"name": "b", "port": 2}],
        "tags": ["x", "y"],
        "args": ["1", "2"],
    }
    r = raw("PATCH", g + "?fieldManager=m1", data=gadget(first), headers=APPLY)
    assert r.status_code == 201, r.text
    assert managers(r.json())[("m1", "Apply")] == {
        "f:spec": {
            "f:args": {},
            "f:ports": {
                'k:{"name":"a"}': {".": {}, "f:name": {}, "f:port": {}},
                'k:{"name":"b"}': {".": {}, "f:name": {}, "f:port": {}},
            },
            "f:tags": {'v:"x"': {}, 'v:"y"': {}},
        }
    }
    r = raw(
        "PATCH",
        g + "?fieldManager=m2",
        data=gadget({"ports": [{"name": "c", "port": 3}], "tags": ["z"]}),
        headers=APPLY,
    )
    assert r.json()["spec"]["ports"] == [
        {"name": "a", "port": 1},
        {"name": "b", "port": 2},
        {"name": "c", "port": 3},
    ]
    assert r.json()["spec"]["tags"] == ["x", "y", "z"]
    r = raw(
        "PATCH",
        g + "?fieldManager=m2",
        data=gadget({"ports": [{"name": "a", "port": 9}, {"name": "c", "port": 3}]}),
        headers=APPLY,
    )
    assert r.status_code == 409
    assert (
        r.json()["message"]
        == 'Apply failed with 1 conflict: conflict with "m1": .spec.ports[name="a"].port'
    )
    # m1 drops item b, tag y and the atomic list; m2's item and tag stay
    r = raw(
        "PATCH",
        g + "?fieldManager=m1",
        data=gadget({"ports": [{"name": "a", "port": 1}], "tags": ["x"]}),
        headers=APPLY,
    )
    assert r.status_code == 200, r.text
    assert r.json()["spec"] == {
        "ports": [{"name": "a", "port": 1}, {"name": "c", "port": 3}],
        "tags": ["x", "z"],
    }
    # an atomic list is owned whole: another value of it conflicts
    raw(
        "PATCH",
        g + "?fieldManager=m1",
        data=gadget({"ports": [{"name": "a", "port": 1}], "tags": ["x"], "args": ["1"]}),
        headers=APPLY,
    )
    r = raw(
        "PATCH",
        g + "?fieldManager=m2",
        data=gadget({"ports": [{"name": "c", "port": 3}], "tags": ["z"], "args": ["1", "3"]}),
        headers=APPLY,
    )
    assert r.status_code == 409 and r.json()["details"]["causes"][0]["field"] == ".spec.args"


def test_status_subresource_apply(raw: Raw, gadgets: str) -> None:
    g = gadgets + "/st"
    body = gadget({"tags": ["x"]}).replace('"name": "g"', '"name": "st"')
    assert raw("PATCH", g + "?fieldManager=m1", data=body, headers=APPLY).status_code == 201
    status = gadget(status={"phase": "Ready"}).replace('"name": "g"', '"name": "st"')
    r = raw("PATCH", g + "/status?fieldManager=ctl", data=status, headers=APPLY)
    assert r.status_code == 200 and r.json()["status"] == {"phase": "Ready"}
    entry = next(e for e in r.json()["metadata"]["managedFields"] if e["manager"] == "ctl")
    assert entry["subresource"] == "status" and entry["fieldsV1"] == {"f:status": {"f:phase": {}}}
    # the main resource's apply neither owns nor clears status
    r = raw("PATCH", g + "?fieldManager=m1", data=body, headers=APPLY)
    assert r.json()["status"] == {"phase": "Ready"}
