"""Secrets as the upstream API server keeps them, through real kubectl and the official client:
``kubectl create secret`` (protobuf), stringData folded into data and never returned, the
built-in types' required keys, the type and immutable contents fixed, the TYPE/DATA columns;
and the config-key rules Secrets share with ConfigMaps."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from autoscaler.apiserver.testing import RunningAPIServer
from autoscaler.apiserver.tls import ensure_certificate


def ok(result: object) -> str:
    assert result.returncode == 0, f"kubectl failed: {result.stderr}"  # type: ignore[attr-defined]
    return str(result.stdout)  # type: ignore[attr-defined]


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.fixture
def core(server: RunningAPIServer) -> Iterator[client.CoreV1Api]:
    api = server.api_client()
    yield client.CoreV1Api(api)
    api.close()


def _causes(err: ApiException) -> list[tuple[str, str]]:
    body = json.loads(err.body)
    assert body["kind"] == "Status" and body["reason"] == "Invalid", body
    return [(c["field"], c["message"]) for c in body["details"]["causes"]]


@pytest.mark.slow
def test_kubectl_create_get_and_read_a_secret(server: RunningAPIServer, tmp_path: Path) -> None:
    ok(server.kubectl("create", "secret", "generic", "s3creds", "--from-literal=key=AKIA/x+y"))
    table = ok(server.kubectl("get", "secret", "s3creds"))
    header, row = table.splitlines()
    assert header.split() == ["NAME", "TYPE", "DATA", "AGE"]
    assert row.split()[:3] == ["s3creds", "Opaque", "1"]
    value = ok(server.kubectl("get", "secret", "s3creds", "-o", "jsonpath={.data.key}"))
    assert base64.b64decode(value).decode() == "AKIA/x+y"
    cert, key = ensure_certificate(tmp_path, "127.0.0.1")
    ok(server.kubectl("create", "secret", "tls", "web", f"--cert={cert}", f"--key={key}"))
    assert "kubernetes.io/tls" in ok(server.kubectl("get", "secret", "web"))
    stored = ok(server.kubectl("get", "secret", "web", "-o", "jsonpath={.data.tls\\.crt}"))
    assert base64.b64decode(stored) == cert.read_bytes()
    ok(server.kubectl("delete", "secret", "s3creds", "web"))


@pytest.mark.slow
def test_kubectl_apply_string_data_is_stored_as_data(server: RunningAPIServer) -> None:
    manifest = (
        "apiVersion: v1\nkind: Secret\nmetadata: {name: sd, namespace: default}\n"
        "data: {a: " + b64("old") + ", b: " + b64("kept") + "}\n"
        "stringData: {a: new, c: 'plain text'}\n"
    )
    ok(server.kubectl("apply", "-f", "-", input=manifest))
    got = json.loads(ok(server.kubectl("get", "secret", "sd", "-o", "json")))
    assert "stringData" not in got
    assert got["type"] == "Opaque"
    decoded = {k: base64.b64decode(v).decode() for k, v in got["data"].items()}
    assert decoded == {"a": "new", "b": "kept", "c": "plain text"}
    # applying the same manifest again writes nothing new (kubectl still sends stringData,
    # which the live object never shows, so it says "configured" as against a cluster)
    ok(server.kubectl("apply", "-f", "-", input=manifest))
    again = json.loads(ok(server.kubectl("get", "secret", "sd", "-o", "json")))
    assert again["metadata"]["resourceVersion"] == got["metadata"]["resourceVersion"]


def test_type_required_keys_and_bad_values(core: client.CoreV1Api) -> None:
    bad = [
        (
            {"metadata": {"name": "t1"}, "type": "kubernetes.io/tls", "data": {"tls.crt": b64("c")}},
            ("data[tls.key]", "Required value"),
        ),
        (
            {"metadata": {"name": "t2"}, "type": "kubernetes.io/basic-auth"},
            ("data[username]", "Required value"),
        ),
        (
            {"metadata": {"name": "t3"}, "type": "kubernetes.io/dockerconfigjson",
             "stringData": {".dockerconfigjson": "{not json"}},
            (".dockerconfigjson]", "Invalid value"),
        ),
        (
            {"metadata": {"name": "t4"}, "type": "kubernetes.io/service-account-token"},
            ("metadata.annotations[kubernetes.io/service-account.name]", "Required value"),
        ),
        (
            {"metadata": {"name": "t5"}, "stringData": {"a b": "x"}},
            ("data[a b]", "a valid config key must consist of alphanumeric characters"),
        ),
    ]  # fmt: skip
    for body, (field, message) in bad:
        with pytest.raises(ApiException) as err:
            core.create_namespaced_secret("default", body)
        assert err.value.status == 422, body
        assert any(field in f and message in m for f, m in _causes(err.value)), _causes(err.value)
    # a value that is not base64 is refused by the schema, naming the key
    with pytest.raises(ApiException) as err:
        core.create_namespaced_secret("default", {"metadata": {"name": "t6"}, "data": {"k": "%%"}})
    assert err.value.status == 422 and "data.k" in err.value.body
    # nothing refused was stored
    names = {s.metadata.name for s in core.list_namespaced_secret("default").items}
    assert not names & {"t1", "t2", "t3", "t4", "t5", "t6"}


def test_too_large_contents_are_refused(core: client.CoreV1Api) -> None:
    big = base64.b64encode(b"x" * (1024 * 1024 + 1)).decode()
    with pytest.raises(ApiException) as err:
        core.create_namespaced_secret("default", {"metadata": {"name": "big"}, "data": {"k": big}})
    assert ("data", "Too long: must have at most 1048576 bytes") in _causes(err.value)


def test_type_cannot_change_and_immutable_contents_stay(core: client.CoreV1Api) -> None:
    core.create_namespaced_secret(
        "default", {"metadata": {"name": "fixed"}, "immutable": True, "stringData": {"k": "v"}}
    )
    for patch, field in (
        ({"type": "kubernetes.io/basic-auth", "stringData": {"username": "u"}}, "type"),
        ({"stringData": {"k": "w"}}, "data"),
        ({"immutable": False}, "immutable"),
    ):
        with pytest.raises(ApiException) as err:
            core.patch_namespaced_secret("fixed", "default", patch)
        assert any(f == field for f, _ in _causes(err.value)), (patch, _causes(err.value))
    got = core.read_namespaced_secret("fixed", "default")
    assert got.type == "Opaque" and base64.b64decode(got.data["k"]) == b"v"
    # metadata stays writable, and the secret can be deleted
    core.patch_namespaced_secret("fixed", "default", {"metadata": {"labels": {"x": "y"}}})
    core.delete_namespaced_secret("fixed", "default")


def test_configmap_keys(core: client.CoreV1Api) -> None:
    with pytest.raises(ApiException) as err:
        core.create_namespaced_config_map(
            "default",
            {"metadata": {"name": "keys"}, "data": {"ok.key": "1", "a/b": "2", "dup": "3"},
             "binaryData": {"dup": b64("4")}},
        )  # fmt: skip
    causes = _causes(err.value)
    assert any(f == "data[a/b]" and "valid config key" in m for f, m in causes), causes
    assert any(
        f == "data[dup]" and "duplicate of key present in binaryData" in m for f, m in causes
    )
    assert all(f != "data[ok.key]" for f, _ in causes)
