"""Strategic merge patches on the built-in kinds, as kubectl and the Python client send them:
lists merge on the keys k8s.io/api tags them with (containers and env by name, ports, volume
mounts, service ports, owner references), with the directives of a client-side apply."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from autoscaler.apiserver.install_kinds import pod_template_kind_schema
from autoscaler.apiserver.patch import strategic_merge
from autoscaler.apiserver.testing import RunningAPIServer

pytestmark = pytest.mark.slow

DEPLOY = """apiVersion: apps/v1
kind: Deployment
metadata: {name: NAME}
spec:
  replicas: 1
  selector: {matchLabels: {app: NAME}}
  strategy: {type: RollingUpdate, rollingUpdate: {maxSurge: 1}}
  template:
    metadata: {labels: {app: NAME}}
    spec:
      containers:
      - name: app
        image: "img:1"
        env:
        - {name: A, value: "1"}
        - {name: B, value: "2"}
        ports: [{containerPort: 8080}]
        volumeMounts: [{name: data, mountPath: /data}]
      - name: sidecar
        image: "side:1"
      volumes: [{name: data, emptyDir: {}}]
"""


@pytest.fixture
def api(server: RunningAPIServer) -> Iterator[client.ApiClient]:
    c = server.api_client()
    yield c
    c.close()


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"kubectl failed: {result.stderr}"
    return result.stdout


def containers(server: RunningAPIServer, name: str) -> list[dict[str, Any]]:
    out = ok(
        server.kubectl("get", "deploy", name, "-o", "jsonpath={.spec.template.spec.containers}")
    )
    return json.loads(out)


def test_kubectl_apply_of_a_changed_deployment_keeps_the_other_containers(
    server: RunningAPIServer,
) -> None:
    first = DEPLOY.replace("NAME", "d-apply")
    ok(server.kubectl("apply", "-f", "-", input=first))
    changed = first.replace('image: "img:1"', 'image: "img:2"')
    result = server.kubectl("apply", "-f", "-", input=changed)
    ok(result)
    # kubectl computed the patch from the server's OpenAPI v3 document, without falling back
    assert "unable to find api field" not in result.stderr
    assert "warning" not in result.stderr.lower()
    got = containers(server, "d-apply")
    assert [(c["name"], c["image"]) for c in got] == [("app", "img:2"), ("sidecar", "side:1")]
    assert got[0]["env"] == [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]
    assert got[0]["ports"] == [{"containerPort": 8080}]
    assert got[0]["volumeMounts"] == [{"name": "data", "mountPath": "/data"}]

    # dropping env B and the sidecar from the applied configuration removes them (and only them)
    fewer = changed.replace('        - {name: B, value: "2"}\n', "").replace(
        '      - name: sidecar\n        image: "side:1"\n', ""
    )
    ok(server.kubectl("apply", "-f", "-", input=fewer))
    got = containers(server, "d-apply")
    assert [c["name"] for c in got] == ["app"]
    assert got[0]["env"] == [{"name": "A", "value": "1"}]

    # a new container in the middle, in the order of the applied configuration
    more = first.replace(
        "      - name: sidecar\n",
        '      - name: middle\n        image: "mid:1"\n      - name: sidecar\n',
    )
    ok(server.kubectl("apply", "-f", "-", input=more))
    assert [c["name"] for c in containers(server, "d-apply")] == ["app", "middle", "sidecar"]


def test_kubectl_apply_switching_strategy_uses_retain_keys(server: RunningAPIServer) -> None:
    first = DEPLOY.replace("NAME", "d-strategy")
    ok(server.kubectl("apply", "-f", "-", input=first))
    recreate = first.replace(
        "strategy: {type: RollingUpdate, rollingUpdate: {maxSurge: 1}}",
        "strategy: {type: Recreate}",
    )
    ok(server.kubectl("apply", "-f", "-", input=recreate))
    out = ok(server.kubectl("get", "deploy", "d-strategy", "-o", "jsonpath={.spec.strategy}"))
    assert json.loads(out) == {"type": "Recreate"}


def test_kubectl_set_image_changes_one_container(server: RunningAPIServer) -> None:
    ok(server.kubectl("apply", "-f", "-", input=DEPLOY.replace("NAME", "d-set")))
    ok(server.kubectl("set", "image", "deploy/d-set", "app=img:3"))
    got = containers(server, "d-set")
    assert [(c["name"], c["image"]) for c in got] == [("app", "img:3"), ("sidecar", "side:1")]
    assert [e["name"] for e in got[0]["env"]] == ["A", "B"]
    ok(server.kubectl("set", "env", "deploy/d-set", "-c", "app", "C=3"))
    got = containers(server, "d-set")
    assert [e["name"] for e in got[0]["env"]] == ["A", "B", "C"]
    assert got[1] == {"name": "sidecar", "image": "side:1"}


def test_kubectl_patch_strategic_directives(server: RunningAPIServer) -> None:
    ok(server.kubectl("apply", "-f", "-", input=DEPLOY.replace("NAME", "d-dir")))

    def patch(body: dict[str, Any]) -> None:
        ok(server.kubectl("patch", "deploy", "d-dir", "--type=strategic", "-p", json.dumps(body)))

    def pod_spec() -> dict[str, Any]:
        out = ok(server.kubectl("get", "deploy", "d-dir", "-o", "jsonpath={.spec.template.spec}"))
        return dict(json.loads(out))

    # $patch: delete in a list item, by its merge key
    patch(
        {"spec": {"template": {"spec": {"containers": [{"name": "sidecar", "$patch": "delete"}]}}}}
    )
    assert [c["name"] for c in pod_spec()["containers"]] == ["app"]
    # a merge on the nested env list, a new volume merged by name
    patch(
        {
            "spec": {
                "template": {
                    "spec": {
                        "containers": [{"name": "app", "env": [{"name": "B", "value": "two"}]}],
                        "volumes": [{"name": "cache", "emptyDir": {}}],
                    }
                }
            }
        }
    )
    spec = pod_spec()
    assert spec["containers"][0]["env"] == [
        {"name": "A", "value": "1"},
        {"name": "B", "value": "two"},
    ]
    assert [v["name"] for v in spec["volumes"]] == ["data", "cache"]
    # $patch: replace makes the list what the patch says
    patch(
        {
            "spec": {
                "template": {
                    "spec": {
                        "containers": [
                            {
                                "name": "app",
                                "env": [{"name": "Z", "value": "z"}, {"$patch": "replace"}],
                            }
                        ]
                    }
                }
            }
        }
    )
    assert pod_spec()["containers"][0]["env"] == [{"name": "Z", "value": "z"}]
    # tolerations are atomic upstream: a patch replaces them
    patch({"spec": {"template": {"spec": {"tolerations": [{"key": "a", "operator": "Exists"}]}}}})
    patch({"spec": {"template": {"spec": {"tolerations": [{"key": "b", "operator": "Exists"}]}}}})
    assert pod_spec()["tolerations"] == [{"key": "b", "operator": "Exists"}]


def test_client_strategic_patches_on_pod_service_and_owner_references(
    api: client.ApiClient,
) -> None:
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    pod = {
        "metadata": {"name": "p-smp"},
        "spec": {
            "containers": [
                {"name": "a", "image": "x", "env": [{"name": "E1", "value": "1"}]},
                {"name": "b", "image": "y"},
            ]
        },
    }
    core.create_namespaced_pod("default", pod)
    # the client sends a dict body as a strategic merge patch
    got = core.patch_namespaced_pod(
        "p-smp",
        "default",
        {"spec": {"containers": [{"name": "a", "env": [{"name": "E2", "value": "2"}]}]}},
    )
    assert [c.name for c in got.spec.containers] == ["a", "b"]
    assert [(e.name, e.value) for e in got.spec.containers[0].env] == [("E1", "1"), ("E2", "2")]

    svc = {
        "metadata": {"name": "s-smp"},
        "spec": {
            "ports": [{"name": "http", "port": 80, "targetPort": 8080}],
            "selector": {"a": "b"},
        },
    }
    core.create_namespaced_service("default", svc)
    got = core.patch_namespaced_service(
        "s-smp", "default", {"spec": {"ports": [{"name": "metrics", "port": 9090}]}}
    )
    assert [(p.name, p.port) for p in got.spec.ports] == [("http", 80), ("metrics", 9090)]
    got = core.patch_namespaced_service(
        "s-smp", "default", {"spec": {"ports": [{"port": 80, "targetPort": 8081}]}}
    )
    assert [(p.port, p.target_port) for p in got.spec.ports] == [(80, 8081), (9090, None)]

    owner = {"apiVersion": "v1", "kind": "ConfigMap", "name": "o", "uid": "u-1"}
    body = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d-owned", "ownerReferences": [owner]},
        "spec": {
            "selector": {"matchLabels": {"a": "b"}},
            "template": {
                "metadata": {"labels": {"a": "b"}},
                "spec": {"containers": [{"name": "c", "image": "i"}]},
            },
        },
    }
    apps.create_namespaced_deployment("default", body)
    other = {**owner, "name": "o2", "uid": "u-2"}
    got = apps.patch_namespaced_deployment(
        "d-owned", "default", {"metadata": {"ownerReferences": [other]}}
    )
    assert [o.uid for o in got.metadata.owner_references] == ["u-1", "u-2"]


def test_pod_template_kinds_merge_containers_by_name() -> None:
    live = {
        "spec": {
            "jobTemplate": {
                "spec": {
                    "template": {
                        "spec": {
                            "containers": [{"name": "a", "image": "1"}, {"name": "b", "image": "1"}]
                        }
                    }
                }
            }
        }
    }
    patch = {
        "spec": {
            "jobTemplate": {
                "spec": {"template": {"spec": {"containers": [{"name": "b", "image": "2"}]}}}
            }
        }
    }
    got = strategic_merge(live, patch, pod_template_kind_schema("CronJob"))
    assert got["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"] == [
        {"name": "a", "image": "1"},
        {"name": "b", "image": "2"},
    ]
    for kind in ("ReplicaSet", "StatefulSet", "DaemonSet", "Job"):
        live = {"spec": {"template": {"spec": {"containers": [{"name": "a"}, {"name": "b"}]}}}}
        patch = {"spec": {"template": {"spec": {"containers": [{"name": "b", "image": "2"}]}}}}
        got = strategic_merge(live, patch, pod_template_kind_schema(kind))
        assert got["spec"]["template"]["spec"]["containers"] == [
            {"name": "a"},
            {"name": "b", "image": "2"},
        ], kind
