"""Structural-schema defaulting of custom resources as upstream does it (apiextensions
defaulting): defaults first, then into the defaulted values, then validation; a null in a
non-nullable field is dropped, or replaced by the field's default."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from autoscaler.apiserver.testing import RunningAPIServer, running_apiserver

from .conftest import UPSTREAM_CRDS, Raw

pytestmark = pytest.mark.slow

ISVC_CRD = UPSTREAM_CRDS / "kserve_serving.kserve.io_inferenceservices.yaml"

GADGET_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "gadgets.example.com"},
    "spec": {
        "group": "example.com",
        "scope": "Namespaced",
        "names": {
            "plural": "gadgets",
            "singular": "gadget",
            "kind": "Gadget",
            "listKind": "GadgetList",
        },
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
                                "required": ["mode"],
                                "properties": {
                                    "mode": {"type": "string", "enum": ["A", "B"], "default": "A"},
                                    "replicas": {"type": "integer", "minimum": 0},
                                    "note": {"type": "string", "nullable": True},
                                    "level": {"type": "integer", "default": 3},
                                    "tuning": {
                                        "type": "object",
                                        "default": {},
                                        "properties": {
                                            "window": {"type": "string", "default": "60s"}
                                        },
                                    },
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
G = "/apis/example.com/v1/namespaces/default/gadgets"


@pytest.fixture(scope="module")
def isvc_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningAPIServer]:
    if not ISVC_CRD.exists():
        pytest.skip(f"{ISVC_CRD} is not there")
    tmp = Path(tmp_path_factory.mktemp("isvc"))
    with running_apiserver(tmp, extra_crds=[ISVC_CRD]) as handle:
        yield handle


@pytest.fixture(scope="module")
def gadgets(server: RunningAPIServer) -> None:
    r = Raw(server)
    try:
        resp = r("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", json=GADGET_CRD)
        assert resp.status_code == 201, resp.text
    finally:
        r.close()


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"kubectl failed: {result.stderr}"
    return result.stdout


def spec_of(server: RunningAPIServer, name: str) -> dict[str, object]:
    out = ok(server.kubectl("get", "gadget", name, "-o", "jsonpath={.spec}"))
    return dict(json.loads(out))


def gadget(name: str, spec: str) -> str:
    return f"apiVersion: example.com/v1\nkind: Gadget\nmetadata: {{name: {name}}}\nspec: {spec}\n"


def test_a_required_field_with_a_default_is_defaulted_not_missing(
    server: RunningAPIServer, gadgets: None
) -> None:
    ok(server.kubectl("create", "-f", "-", input=gadget("g1", "{replicas: 1}")))
    assert spec_of(server, "g1") == {
        "mode": "A",
        "replicas": 1,
        "level": 3,
        "tuning": {"window": "60s"},
    }


def test_defaults_inside_a_default_apply_at_once(server: RunningAPIServer, gadgets: None) -> None:
    ok(server.kubectl("create", "-f", "-", input=gadget("g2", "{mode: B}")))
    assert spec_of(server, "g2")["tuning"] == {"window": "60s"}
    # a metadata-only change then changes nothing in spec: the generation stays
    ok(server.kubectl("label", "gadget", "g2", "team=x"))
    out = ok(server.kubectl("get", "gadget", "g2", "-o", "jsonpath={.metadata.generation}"))
    assert out == "1"


def test_null_in_a_non_nullable_field_is_pruned_or_defaulted(
    server: RunningAPIServer, gadgets: None
) -> None:
    body = gadget("g3", "{mode: null, replicas: null, level: null, note: null, tuning: null}")
    ok(server.kubectl("create", "-f", "-", input=body))
    assert spec_of(server, "g3") == {
        "mode": "A",
        "level": 3,
        "note": None,
        "tuning": {"window": "60s"},
    }
    # a merge patch cannot set null (it deletes); a JSON patch can: the null is pruned
    r = Raw(server)
    try:
        resp = r(
            "PATCH",
            G + "/g3",
            data=json.dumps([{"op": "add", "path": "/spec/replicas", "value": None}]),
            headers={"Content-Type": "application/json-patch+json"},
        )
        assert resp.status_code == 200, resp.text
        assert "replicas" not in resp.json()["spec"]
    finally:
        r.close()


def test_kserve_status_patch_gets_its_required_defaults(isvc_server: RunningAPIServer) -> None:
    isvc = (
        "apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\nmetadata: {name: iris}\n"
        "spec:\n  predictor:\n    sklearn: {storageUri: 'file:///tmp/m'}\n"
    )
    ok(isvc_server.kubectl("apply", "-f", "-", input=isvc))
    patch = {"status": {"modelStatus": {"states": {"targetModelState": "Loaded"}}}}
    ok(
        isvc_server.kubectl(
            "patch", "isvc", "iris", "--subresource=status", "--type=merge", "-p", json.dumps(patch)
        )
    )
    out = ok(isvc_server.kubectl("get", "isvc", "iris", "-o", "jsonpath={.status.modelStatus}"))
    status = json.loads(out)
    assert status["states"]["targetModelState"] == "Loaded"
    assert status["states"]["activeModelState"] == "Pending"
    assert status["transitionStatus"] == "UpToDate"
