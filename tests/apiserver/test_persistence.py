"""What survives a restart: objects, the resourceVersion counter, CRDs, the token; and a
``kill -9`` of a ``modelscale server`` process after an answered write loses nothing."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from kubernetes import client, watch

from autoscaler.apiserver.server import APIServer, DataDirInUse
from autoscaler.apiserver.testing import open_crd, running_apiserver

WIDGETS_CRD = open_crd("widgets", "Widget")


def test_restart_keeps_objects_version_crds_and_token(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with running_apiserver(tmp_path, data_dir=data) as first:
        api = first.api_client()
        client.ApiextensionsV1Api(api).create_custom_resource_definition(WIDGETS_CRD)
        custom = client.CustomObjectsApi(api)
        custom.create_namespaced_custom_object(
            "example.com",
            "v1",
            "default",
            "widgets",
            {
                "apiVersion": "example.com/v1",
                "kind": "Widget",
                "metadata": {"name": "w"},
                "spec": {"n": 1},
            },
        )
        client.CoreV1Api(api).create_namespaced_config_map(
            "default",
            client.V1ConfigMap(metadata=client.V1ObjectMeta(name="kept"), data={"a": "1"}),
        )
        rv_before = first.server.store.rv
        token = first.token
        api.close()
    with running_apiserver(tmp_path, data_dir=data) as second:
        assert second.token == token
        assert second.server.store.rv == rv_before
        api = second.api_client()
        w = client.CustomObjectsApi(api).get_namespaced_custom_object(
            "example.com", "v1", "default", "widgets", "w"
        )
        assert w["spec"] == {"n": 1}
        assert client.CoreV1Api(api).read_namespaced_config_map("kept", "default").data == {
            "a": "1"
        }
        made = client.CoreV1Api(api).create_namespaced_config_map(
            "default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="after"))
        )
        assert int(made.metadata.resource_version) == rv_before + 1
        api.close()


def test_deleting_a_crd_removes_its_resource_and_objects(tmp_path: Path) -> None:
    with running_apiserver(tmp_path) as srv:
        api = srv.api_client()
        ext = client.ApiextensionsV1Api(api)
        ext.create_custom_resource_definition(WIDGETS_CRD)
        custom = client.CustomObjectsApi(api)
        custom.create_namespaced_custom_object(
            "example.com",
            "v1",
            "default",
            "widgets",
            {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}},
        )
        ext.delete_custom_resource_definition("widgets.example.com")
        with pytest.raises(client.ApiException) as info:
            custom.list_namespaced_custom_object("example.com", "v1", "default", "widgets")
        assert info.value.status == 404
        ext.create_custom_resource_definition(WIDGETS_CRD)
        assert (
            custom.list_namespaced_custom_object("example.com", "v1", "default", "widgets")["items"]
            == []
        )
        api.close()


@pytest.mark.slow
def test_kill_9_after_an_answered_write_loses_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"

    def start() -> tuple[subprocess.Popen[str], str]:
        proc = subprocess.Popen(
            [sys.executable, "-m", "autoscaler.cli", "server", "--data-dir", str(data), "--port", "0"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.search(r"(https://127\.0\.0\.1:\d+)", line)
        assert match, f"no URL in {line!r}"
        return proc, match.group(1)

    proc, url = start()
    session = requests.Session()
    session.trust_env = False
    session.verify = str(data / "tls.crt")
    session.headers["Authorization"] = "Bearer " + (data / "token").read_text().strip()
    try:
        for i in range(50):
            r = session.post(
                f"{url}/api/v1/namespaces/default/configmaps",
                json={"metadata": {"name": f"k{i}"}, "data": {"i": str(i)}},
                timeout=10,
            )
            assert r.status_code == 201
        last_rv = r.json()["metadata"]["resourceVersion"]
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    proc, url = start()
    try:
        items = session.get(f"{url}/api/v1/namespaces/default/configmaps", timeout=10).json()
        names = {i["metadata"]["name"] for i in items["items"]}
        assert {f"k{i}" for i in range(50)} <= names
        assert int(items["metadata"]["resourceVersion"]) == int(last_rv)
        proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        while proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proc.returncode == 0, "SIGTERM stops the server cleanly"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        session.close()


def _selector_watch_after_restart(
    tmp_path: Path, *, drop_old_column: bool
) -> list[tuple[str, str]]:
    """Relabel ``a`` out of tier=web and change ``b`` within it, restart, then watch tier=web
    from the resourceVersion before both: the events as (type, name)."""
    data = tmp_path / "data"
    with running_apiserver(tmp_path, data_dir=data) as first:
        api = first.api_client()
        core = client.CoreV1Api(api)
        for name in ("a", "b"):
            core.create_namespaced_config_map(
                "default", {"metadata": {"name": name, "labels": {"tier": "web"}}}
            )
        rv = core.list_namespaced_config_map(
            "default", label_selector="tier=web"
        ).metadata.resource_version
        core.patch_namespaced_config_map("a", "default", {"metadata": {"labels": {"tier": "db"}}})
        core.patch_namespaced_config_map("b", "default", {"data": {"k": "v"}})
        api.close()
    if drop_old_column:  # a data directory written before the previous state was kept
        conn = sqlite3.connect(str(data / "store.db"))
        conn.execute("ALTER TABLE changes DROP COLUMN old")
        conn.commit()
        conn.close()
    with running_apiserver(tmp_path, data_dir=data) as second:
        api = second.api_client()
        core = client.CoreV1Api(api)
        events = [
            (e["type"], e["object"].metadata.name)
            for e in watch.Watch().stream(
                core.list_namespaced_config_map,
                "default",
                label_selector="tier=web",
                resource_version=rv,
                timeout_seconds=1,
                _request_timeout=10,
            )
        ]
        api.close()
    return events


def test_watch_resumed_after_a_restart_sees_objects_leave_the_selector(tmp_path: Path) -> None:
    assert _selector_watch_after_restart(tmp_path, drop_old_column=False) == [
        ("DELETED", "a"),
        ("MODIFIED", "b"),
    ]


def test_a_data_directory_without_previous_states_is_migrated(tmp_path: Path) -> None:
    assert _selector_watch_after_restart(tmp_path, drop_old_column=True) == [
        ("DELETED", "a"),
        ("MODIFIED", "b"),
    ]


def test_a_second_server_on_the_same_data_dir_is_refused(tmp_path: Path) -> None:
    """One server per data dir: the second is refused naming the dir and the holder's pid, and
    leaves the first's store and kubeconfig alone; once the first stops the dir is free."""
    data = tmp_path / "data"
    with running_apiserver(tmp_path, data_dir=data) as first:
        kubeconfig = first.kubeconfig_path.read_text()
        second = APIServer(data)
        message = rf"data dir {re.escape(str(data))} is in use by pid {os.getpid()}$"
        with pytest.raises(DataDirInUse, match=message):
            first.call(second.start())
        assert first.kubeconfig_path.read_text() == kubeconfig
        api = first.api_client()
        client.CoreV1Api(api).create_namespaced_config_map(
            "default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="still-mine"))
        )
        api.close()
    with running_apiserver(tmp_path, data_dir=data) as third:
        api = third.api_client()
        assert client.CoreV1Api(api).read_namespaced_config_map("still-mine", "default")
        api.close()


def test_modelscale_server_on_a_held_data_dir_exits_with_one_line(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with running_apiserver(tmp_path, data_dir=data):
        proc = subprocess.run(
            [sys.executable, "-m", "autoscaler.cli", "server", "--data-dir", str(data)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"modelscale server: data dir {data} is in use by pid {os.getpid()}"
    ]
