"""Real kubectl against the server: apply, get (Tables, -o yaml, -w), annotate, label, delete,
server-side dry run and apply, api-resources, wait, printer columns, and its errors."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from autoscaler.apiserver.testing import RunningAPIServer

from .conftest import UPSTREAM_CRDS

pytestmark = pytest.mark.slow

WIDGET_CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wd], categories: [toys]}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    additionalPrinterColumns:
    - {name: Size, type: integer, jsonPath: .spec.size}
    - {name: Color, type: string, jsonPath: .spec.color}
    - {name: Age, type: date, jsonPath: .metadata.creationTimestamp}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {type: integer, minimum: 1}
              color: {type: string, enum: [red, blue]}
"""


def widget(size: int, color: str = "red") -> str:
    return f"""
apiVersion: example.com/v1
kind: Widget
metadata: {{name: w1}}
spec: {{size: {size}, color: {color}}}
"""


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"kubectl failed: {result.stderr}"
    return result.stdout


def test_api_resources_lists_builtins_and_project_crds(server: RunningAPIServer) -> None:
    out = ok(server.kubectl("api-resources"))
    for fragment in (
        "configmaps",
        "leases",
        "customresourcedefinitions",
        "inferenceservices",
        "isvc",
        "ksvc",
        "kpa,pa",
        "brokers",
        "triggers",
    ):
        assert fragment in out


def test_crd_then_apply_change_get_yaml_and_printer_columns(server: RunningAPIServer) -> None:
    ok(server.kubectl("apply", "-f", "-", input=WIDGET_CRD))
    ok(
        server.kubectl(
            "wait", "--for", "condition=established", "crd/widgets.example.com", "--timeout=10s"
        )
    )
    assert "widget.example.com/w1 created" in ok(
        server.kubectl("apply", "-f", "-", input=widget(1))
    )
    got = yaml.safe_load(ok(server.kubectl("get", "widget", "w1", "-o", "yaml")))
    assert got["metadata"]["generation"] == 1 and got["spec"] == {"size": 1, "color": "red"}
    assert "configured" in ok(server.kubectl("apply", "-f", "-", input=widget(2, "blue")))
    got = yaml.safe_load(ok(server.kubectl("get", "wd", "w1", "-o", "yaml")))
    assert got["metadata"]["generation"] == 2 and got["spec"]["size"] == 2
    assert "unchanged" in ok(server.kubectl("apply", "-f", "-", input=widget(2, "blue")))
    table = ok(server.kubectl("get", "widgets")).splitlines()
    assert table[0].split() == ["NAME", "SIZE", "COLOR", "AGE"]
    assert table[1].split()[:3] == ["w1", "2", "blue"]
    bad = server.kubectl("apply", "-f", "-", input=widget(0))
    assert (
        bad.returncode != 0
        and "spec.size" in bad.stderr
        and "greater than or equal to 1" in bad.stderr
    )


def test_get_watch_sees_a_change(server: RunningAPIServer) -> None:
    ok(server.kubectl("create", "configmap", "watched", "--from-literal=a=1"))
    argv, env = server.kubectl_cmd(
        "get", "configmap", "watched", "-w", "-o", 'jsonpath={.data.a}{"\\n"}'
    )
    proc = subprocess.Popen(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "1"
        ok(server.kubectl("patch", "configmap", "watched", "-p", '{"data":{"a":"2"}}'))
        deadline = time.monotonic() + 10
        line = ""
        while time.monotonic() < deadline and line != "2":
            line = proc.stdout.readline().strip()
        assert line == "2"
    finally:
        proc.kill()
        proc.wait()


def test_annotate_label_selector_and_delete(server: RunningAPIServer) -> None:
    ok(server.kubectl("create", "configmap", "tagged", "--from-literal=k=v"))
    ok(server.kubectl("annotate", "configmap", "tagged", "owner=tuner"))
    ok(server.kubectl("label", "configmap", "tagged", "tier=gold"))
    got = json.loads(ok(server.kubectl("get", "configmap", "-l", "tier=gold", "-o", "json")))
    assert [i["metadata"]["name"] for i in got["items"]] == ["tagged"]
    assert got["items"][0]["metadata"]["annotations"]["owner"] == "tuner"
    assert 'configmap "tagged" deleted' in ok(server.kubectl("delete", "configmap", "tagged"))
    missing = server.kubectl("get", "configmap", "tagged")
    assert missing.returncode != 0 and 'configmaps "tagged" not found' in missing.stderr


def test_server_dry_run_stores_nothing(server: RunningAPIServer) -> None:
    out = ok(
        server.kubectl(
            "apply",
            "--dry-run=server",
            "-f",
            "-",
            input="apiVersion: v1\nkind: ConfigMap\nmetadata: {name: dry}\ndata: {a: b}\n",
        )
    )
    assert "(server dry run)" in out
    assert server.kubectl("get", "configmap", "dry").returncode != 0


def test_get_isvc_shows_the_upstream_columns(server: RunningAPIServer) -> None:
    isvc = "apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\nmetadata: {name: cols}\nspec: {predictor: {model: {modelFormat: {name: sklearn}}}}\n"
    ok(server.kubectl("apply", "-f", "-", input=isvc))
    api = server.api_client()
    from kubernetes import client

    client.CustomObjectsApi(api).patch_namespaced_custom_object_status(
        "serving.kserve.io", "v1beta1", "default", "inferenceservices", "cols",
        {"status": {
            "url": "http://cols.default.example.com",
            "conditions": [{"type": "Ready", "status": "True"}],
            "components": {"predictor": {"traffic": [
                {"tag": "prev", "percent": 80, "revisionName": "cols-predictor-00001"},
                {"latestRevision": True, "percent": 20, "revisionName": "cols-predictor-00002"},
            ]}},
        }},
    )  # fmt: skip
    api.close()
    lines = ok(server.kubectl("get", "isvc", "cols")).splitlines()
    assert lines[0].split() == [
        "NAME",
        "URL",
        "READY",
        "PREV",
        "LATEST",
        "PREVROLLEDOUTREVISION",
        "LATESTREADYREVISION",
        "AGE",
    ]
    assert lines[1].split()[:7] == [
        "cols",
        "http://cols.default.example.com",
        "True",
        "80",
        "20",
        "cols-predictor-00001",
        "cols-predictor-00002",
    ]


def test_server_side_apply_of_upstream_isvc_crd_then_invalid_object(
    server: RunningAPIServer,
) -> None:
    path = UPSTREAM_CRDS / "kserve_serving.kserve.io_inferenceservices.yaml"
    client_side = server.kubectl("apply", "-f", str(path))
    assert client_side.returncode != 0 and "262144 bytes" in client_side.stderr, (
        "too big for the last-applied annotation"
    )
    assert "serverside-applied" in ok(server.kubectl("apply", "--server-side", "-f", str(path)))
    crd = json.loads(
        ok(server.kubectl("get", "crd", "inferenceservices.serving.kserve.io", "-o", "json"))
    )
    predictor = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"][
        "properties"
    ]["predictor"]
    assert "containers" in predictor["properties"], "the upstream schema replaced ours"
    bad = "apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\nmetadata: {name: bad}\nspec: {predictor: {scaleMetric: latency, model: {modelFormat: {name: sklearn}}}}\n"
    result = server.kubectl("apply", "-f", "-", input=bad)
    assert result.returncode != 0 and "spec.predictor.scaleMetric" in result.stderr
    unknown = "apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\nmetadata: {name: bad}\nspec: {predictor: {bogus: 1}}\n"
    result = server.kubectl("apply", "-f", "-", input=unknown)
    assert result.returncode != 0 and 'unknown field "spec.predictor.bogus"' in result.stderr


@pytest.mark.parametrize("path", sorted(UPSTREAM_CRDS.glob("*.yaml")), ids=lambda p: Path(p).stem)
def test_every_upstream_crd_loads(server: RunningAPIServer, path: Path) -> None:
    name = yaml.safe_load(path.read_text())["metadata"]["name"]
    ok(server.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(path)))
    ok(server.kubectl("wait", "--for", "condition=established", f"crd/{name}", "--timeout=10s"))
    plural = name.split(".", 1)[0]
    ok(server.kubectl("get", name if "." in name else plural, "-A"))


def test_malformed_yaml_and_unknown_kind(server: RunningAPIServer) -> None:
    result = server.kubectl(
        "apply", "-f", "-", input="apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x\n"
    )
    assert result.returncode != 0 and "yaml" in result.stderr.lower() and "line" in result.stderr
    result = server.kubectl(
        "apply", "-f", "-", input="apiVersion: example.com/v9\nkind: Gizmo\nmetadata: {name: g}\n"
    )
    assert result.returncode != 0 and "Gizmo" in result.stderr
    result = server.kubectl("get", "gizmos")
    assert result.returncode != 0 and "gizmos" in result.stderr
