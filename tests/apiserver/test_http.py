"""The wire protocol as a plain HTTP client sees it: auth, errors as Status objects, limits,
fieldValidation, discovery, OpenAPI and Tables."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

from autoscaler.apiserver.testing import RunningAPIServer

from .conftest import Raw

CM = "/api/v1/namespaces/default/configmaps"
ISVC = "/apis/serving.kserve.io/v1beta1/namespaces/default/inferenceservices"


def status(r: requests.Response, code: int, reason: str) -> dict[str, Any]:
    assert r.status_code == code, r.text
    body: dict[str, Any] = r.json()
    assert body["kind"] == "Status" and body["apiVersion"] == "v1" and body["status"] == "Failure"
    assert body["reason"] == reason and body["code"] == code
    return body


@pytest.mark.parametrize(
    "header", [None, "Bearer wrong", "Basic abc"], ids=["missing", "wrong-token", "wrong-scheme"]
)
def test_requests_without_the_token_are_401(server: RunningAPIServer, header: str | None) -> None:
    headers = {"Authorization": header} if header else {}
    r = requests.get(
        server.url + "/api/v1/namespaces",
        headers=headers,
        verify=str(server.server.ca_path),
        timeout=10,
    )
    status(r, 401, "Unauthorized")


def test_token_and_kubeconfig_are_private(server: RunningAPIServer) -> None:
    for name in ("token", "kubeconfig", "tls.key"):
        assert (server.server.data_dir / name).stat().st_mode & 0o777 == 0o600
    assert server.server.url.startswith("https://127.0.0.1:")


def test_oversize_body_is_413(raw: Raw) -> None:
    big = json.dumps({"metadata": {"name": "big"}, "data": {"x": "a" * (3 * 1024 * 1024 + 10)}})
    status(
        raw("POST", CM, data=big, headers={"Content-Type": "application/json"}),
        413,
        "RequestEntityTooLarge",
    )


MALFORMED = [
    ("json", "application/json", b'{"metadata": {"name": "x",}}', "line 1 column 27"),
    ("yaml", "application/yaml", b"metadata:\n  name: x\n data: [\n", "line 3"),
    ("json-not-utf8", "application/json", b'{"a": "\xff"}', "UTF-8"),
]


@pytest.mark.parametrize(
    ("ctype", "body", "where"), [c[1:] for c in MALFORMED], ids=[c[0] for c in MALFORMED]
)
def test_malformed_bodies_say_where(raw: Raw, ctype: str, body: bytes, where: str) -> None:
    got = status(raw("POST", CM, data=body, headers={"Content-Type": ctype}), 400, "BadRequest")
    assert "malformed" in got["message"] and where in got["message"]


def test_yaml_body_creates(raw: Raw) -> None:
    r = raw(
        "POST",
        CM,
        data=b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-yaml\ndata:\n  a: b\n",
        headers={"Content-Type": "application/yaml"},
    )
    assert r.status_code == 201 and r.json()["data"] == {"a": "b"}


@pytest.mark.parametrize(
    "path",
    [
        "/apis/example.com/v9/namespaces/default/gizmos",
        "/api/v1/namespaces/default/gizmos",
        "/apis/nothing.io",
        "/nonsense",
    ],
    ids=["unknown-group", "unknown-resource", "unknown-group-doc", "unknown-path"],
)
def test_unknown_resources_are_404(raw: Raw, path: str) -> None:
    status(raw("GET", path), 404, "NotFound")


def test_missing_object_names_it(raw: Raw) -> None:
    got = status(raw("GET", ISVC + "/nope"), 404, "NotFound")
    assert got["message"] == 'inferenceservices.serving.kserve.io "nope" not found'
    assert got["details"] == {
        "name": "nope",
        "group": "serving.kserve.io",
        "kind": "inferenceservices",
    }


def test_wrong_method_is_405(raw: Raw) -> None:
    status(raw("POST", CM + "/x", json={}), 405, "MethodNotAllowed")


def isvc_with_unknown(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": name},
        "spec": {"predictor": {"minReplicas": 1}, "foo": 1},
    }


def cm_with_unknown(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name},
        "data": {"a": "b"},
        "spec": {"foo": 1},
    }


@pytest.mark.parametrize(
    ("path", "make", "field"),
    [(CM, cm_with_unknown, "spec"), (ISVC, isvc_with_unknown, None)],
    ids=["builtin", "custom"],
)
def test_field_validation_modes(raw: Raw, path: str, make: Any, field: str | None) -> None:
    # the project's InferenceService schema keeps unknown spec fields, so use an unknown root field
    body = make("fv-strict")
    if field is None:
        body["extra"] = {"foo": 1}
        unknown = "extra"
    else:
        unknown = "spec"
    got = status(raw("POST", path + "?fieldValidation=Strict", json=body), 400, "BadRequest")
    assert f'unknown field "{unknown}"' in got["message"]
    body["metadata"]["name"] = "fv-warn"
    r = raw("POST", path + "?fieldValidation=Warn", json=body)
    assert r.status_code == 201
    assert f'299 - "unknown field \\"{unknown}\\""' in r.headers["Warning"]
    assert unknown not in r.json(), "unknown fields are pruned"
    body["metadata"]["name"] = "fv-ignore"
    r = raw("POST", path + "?fieldValidation=Ignore", json=body)
    assert r.status_code == 201 and "Warning" not in r.headers and unknown not in r.json()
    status(raw("POST", path + "?fieldValidation=Loose", json=body), 400, "BadRequest")


def test_dry_run_create_answers_and_stores_nothing(raw: Raw) -> None:
    r = raw("POST", CM + "?dryRun=All", json={"metadata": {"name": "dry-http"}})
    assert r.status_code == 201 and r.json()["metadata"]["uid"]
    status(raw("GET", CM + "/dry-http"), 404, "NotFound")
    status(
        raw("POST", CM + "?dryRun=Some", json={"metadata": {"name": "dry-http"}}), 400, "BadRequest"
    )


def test_annotation_limit(raw: Raw) -> None:
    body = {"metadata": {"name": "annotated", "annotations": {"a": "x" * 262_145}}}
    got = status(raw("POST", CM, json=body), 422, "Invalid")
    assert got["details"]["causes"][0]["field"] == "metadata.annotations"


def test_aggregated_discovery(raw: Raw) -> None:
    accept = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"
    r = raw("GET", "/apis", headers={"Accept": accept})
    assert r.headers["Content-Type"].startswith("application/json;g=apidiscovery.k8s.io;v=v2")
    groups = {g["metadata"]["name"]: g for g in r.json()["items"]}
    isvc = groups["serving.kserve.io"]["versions"][0]["resources"][0]
    assert isvc["resource"] == "inferenceservices" and isvc["shortNames"] == ["isvc"]
    assert isvc["subresources"][0]["subresource"] == "status"
    plain = raw("GET", "/apis").json()
    assert plain["kind"] == "APIGroupList"


def test_openapi_v3_carries_what_kubectl_looks_for(raw: Raw) -> None:
    index = raw("GET", "/openapi/v3").json()["paths"]
    url = index["apis/serving.kserve.io/v1beta1"]["serverRelativeURL"]
    assert "?hash=" in url
    doc = raw("GET", url).json()
    item = doc["paths"][
        "/apis/serving.kserve.io/v1beta1/namespaces/{namespace}/inferenceservices/{name}"
    ]
    patch = item["patch"]
    assert patch["x-kubernetes-group-version-kind"] == {
        "group": "serving.kserve.io",
        "version": "v1beta1",
        "kind": "InferenceService",
    }
    assert "fieldValidation" in [p["name"] for p in patch["parameters"]]
    assert "application/strategic-merge-patch+json" not in patch["requestBody"]["content"]
    core = raw("GET", index["api/v1"]["serverRelativeURL"]).json()
    cm = core["components"]["schemas"]["io.k8s.api.core.v1.ConfigMap"]
    assert cm["x-kubernetes-group-version-kind"] == [
        {"group": "", "version": "v1", "kind": "ConfigMap"}
    ]
    owners = cm["properties"]["metadata"]["properties"]["ownerReferences"]
    assert owners["x-kubernetes-patch-merge-key"] == "uid"


def test_table_response(raw: Raw) -> None:
    raw("POST", CM, json={"metadata": {"name": "tabled"}, "data": {"a": "1", "b": "2"}})
    r = raw(
        "GET",
        CM + "?fieldSelector=metadata.name%3Dtabled",
        headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"},
    )
    t = r.json()
    assert t["kind"] == "Table" and [c["name"] for c in t["columnDefinitions"]] == [
        "Name",
        "Data",
        "Age",
    ]
    assert t["rows"][0]["cells"][:2] == ["tabled", 2]


def test_namespace_mismatch_and_name_mismatch_are_400(raw: Raw) -> None:
    status(
        raw("POST", CM, json={"metadata": {"name": "x", "namespace": "other"}}), 400, "BadRequest"
    )
    raw("POST", CM, json={"metadata": {"name": "named"}})
    status(raw("PUT", CM + "/named", json={"metadata": {"name": "other"}}), 400, "BadRequest")


def test_invalid_names_are_422(raw: Raw) -> None:
    got = status(raw("POST", CM, json={"metadata": {"name": "Not_Valid"}}), 422, "Invalid")
    assert got["details"]["causes"][0]["field"] == "metadata.name"
