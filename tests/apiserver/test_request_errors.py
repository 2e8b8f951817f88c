"""Malformed requests answered as upstream answers them: a patch body of the wrong JSON type
(400), a JSON patch ``test`` that compares JSON values, ``resourceVersionMatch`` rules (an
Invalid ListOptions) and a non-numeric ``resourceVersion`` on list and watch (400)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from autoscaler.apiserver.testing import RunningAPIServer

from .conftest import Raw

pytestmark = pytest.mark.slow

C = "/api/v1/namespaces/default/configmaps"
JSON_PATCH = {"Content-Type": "application/json-patch+json"}


@pytest.fixture
def api(server: RunningAPIServer) -> Iterator[client.ApiClient]:
    c = server.api_client()
    yield c
    c.close()


@pytest.fixture(scope="module")
def cm(server: RunningAPIServer) -> str:
    r = Raw(server)
    try:
        body = {"metadata": {"name": "errs"}, "data": {"a": "1"}, "immutable": False}
        assert r("POST", C, json=body).status_code == 201
    finally:
        r.close()
    return C + "/errs"


@pytest.mark.parametrize(
    ("ctype", "body", "fragment"),
    [
        ("application/json-patch+json", {"op": "add"}, "cannot unmarshal object"),
        ("application/json-patch+json", "x", "cannot unmarshal string"),
        ("application/merge-patch+json", [1], "cannot unmarshal array"),
        ("application/merge-patch+json", 3, "cannot unmarshal number"),
        ("application/strategic-merge-patch+json", [{"a": 1}], "cannot unmarshal array"),
    ],
)
def test_a_patch_body_of_the_wrong_json_type_is_400(
    raw: Raw, cm: str, ctype: str, body: object, fragment: str
) -> None:
    resp = raw("PATCH", cm, data=json.dumps(body), headers={"Content-Type": ctype})
    assert resp.status_code == 400, resp.text
    status = resp.json()
    assert (status["kind"], status["reason"], status["code"]) == ("Status", "BadRequest", 400)
    assert fragment in status["message"]


def test_json_patch_test_compares_json_values(api: client.ApiClient, cm: str) -> None:
    v1 = client.CoreV1Api(api)
    # 1 is not true: the test fails and nothing is applied
    with pytest.raises(ApiException) as exc:
        v1.patch_namespaced_config_map(
            "errs",
            "default",
            [
                {"op": "test", "path": "/immutable", "value": 0},
                {"op": "add", "path": "/data/b", "value": "2"},
            ],
        )
    assert exc.value.status == 422
    assert "b" not in v1.read_namespaced_config_map("errs", "default").data
    # false is false; a JSON number 1 equals 1.0
    got = v1.patch_namespaced_config_map(
        "errs",
        "default",
        [
            {"op": "test", "path": "/immutable", "value": False},
            {"op": "add", "path": "/metadata/annotations", "value": {"n": "x"}},
            {"op": "add", "path": "/metadata/labels", "value": {"k": "v"}},
        ],
    )
    assert got.metadata.labels == {"k": "v"}


def test_json_patch_test_equates_1_and_1_0(raw: Raw) -> None:
    pods = "/api/v1/namespaces/default/pods"
    pod = {
        "metadata": {"name": "errs-pod"},
        "spec": {"containers": [{"name": "c", "image": "i", "ports": [{"containerPort": 80}]}]},
    }
    assert raw("POST", pods, json=pod).status_code == 201
    ops = [
        {"op": "test", "path": "/spec/containers/0/ports/0/containerPort", "value": 80.0},
        {"op": "add", "path": "/metadata/labels", "value": {"tested": "yes"}},
    ]
    resp = raw("PATCH", pods + "/errs-pod", data=json.dumps(ops), headers=JSON_PATCH)
    assert resp.status_code == 200, resp.text
    assert resp.json()["metadata"]["labels"] == {"tested": "yes"}
    ops[0]["value"] = "80"
    resp = raw("PATCH", pods + "/errs-pod", data=json.dumps(ops), headers=JSON_PATCH)
    assert resp.status_code == 422, resp.text


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (
            "resourceVersionMatch=NotOlderThan",
            "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless "
            "resourceVersion is provided",
        ),
        (
            "resourceVersion=1&resourceVersionMatch=Bogus",
            'resourceVersionMatch: Unsupported value: "Bogus": supported values: "Exact", '
            '"NotOlderThan", ""',
        ),
        (
            "resourceVersion=0&resourceVersionMatch=Exact",
            'resourceVersionMatch "exact" is forbidden for resourceVersion "0"',
        ),
    ],
)
def test_resource_version_match_rules_are_an_invalid_list_options(
    raw: Raw, query: str, message: str
) -> None:
    resp = raw("GET", f"{C}?{query}")
    assert resp.status_code == 422, resp.text
    status = resp.json()
    assert status["reason"] == "Invalid"
    assert status["details"]["kind"] == "ListOptions"
    assert status["details"]["group"] == "meta.k8s.io"
    assert status["message"].startswith('ListOptions.meta.k8s.io "" is invalid: ')
    assert message in status["message"]


def test_resource_version_match_with_a_version_lists(raw: Raw) -> None:
    resp = raw("GET", f"{C}?resourceVersion=0&resourceVersionMatch=NotOlderThan")
    assert resp.status_code == 200, resp.text


@pytest.mark.parametrize("watch", [False, True])
def test_a_non_numeric_resource_version_is_400(raw: Raw, watch: bool) -> None:
    query = "resourceVersion=abc" + ("&watch=1&timeoutSeconds=1" if watch else "")
    resp = raw("GET", f"{C}?{query}")
    assert resp.status_code == 400, resp.text
    status = resp.json()
    assert (status["kind"], status["reason"], status["code"]) == ("Status", "BadRequest", 400)
    assert status["message"] == (
        'resourceVersion: Invalid value: "abc": strconv.ParseUint: parsing "abc": invalid syntax'
    )


def test_the_client_sees_a_bad_watch_version_as_an_error(api: client.ApiClient) -> None:
    v1 = client.CoreV1Api(api)
    with pytest.raises(ApiException) as exc:
        v1.list_namespaced_config_map(
            "default", watch=True, resource_version="abc", timeout_seconds=1
        )
    assert exc.value.status == 400
