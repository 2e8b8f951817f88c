"""Lists at a given resourceVersion: one the server has not reached waits for it and then is a
504 "Too large resource version" (as upstream's watch cache answers); with
resourceVersionMatch=Exact the list is the state at that resourceVersion (410 once compacted)."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from autoscaler.apiserver.handlers import Settings
from autoscaler.apiserver.testing import running_apiserver

from .conftest import Raw


def test_list_at_a_resource_version_not_reached_is_504(tmp_path: Path) -> None:
    with running_apiserver(tmp_path, settings=Settings(fresh_wait_s=0)) as server:
        api = server.api_client()
        core = client.CoreV1Api(api)
        core.create_namespaced_config_map("default", {"metadata": {"name": "exists"}})
        current = int(core.list_namespaced_config_map("default").metadata.resource_version)
        future = current + 1000
        for match in ("NotOlderThan", "Exact", None):
            with pytest.raises(ApiException) as err:
                core.list_namespaced_config_map(
                    "default", resource_version=str(future), resource_version_match=match
                )
            assert err.value.status == 504
            assert err.value.headers["Retry-After"] == "1"
            body = json.loads(err.value.body)
            assert body["kind"] == "Status"
            assert body["reason"] == "Timeout"
            assert body["message"] == (
                f"Timeout: Too large resource version: {future}, current: {current}"
            )
            assert body["details"] == {
                "causes": [
                    {"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}
                ],
                "retryAfterSeconds": 1,
            }
        # the current one and older ones are served
        at = core.list_namespaced_config_map("default", resource_version=str(current))
        assert [i.metadata.name for i in at.items] == ["exists"]
        raw = Raw(server)
        try:
            table = raw(
                "GET",
                f"/api/v1/namespaces/default/configmaps?resourceVersion={future}",
                headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"},
            )
            assert table.status_code == 504
        finally:
            raw.close()
        api.close()


def test_list_at_a_resource_version_waits_for_it(tmp_path: Path) -> None:
    """Within the wait, a list at a resourceVersion reached by later writes is answered from a
    state at least that new."""
    with running_apiserver(tmp_path, settings=Settings(fresh_wait_s=60)) as server:
        api = server.api_client()
        core = client.CoreV1Api(api)
        current = int(core.list_namespaced_config_map("default").metadata.resource_version)
        want = current + 2
        with ThreadPoolExecutor(1) as pool:
            pending = pool.submit(
                core.list_namespaced_config_map,
                "default",
                resource_version=str(want),
                resource_version_match="NotOlderThan",
            )
            for name in ("later-1", "later-2"):
                core.create_namespaced_config_map("default", {"metadata": {"name": name}})
            got = pending.result(timeout=30)
        assert int(got.metadata.resource_version) >= want
        assert [i.metadata.name for i in got.items] == ["later-1", "later-2"]
        api.close()


def test_exact_list_is_the_state_at_that_resource_version(tmp_path: Path) -> None:
    with running_apiserver(tmp_path, history=6) as server:
        api = server.api_client()
        core = client.CoreV1Api(api)
        core.create_namespace({"metadata": {"name": "exact"}})
        for name in ("a", "c"):
            core.create_namespaced_config_map(
                "exact", {"metadata": {"name": name}, "data": {"v": "old"}}
            )
        rv = core.list_namespaced_config_map("exact").metadata.resource_version
        core.create_namespaced_config_map("exact", {"metadata": {"name": "b"}})
        core.patch_namespaced_config_map("a", "exact", {"data": {"v": "new"}})
        core.delete_namespaced_config_map("c", "exact")
        got = core.list_namespaced_config_map(
            "exact", resource_version=rv, resource_version_match="Exact"
        )
        assert got.metadata.resource_version == rv
        assert [(i.metadata.name, i.data["v"]) for i in got.items] == [("a", "old"), ("c", "old")]
        # paged: the second page is read from the same snapshot
        first = core.list_namespaced_config_map(
            "exact", resource_version=rv, resource_version_match="Exact", limit=1
        )
        assert [i.metadata.name for i in first.items] == ["a"]
        assert first.metadata.resource_version == rv
        second = core.list_namespaced_config_map(
            "exact", limit=1, _continue=first.metadata._continue
        )
        assert [(i.metadata.name, i.data["v"]) for i in second.items] == [("c", "old")]
        assert second.metadata.resource_version == rv
        # the current one is the current state; other lists are not affected
        now = core.list_namespaced_config_map("exact")
        assert [i.metadata.name for i in now.items] == ["a", "b"]
        assert [
            i.metadata.name
            for i in core.list_namespaced_config_map(
                "exact",
                resource_version=now.metadata.resource_version,
                resource_version_match="Exact",
            ).items
        ] == ["a", "b"]
        for n in range(8):  # pushes rv out of the history
            core.patch_namespaced_config_map("a", "exact", {"data": {"v": str(n)}})
        with pytest.raises(ApiException) as err:
            core.list_namespaced_config_map(
                "exact", resource_version=rv, resource_version_match="Exact"
            )
        assert err.value.status == 410
        body = json.loads(err.value.body)
        assert body["reason"] == "Expired"
        assert body["message"].startswith(f"too old resource version: {rv} (")
        api.close()
