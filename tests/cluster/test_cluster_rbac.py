"""The controller's RBAC is exactly what it uses: run the tuner controller through its life
against the embedded API server with a token of its own and the request log on (informers, leader
election, a tick per apply method that writes, status, events, the ConfigMap, the Pods of the
direct metric source, releasing the Lease), then evaluate the base's ClusterRole and Role the
way Kubernetes' RBAC authorizer does (k8s.io/kubernetes plugin/pkg/auth/authorizer/rbac:
apiGroups, resources with "/subresource", verbs, resourceNames; a Role only in its namespace).

Every request must be allowed by some rule, and every verb of every rule must have been used.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from autoscaler.apiserver.audit import RequestRecord
from autoscaler.apiserver.testing import running_apiserver
from autoscaler.clock import SystemClock
from autoscaler.kube.controller import Controller
from autoscaler.kube.endpoints import PodEndpoints
from autoscaler.kube.leader import ElectionConfig, LeaderElector
from autoscaler.kube.retry import Backoff
from autoscaler.kube.settings import ControllerSettings
from tests.cluster.cluster_kit import MODELSCALER_CRD, find, kustomize
from tests.kube.conftest import FakeMetricSource
from tests.kube.kit import ISVC, MSC, PA, REV, TARGET, Cluster, sees

pytestmark = pytest.mark.slow

NS = "modelscale-system"
USER = f"system:serviceaccount:{NS}:modelscale-controller"


@dataclass(frozen=True)
class Grant:
    """One verb of one rule of the ClusterRole or the Role."""

    role: str  # "ClusterRole" | "Role"
    rule: int
    verb: str


def roles(build: str = "base") -> dict[str, tuple[str | None, list[dict[str, Any]]]]:
    """Role kind -> (the namespace it applies in, None: all; its rules)."""
    docs = kustomize(build)
    cluster_role, role = find(docs, "ClusterRole"), find(docs, "Role")
    return {
        "ClusterRole": (None, cluster_role["rules"]),
        "Role": (role["metadata"]["namespace"], role["rules"]),
    }


def allows(rule: dict[str, Any], r: RequestRecord) -> bool:
    resource = f"{r.resource}/{r.subresource}" if r.subresource else r.resource
    names = rule.get("resourceNames")
    return (
        r.api_group in rule.get("apiGroups", [])
        and resource in rule.get("resources", [])
        and r.verb in rule["verbs"]
        and (not names or r.name in names)
    )


def grants_for(r: RequestRecord, build: str = "base") -> list[Grant]:
    out = []
    for kind, (namespace, rules) in roles(build).items():
        if namespace is not None and r.namespace != namespace:
            continue
        out.extend(Grant(kind, i, r.verb) for i, rule in enumerate(rules) if allows(rule, r))
    return out


def all_grants(build: str = "base") -> set[Grant]:
    return {
        Grant(kind, i, verb)
        for kind, (_ns, rules) in roles(build).items()
        for i, rule in enumerate(rules)
        for verb in rule["verbs"]
    }


def election() -> ElectionConfig:
    return ElectionConfig(
        NS, "modelscale-tuner", "tuner-a",
        lease_duration_s=2.0, renew_deadline_s=1.5, retry_period_s=0.2,
    )  # fmt: skip


async def until(cond: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


def _record(verb: str, group: str, resource: str, *, sub: str = "", ns: str = "", name: str = ""):  # type: ignore[no-untyped-def]
    return RequestRecord(verb, group, "v1", resource, sub, ns, name, USER, "/")


@pytest.mark.parametrize(
    ("record", "allowed"),
    [
        (_record("patch", "modelscale.dev", "modelscalers", sub="status", ns="a", name="m"), True),
        (_record("patch", "modelscale.dev", "modelscalers", ns="a", name="m"), False),
        (_record("get", "coordination.k8s.io", "leases", ns=NS, name="modelscale-tuner"), True),
        (_record("get", "coordination.k8s.io", "leases", ns=NS, name="other"), False),
        (_record("get", "coordination.k8s.io", "leases", ns="default", name="modelscale-tuner"), False),
        (_record("get", "", "configmaps", ns="default", name="modelscale-tuner"), False),
        (_record("delete", "serving.knative.dev", "revisions", ns="a", name="r"), False),
        (_record("list", "", "pods", ns="a"), True),
        (_record("list", "", "secrets", ns="a"), False),
    ],
    ids=[
        "status-patch", "spec-patch", "own-lease", "other-lease", "lease-elsewhere",
        "configmap-elsewhere", "delete-revision", "list-pods", "list-secrets",
    ],
)  # fmt: skip
def test_the_rbac_evaluation(record: RequestRecord, allowed: bool) -> None:
    assert bool(grants_for(record)) is allowed


async def test_controller_requests_are_exactly_what_the_roles_grant(tmp_path: Path) -> None:
    with running_apiserver(tmp_path, extra_crds=[MODELSCALER_CRD]) as server:
        cluster = Cluster(server)
        cluster.core.create_namespace({"metadata": {"name": NS}})
        cluster.core.create_namespaced_config_map(
            NS,
            {"metadata": {"name": "modelscale-tuner"},
             "data": {"tick_period_s": "10", "min_apply_interval_s": "0"}},
        )  # fmt: skip
        revisions = {}
        for model, apply in (
            ("m1", "revision"),
            ("m2", "podautoscaler"),
            ("m3", "inferenceservice"),
        ):
            revisions[model] = cluster.deploy(model)
            cluster.scaler(model, apply=apply)

        token = server.server.add_user(USER)
        log = server.server.record_requests()
        client = server.api_client()
        # The kubeconfig loader keeps the token under its security scheme's name and would put
        # the kubeconfig's token back before each request.
        client.configuration.refresh_api_key_hook = None
        client.configuration.api_key = {
            scheme: f"Bearer {token}" for scheme in client.configuration.api_key
        }
        settings = ControllerSettings(
            namespace=NS, identity="tuner-a", request_timeout_s=5.0, resolve_pods=True,
            write_backoff=Backoff(base_s=0.01, cap_s=0.2, attempts=4),
        )  # fmt: skip
        wall = SystemClock()
        ctl = Controller(
            client, FakeMetricSource(), settings, wall,
            elector=LeaderElector(client, election(), wall), endpoints=PodEndpoints(client),
        )  # fmt: skip
        ctl.start()
        try:
            assert ctl.wait_synced(10.0)
            for model, rev in revisions.items():
                await sees(ctl, MSC, model)
                await sees(ctl, REV, rev)
                await sees(
                    ctl, ISVC, model, lambda o: bool((o.get("status") or {}).get("components"))
                )
            ctl.start_election()
            await until(ctl.is_leader, 10.0, "the controller to lead")
            t0 = 2_000_000_000.0
            report = await ctl.tick(t0)
            await ctl.tick(t0 + 10)
        finally:
            await ctl.stop(release=True)

        written = {key[1]: [w.kind for w in r.written] for key, r in report.models.items()}
        assert written == {"m1": ["Revision"], "m2": ["PodAutoscaler"], "m3": ["InferenceService"]}
        assert TARGET in cluster.get(PA, revisions["m2"])["metadata"]["annotations"]
        assert all(r.status_written for r in report.models.values())
        assert cluster.events(), "the controller recorded Events"

    mine = [r for r in log if r.user == USER]
    assert mine and all(r.is_resource for r in mine), [r.path for r in mine if not r.is_resource]
    denied = [r for r in mine if not grants_for(r)]
    assert denied == [], "requests no rule allows"
    used = {g for r in mine for g in grants_for(r)}
    unused = all_grants() - used
    assert unused == set(), "rule verbs the controller never used"
    # The log saw the calls of each concern, and nothing from the test's own client.
    seen = {(r.verb, r.resource, r.subresource) for r in mine}
    assert {("watch", "modelscalers", ""), ("patch", "modelscalers", "status"),
            ("create", "events", ""), ("update", "leases", ""), ("watch", "pods", "")} <= seen  # fmt: skip
    assert not any(r.verb == "create" and r.resource == "inferenceservices" for r in mine)
