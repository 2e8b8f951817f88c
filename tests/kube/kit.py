"""Helpers for the controller tests: constants, a deadline poll for watch-fed caches, and
``Cluster``, the embedded API server with what the runtime would create (an InferenceService,
its ready revisions and PodAutoscalers)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kubernetes import client

from autoscaler.apiserver.testing import RunningAPIServer
from autoscaler.kube.controller import INFERENCESERVICES, MODELSCALERS, REVISIONS, Controller

REPO = Path(__file__).resolve().parents[2]
MODELSCALER_CRD = REPO / "manifests" / "crds" / "modelscale.dev_modelscalers.yaml"
TICK_S = 10.0
TARGET = "autoscaling.knative.dev/target"
RETENTION = "autoscaling.knative.dev/scale-to-zero-pod-retention-period"
MIN_SCALE = "autoscaling.knative.dev/min-scale"
MSC = ("modelscale.dev", "v1alpha1", "modelscalers")
ISVC = ("serving.kserve.io", "v1beta1", "inferenceservices")
REV = ("serving.knative.dev", "v1", "revisions")
PA = ("autoscaling.internal.knative.dev", "v1alpha1", "podautoscalers")


def wait_for(cond: Callable[[], Any], timeout_s: float = 10.0, what: str = "condition") -> Any:
    """Poll ``cond`` until it is truthy (for caches fed by a real watch), with a deadline."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


class Cluster:
    """The embedded API server with helpers that create what the runtime would."""

    def __init__(self, server: RunningAPIServer) -> None:
        self.server = server
        self.api_client = server.api_client()
        self.custom = client.CustomObjectsApi(self.api_client)
        self.core = client.CoreV1Api(self.api_client)

    def get(self, kind: tuple[str, str, str], name: str, ns: str = "default") -> dict[str, Any]:
        return self.custom.get_namespaced_custom_object(kind[0], kind[1], ns, kind[2], name)

    def list(self, kind: tuple[str, str, str], ns: str = "default") -> list[dict[str, Any]]:
        return self.custom.list_namespaced_custom_object(kind[0], kind[1], ns, kind[2])["items"]

    def create(self, kind: tuple[str, str, str], body: dict[str, Any], ns: str = "default") -> Any:
        return self.custom.create_namespaced_custom_object(kind[0], kind[1], ns, kind[2], body)

    def patch(self, kind: tuple[str, str, str], name: str, body: dict[str, Any]) -> Any:
        return self.custom.patch_namespaced_custom_object(
            kind[0], kind[1], "default", kind[2], name, body
        )

    def patch_status(self, kind: tuple[str, str, str], name: str, status: dict[str, Any]) -> Any:
        return self.custom.patch_namespaced_custom_object_status(
            kind[0], kind[1], "default", kind[2], name, {"status": status}
        )

    def tuner_config(self, data: dict[str, str]) -> None:
        body = {"metadata": {"name": "modelscale-tuner"}, "data": data}
        self.core.create_namespaced_config_map("default", body)

    def deploy(
        self,
        model: str = "m1",
        *,
        annotations: dict[str, str] | None = None,
        resources: dict[str, Any] | None = None,
    ) -> str:
        """An InferenceService with a ready revision 1 and its PodAutoscaler."""
        isvc = {
            "apiVersion": "serving.kserve.io/v1beta1",
            "kind": "InferenceService",
            "metadata": {"name": model, "annotations": annotations or {}},
            "spec": {
                "predictor": {
                    "minReplicas": 0,
                    "model": {"modelFormat": {"name": "sklearn"}, "storageUri": "file:///m"},
                }
            },
        }
        self.create(ISVC, isvc)
        return self.roll_out(model, 1, resources=resources)

    def roll_out(
        self,
        model: str,
        generation: int,
        *,
        min_scale: str = "0",
        resources: dict[str, Any] | None = None,
    ) -> str:
        """Revision ``generation`` of ``model``, ready, with all traffic (as the runtime would);
        ``resources`` is its container's."""
        config = f"{model}-predictor"
        name = f"{config}-{generation:05d}"
        annotations = {
            "autoscaling.knative.dev/class": "kpa.autoscaling.knative.dev",
            MIN_SCALE: min_scale,
        }
        labels = {
            "serving.kserve.io/inferenceservice": model,
            "component": "predictor",
            "serving.knative.dev/configuration": config,
            "serving.knative.dev/configurationGeneration": str(generation),
            "serving.knative.dev/service": config,
        }
        rev = {
            "apiVersion": "serving.knative.dev/v1",
            "kind": "Revision",
            "metadata": {"name": name, "labels": labels, "annotations": annotations},
            "spec": {
                "containerConcurrency": 0,
                "containers": [
                    {"image": "kserve-sklearn", **({"resources": resources} if resources else {})}
                ],
            },
        }
        self.create(REV, rev)
        ready = {"type": "Ready", "status": "True"}
        self.patch_status(
            REV, name, {"actualReplicas": 2, "desiredReplicas": 2, "conditions": [ready]}
        )
        pa = {
            "apiVersion": "autoscaling.internal.knative.dev/v1alpha1",
            "kind": "PodAutoscaler",
            "metadata": {"name": name, "labels": labels, "annotations": dict(annotations)},
            "spec": {"containerConcurrency": 0, "reachability": "Reachable"},
        }
        self.create(PA, pa)
        traffic = [{"revisionName": name, "percent": 100, "latestRevision": True}]
        self.patch_status(
            ISVC,
            model,
            {
                "components": {
                    "predictor": {
                        "latestCreatedRevision": name,
                        "latestReadyRevision": name,
                        "latestRolledoutRevision": name,
                        "traffic": traffic,
                    }
                }
            },
        )
        return name

    def scaler(self, model: str = "m1", **spec: Any) -> None:
        body = {
            "apiVersion": "modelscale.dev/v1alpha1",
            "kind": "ModelScaler",
            "metadata": {"name": model},
            "spec": {"targetRef": {"name": model}, "objective": {"latencyMs": 200}, **spec},
        }
        self.create(MSC, body)

    def events(self, reason: str | None = None) -> list[Any]:
        items = self.core.list_namespaced_event("default").items
        return [e for e in items if reason is None or e.reason == reason]


async def sees(ctl: Controller, kind: tuple[str, str, str], name: str, pred: Callable[[dict[str, Any]], bool] = lambda o: True) -> None:  # fmt: skip
    """Wait until the controller's cache holds ``name`` satisfying ``pred``."""
    res = {MSC: MODELSCALERS, ISVC: INFERENCESERVICES, REV: REVISIONS}[kind]

    def ok() -> bool:
        obj = ctl.cached(res, "default", name)
        return obj is not None and pred(obj)

    await asyncio.to_thread(wait_for, ok, 10.0, f"{kind[2]}/{name} in the cache")


async def ready_model(cluster: Cluster, ctl: Controller, **spec: Any) -> str:
    """InferenceService m1 with a ready revision 1 and a ModelScaler (``spec`` added to its
    spec), all in the controller's cache; the revision's name."""
    rev = cluster.deploy("m1")
    cluster.scaler("m1", **spec)
    await sees(ctl, MSC, "m1")
    await sees(ctl, REV, rev)
    await sees(ctl, ISVC, "m1", lambda o: bool((o.get("status") or {}).get("components")))
    return rev
