"""The built-in kinds an install uses (Deployment, Service, ServiceAccount, RBAC, PDB): kubectl
finds them through discovery, stores and reads them back, and their status is a subresource."""

from __future__ import annotations

import json

import pytest

from autoscaler.apiserver.install_kinds import install_types
from autoscaler.apiserver.testing import RunningAPIServer

MANIFEST = """
apiVersion: v1
kind: ServiceAccount
metadata: {name: robot, namespace: default}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: reader}
rules:
  - apiGroups: [""]
    resources: ["pods"]
    verbs: ["list"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: reader}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: reader}
subjects: [{kind: ServiceAccount, name: robot, namespace: default}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: leases, namespace: default}
rules:
  - apiGroups: ["coordination.k8s.io"]
    resources: ["leases"]
    resourceNames: ["x"]
    verbs: ["get", "update"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: leases, namespace: default}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: leases}
subjects: [{kind: ServiceAccount, name: robot, namespace: default}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: "example/web:1", ports: [{containerPort: 8080}]}]
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: web, namespace: default}
spec:
  minAvailable: 1
  selector: {matchLabels: {app: web}}
"""


def ok(result) -> str:  # type: ignore[no-untyped-def]
    assert result.returncode == 0, result.stderr
    return str(result.stdout)


def test_api_resources_lists_the_install_kinds(server: RunningAPIServer) -> None:
    out = ok(server.kubectl("api-resources", "-o", "name"))
    for name in (
        "deployments.apps",
        "services",
        "serviceaccounts",
        "clusterroles.rbac.authorization.k8s.io",
        "clusterrolebindings.rbac.authorization.k8s.io",
        "roles.rbac.authorization.k8s.io",
        "rolebindings.rbac.authorization.k8s.io",
        "poddisruptionbudgets.policy",
    ):
        assert name in out.split(), name


def test_apply_stores_them_and_get_reads_them_back(server: RunningAPIServer) -> None:
    out = ok(server.kubectl("apply", "-f", "-", input=MANIFEST))
    assert out.count("created") == 8, out
    dep = json.loads(ok(server.kubectl("get", "deploy", "web", "-o", "json")))
    assert dep["spec"]["replicas"] == 2
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == "example/web:1"
    role = json.loads(ok(server.kubectl("get", "role", "leases", "-o", "json")))
    assert role["rules"] == [
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
         "resourceNames": ["x"], "verbs": ["get", "update"]}
    ]  # fmt: skip
    crb = json.loads(ok(server.kubectl("get", "clusterrolebinding", "reader", "-o", "json")))
    assert crb["subjects"][0]["name"] == "robot" and "namespace" not in crb["metadata"]
    # Applying again is a patch that changes nothing; a change goes through.
    assert "unchanged" in ok(server.kubectl("apply", "-f", "-", input=MANIFEST))
    changed = MANIFEST.replace("replicas: 2", "replicas: 3")
    assert "deployment.apps/web configured" in ok(server.kubectl("apply", "-f", "-", input=changed))
    assert (
        json.loads(ok(server.kubectl("get", "deploy", "web", "-o", "json")))["spec"]["replicas"]
        == 3
    )


def test_a_binding_without_role_ref_is_invalid(server: RunningAPIServer) -> None:
    bad = "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: b}\n"
    result = server.kubectl("apply", "-f", "-", input=bad)
    assert result.returncode != 0 and "roleRef" in result.stderr


@pytest.mark.parametrize("rt", install_types(), ids=lambda rt: rt.plural)
def test_kinds_with_status_serve_it_as_a_subresource(rt) -> None:  # type: ignore[no-untyped-def]
    assert rt.status_subresource == (
        rt.plural in ("deployments", "services", "poddisruptionbudgets")
    )
    assert rt.schema is not None and rt.builtin
