"""Rules on writes and reads the upstream API server enforces: no finalizer added to an object
being deleted."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from autoscaler.apiserver.testing import RunningAPIServer


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
