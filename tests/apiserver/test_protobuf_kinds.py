"""kubectl's imperative create sends built-in objects as protobuf: ServiceAccounts, the RBAC kinds
and PodDisruptionBudgets are decoded; a kind without a decoder (a Deployment) is a 415."""

from __future__ import annotations

import json
import subprocess
from typing import Any

from autoscaler.apiserver.testing import RunningAPIServer


def _ok(out: subprocess.CompletedProcess[str]) -> None:
    assert out.returncode == 0, out.stderr


def _get(server: RunningAPIServer, *what: str) -> dict[str, Any]:
    out = server.kubectl("get", *what, "-o", "json")
    _ok(out)
    obj: dict[str, Any] = json.loads(out.stdout)
    return obj


def test_kubectl_create_service_account_and_rbac(server: RunningAPIServer) -> None:
    _ok(server.kubectl("create", "serviceaccount", "sa1"))
    assert _get(server, "sa", "sa1")["metadata"]["name"] == "sa1"
    _ok(
        server.kubectl(
            "create",
            "role",
            "r1",
            "--verb=get,list",
            "--resource=configmaps",
            "--resource-name=x",
        )
    )
    assert _get(server, "role", "r1")["rules"] == [
        {
            "apiGroups": [""],
            "resourceNames": ["x"],
            "resources": ["configmaps"],
            "verbs": ["get", "list"],
        }
    ]
    _ok(
        server.kubectl(
            "create",
            "rolebinding",
            "rb1",
            "--role=r1",
            "--user=u",
            "--serviceaccount=default:sa1",
        )
    )
    rb = _get(server, "rolebinding", "rb1")
    assert rb["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r1"}
    assert rb["subjects"] == [
        {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "u"},
        {"kind": "ServiceAccount", "name": "sa1", "namespace": "default"},
    ]
    _ok(server.kubectl("create", "clusterrole", "cr1", "--verb=get", "--resource=pods"))
    assert _get(server, "clusterrole", "cr1")["rules"] == [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}
    ]
    _ok(server.kubectl("create", "clusterrole", "cr-agg", "--aggregation-rule=team=a"))
    assert _get(server, "clusterrole", "cr-agg")["aggregationRule"] == {
        "clusterRoleSelectors": [{"matchLabels": {"team": "a"}}]
    }
    _ok(server.kubectl("create", "clusterrolebinding", "crb1", "--clusterrole=cr1", "--group=g"))
    crb = _get(server, "clusterrolebinding", "crb1")
    assert crb["roleRef"]["name"] == "cr1"
    assert crb["subjects"] == [
        {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "g"}
    ]


def test_kubectl_create_pod_disruption_budget(server: RunningAPIServer) -> None:
    _ok(server.kubectl("create", "pdb", "p1", "--selector=a=b", "--min-available=1"))
    _ok(server.kubectl("create", "pdb", "p2", "--selector=a=b", "--max-unavailable=50%"))
    assert _get(server, "pdb", "p1")["spec"] == {
        "minAvailable": 1,
        "selector": {"matchLabels": {"a": "b"}},
    }
    assert _get(server, "pdb", "p2")["spec"] == {
        "maxUnavailable": "50%",
        "selector": {"matchLabels": {"a": "b"}},
    }


def test_a_protobuf_body_of_a_kind_without_a_decoder_is_415(server: RunningAPIServer) -> None:
    out = server.kubectl("create", "deployment", "d1", "--image=nginx")
    assert out.returncode != 0
    assert (
        "the body of the request was in an unknown format - accepted media types include: "
        "application/json, application/yaml" in out.stderr
    )
