"""The request log: each request as RBAC sees it (verb, group, resource, subresource, namespace,
name, user), from the path rules of k8s.io/apiserver's requestinfo.go and from a real server."""

from __future__ import annotations

import pytest
from kubernetes import client

from autoscaler.apiserver.audit import TOKEN_USER, RequestRecord, request_record
from autoscaler.apiserver.testing import RunningAPIServer

CASES = [
    ("GET", "/api/v1/namespaces/a/pods", {}, ("list", "", "pods", "", "a", "")),
    ("GET", "/api/v1/namespaces/a/pods/p", {}, ("get", "", "pods", "", "a", "p")),
    ("GET", "/api/v1/pods", {"watch": "true"}, ("watch", "", "pods", "", "", "")),
    ("GET", "/api/v1/watch/namespaces/a/pods", {}, ("watch", "", "pods", "", "a", "")),
    ("POST", "/api/v1/namespaces/a/events", {}, ("create", "", "events", "", "a", "")),
    ("PUT", "/apis/coordination.k8s.io/v1/namespaces/s/leases/l", {},
     ("update", "coordination.k8s.io", "leases", "", "s", "l")),
    ("PATCH", "/apis/modelscale.dev/v1alpha1/namespaces/a/modelscalers/m/status", {},
     ("patch", "modelscale.dev", "modelscalers", "status", "a", "m")),
    ("DELETE", "/apis/apps/v1/namespaces/a/deployments/d", {},
     ("delete", "apps", "deployments", "", "a", "d")),
    ("DELETE", "/apis/apps/v1/namespaces/a/deployments", {},
     ("deletecollection", "apps", "deployments", "", "a", "")),
    ("GET", "/api/v1/namespaces/a", {}, ("get", "", "namespaces", "", "a", "a")),
    ("PUT", "/api/v1/namespaces/a/status", {}, ("update", "", "namespaces", "status", "a", "a")),
    ("GET", "/apis/rbac.authorization.k8s.io/v1/clusterroles", {},
     ("list", "rbac.authorization.k8s.io", "clusterroles", "", "", "")),
    ("GET", "/version", {}, ("get", "", "", "", "", "")),
    ("GET", "/apis", {}, ("get", "", "", "", "", "")),
]  # fmt: skip


@pytest.mark.parametrize(
    ("method", "path", "query", "want"), CASES, ids=[f"{c[0]} {c[1]}" for c in CASES]
)
def test_request_record_from_method_and_path(
    method: str, path: str, query: dict[str, str], want: tuple[str, ...]
) -> None:
    r = request_record(method, path, query, "u")
    assert (r.verb, r.api_group, r.resource, r.subresource, r.namespace, r.name) == want
    assert r.user == "u" and r.path == path
    assert r.is_resource == bool(want[2])


def test_the_server_logs_each_request_with_its_user(server: RunningAPIServer) -> None:
    token = server.server.add_user("system:serviceaccount:ns:robot")
    log = server.server.record_requests()
    api = server.api_client()
    core = client.CoreV1Api(api)
    core.list_namespaced_config_map("default")

    robot = server.api_client()
    robot.configuration.refresh_api_key_hook = None
    robot.configuration.api_key = {k: f"Bearer {token}" for k in robot.configuration.api_key}
    client.CoordinationV1Api(robot).create_namespaced_lease(
        "default", {"metadata": {"name": "robot-lease"}, "spec": {"holderIdentity": "robot"}}
    )
    assert ("list", "configmaps", TOKEN_USER) in {(r.verb, r.resource, r.user) for r in log}
    assert RequestRecord(
        "create", "coordination.k8s.io", "v1", "leases", "", "default", "",
        "system:serviceaccount:ns:robot",
        "/apis/coordination.k8s.io/v1/namespaces/default/leases",
    ) in log  # fmt: skip
    server.server.audit_hooks.clear()


def test_an_unknown_token_is_refused_and_not_logged(server: RunningAPIServer) -> None:
    log = server.server.record_requests()
    api = server.api_client()
    api.configuration.refresh_api_key_hook = None
    api.configuration.api_key = {k: "Bearer nope" for k in api.configuration.api_key}
    with pytest.raises(client.ApiException) as err:
        client.CoreV1Api(api).list_namespace()
    assert err.value.status == 401 and log == []
    server.server.audit_hooks.clear()
