"""Deleting a CRD deletes its custom resources as a client would: one with a finalizer waits
for it, the CRD stays Terminating (no new custom resources) until the last is gone, as
upstream's custom resource cleanup does."""

from __future__ import annotations

import json

from kubernetes import client
from kubernetes.client.rest import ApiException

from autoscaler.apiserver.testing import RunningAPIServer, open_crd

GADGETS = """
apiVersion: example.com/v1
kind: Gadget
metadata: {name: kept, finalizers: [example.com/cleanup]}
---
apiVersion: example.com/v1
kind: Gadget
metadata: {name: plain}
"""


def delete_gadgets_crd(server: RunningAPIServer, ext: client.ApiextensionsV1Api) -> None:
    """The gadgets CRD made, its two custom resources applied, and the CRD deleted."""
    ext.create_custom_resource_definition(open_crd("gadgets", "Gadget"))
    out = server.kubectl("apply", "-f", "-", input=GADGETS)
    assert out.returncode == 0, out.stderr
    ext.delete_custom_resource_definition("gadgets.example.com")


def test_a_crd_waits_for_its_custom_resources_finalizers(server: RunningAPIServer) -> None:
    api = server.api_client()
    try:
        ext = client.ApiextensionsV1Api(api)
        delete_gadgets_crd(server, ext)
        objs = client.CustomObjectsApi(api)
        crd = ext.read_custom_resource_definition("gadgets.example.com")
        assert crd.metadata.deletion_timestamp is not None
        assert crd.metadata.finalizers == ["customresourcecleanup.apiextensions.k8s.io"]
        terminating = [c for c in crd.status.conditions if c.type == "Terminating"]
        assert [(c.status, c.reason) for c in terminating] == [
            ("True", "InstanceDeletionInProgress")
        ]
        # the one without a finalizer is gone; the other is being deleted, and still served
        names = [
            o["metadata"]["name"]
            for o in objs.list_namespaced_custom_object("example.com", "v1", "default", "gadgets")[
                "items"
            ]
        ]
        assert names == ["kept"]
        kept = objs.get_namespaced_custom_object("example.com", "v1", "default", "gadgets", "kept")
        assert kept["metadata"].get("deletionTimestamp")
        try:
            objs.create_namespaced_custom_object(
                "example.com",
                "v1",
                "default",
                "gadgets",
                {"apiVersion": "example.com/v1", "kind": "Gadget", "metadata": {"name": "new"}},
            )
            raise AssertionError("created a custom resource of a terminating CRD")
        except ApiException as exc:
            assert exc.status == 405
            assert "custom resource definition is terminating" in json.loads(exc.body)["message"]
        # its controller finishes: the last custom resource goes, and the CRD with it
        objs.patch_namespaced_custom_object(
            "example.com", "v1", "default", "gadgets", "kept", {"metadata": {"finalizers": None}}
        )
        try:
            ext.read_custom_resource_definition("gadgets.example.com")
            raise AssertionError("the CRD outlived its last custom resource")
        except ApiException as exc:
            assert exc.status == 404
        out = server.kubectl("api-resources", "--api-group=example.com", "-o", "name")
        assert "gadgets" not in out.stdout
    finally:
        api.close()


def test_removing_the_cleanup_finalizer_drops_the_crd_and_its_custom_resources(
    server: RunningAPIServer,
) -> None:
    api = server.api_client()
    try:
        ext = client.ApiextensionsV1Api(api)
        delete_gadgets_crd(server, ext)
        # a client gives up on the cleanup (the usual way out of a stuck Terminating CRD)
        out = server.kubectl(
            "patch",
            "crd",
            "gadgets.example.com",
            "--type=merge",
            "-p",
            '{"metadata":{"finalizers":[]}}',
        )
        assert out.returncode == 0, out.stderr
        try:
            ext.read_custom_resource_definition("gadgets.example.com")
            raise AssertionError("the CRD outlived its cleanup finalizer")
        except ApiException as exc:
            assert exc.status == 404
        # its kind is no longer served; a new CRD of the same name starts empty
        ext.create_custom_resource_definition(open_crd("gadgets", "Gadget"))
        objs = client.CustomObjectsApi(api)
        items = objs.list_namespaced_custom_object("example.com", "v1", "default", "gadgets")
        assert items["items"] == []
    finally:
        api.close()


def test_a_crd_with_its_own_finalizer_stays_after_the_cleanup(server: RunningAPIServer) -> None:
    api = server.api_client()
    try:
        ext = client.ApiextensionsV1Api(api)
        crd = open_crd("widgets", "Widget")
        crd["metadata"]["finalizers"] = ["example.com/keep"]
        ext.create_custom_resource_definition(crd)
        out = server.kubectl(
            "apply",
            "-f",
            "-",
            input="apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: plain}\n",
        )
        assert out.returncode == 0, out.stderr
        ext.delete_custom_resource_definition("widgets.example.com")
        # the custom resource went; the cleanup finalizer with it, the CRD's own one stays
        got = ext.read_custom_resource_definition("widgets.example.com")
        assert got.metadata.finalizers == ["example.com/keep"]
        ext.patch_custom_resource_definition(
            "widgets.example.com", {"metadata": {"finalizers": None}}
        )
        try:
            ext.read_custom_resource_definition("widgets.example.com")
            raise AssertionError("the CRD outlived its finalizers")
        except ApiException as exc:
            assert exc.status == 404
    finally:
        api.close()
