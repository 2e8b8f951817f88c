"""Admission checks for one-machine mode: what KServe's and Knative's validating webhooks refuse.

An InferenceService that one-machine mode cannot run (an unsupported predictor, bad replica
bounds) and a Revision, Knative Service or InferenceService whose ``autoscaling.knative.dev/*``
annotations Knative would reject are refused at apply time, with the field path in the Status.
A Knative Service of its own (not one KServe made for an InferenceService) must name something
one-machine mode can run: a local function by its image (``autoscaler.runtime.functions``) or a
``kserve.Model`` class.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from autoscaler.apiserver.errors import Cause
from autoscaler.kpa import annotation_problems

from . import kserve, names
from .replicas import runnable_problem


def _annotation_causes(
    annotations: dict[str, Any], container_concurrency: int, path: str
) -> list[Cause]:
    autoscaling = {
        k: str(v) for k, v in annotations.items() if k.startswith(names.AUTOSCALING_PREFIX)
    }
    causes = []
    cls = autoscaling.get(names.CLASS_ANNOTATION, names.KPA_CLASS)
    if cls != names.KPA_CLASS:
        causes.append(
            Cause(
                f"{path}[{names.CLASS_ANNOTATION}]",
                f"Unsupported value: {cls!r}: one-machine mode runs the KPA only "
                f"({names.KPA_CLASS})",
            )
        )
    causes.extend(
        Cause(f"{path}[{p.key}]", f"Invalid value: {p.value!r}: {p.allowed}")
        for p in annotation_problems(autoscaling, container_concurrency)
        if p.key != names.CLASS_ANNOTATION
    )
    return causes


def inference_service(obj: dict[str, Any]) -> list[Cause]:
    causes = [Cause(e.field, e.message) for e in kserve.validate(obj)]
    mode = ((obj.get("metadata") or {}).get("annotations") or {}).get(kserve.DEPLOYMENT_MODE)
    if mode is not None and mode not in kserve.SERVERLESS_MODES:
        causes.append(
            Cause(
                f"metadata.annotations[{kserve.DEPLOYMENT_MODE}]",
                f"Unsupported value: {mode!r}: one-machine mode runs the serverless (Knative) "
                f"deployment mode only",
            )
        )
    pred = (obj.get("spec") or {}).get("predictor") or {}
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    cc = pred.get("containerConcurrency") or 0
    return causes + _annotation_causes(
        annotations, int(cc) if isinstance(cc, int) else 0, "metadata.annotations"
    )


def revision(obj: dict[str, Any]) -> list[Cause]:
    cc = (obj.get("spec") or {}).get("containerConcurrency") or 0
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    return _annotation_causes(
        annotations, int(cc) if isinstance(cc, int) else 0, "metadata.annotations"
    )


def knative_service(obj: dict[str, Any]) -> list[Cause]:
    template = (obj.get("spec") or {}).get("template") or {}
    cc = (template.get("spec") or {}).get("containerConcurrency") or 0
    annotations = (template.get("metadata") or {}).get("annotations") or {}
    causes = _annotation_causes(
        annotations, int(cc) if isinstance(cc, int) else 0, "spec.template.metadata.annotations"
    )
    labels = (obj.get("metadata") or {}).get("labels") or {}
    containers = (template.get("spec") or {}).get("containers") or []
    if names.ISVC_LABEL not in labels and containers and isinstance(containers[0], dict):
        problem = runnable_problem(containers[0])
        if problem is not None:
            causes.append(Cause("spec.template.spec.containers[0].image", problem))
    return causes


VALIDATORS: dict[tuple[str, str], Callable[[dict[str, Any]], list[Cause]]] = {
    (names.KSERVE_GROUP, "InferenceService"): inference_service,
    (names.KNATIVE_SERVING_GROUP, "Revision"): revision,
    (names.KNATIVE_SERVING_GROUP, "Service"): knative_service,
}
