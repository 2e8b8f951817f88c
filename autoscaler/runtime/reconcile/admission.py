"""Admission checks for one-machine mode: what KServe's and Knative's validating webhooks refuse.

An InferenceService that one-machine mode cannot run (an unsupported predictor, bad replica
bounds) and a Revision, Knative Service or InferenceService whose ``autoscaling.knative.dev/*``
annotations Knative would reject are refused at apply time, with the field path in the Status.
A Knative Service of its own (not one KServe made for an InferenceService) must name something
one-machine mode can run: a local function by its image (``autoscaler.runtime.functions``) or a
``kserve.Model`` class.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from autoscaler.apiserver.errors import Cause
from autoscaler.kpa import annotation_problems
from autoscaler.kpa.annotations import CONTAINER_CONCURRENCY_KEY

from . import kserve, names
from .replicas import runnable_problem


def _annotation_causes(
    annotations: dict[str, Any],
    container_concurrency: int,
    path: str | Callable[[str], str],
    cc_field: str,
) -> list[Cause]:
    """Knative's checks of the autoscaling annotations (and containerConcurrency, reported at
    ``cc_field``); ``path`` gives an annotation's field path, e.g. ``metadata.annotations``."""
    autoscaling = {
        k: str(v) for k, v in annotations.items() if k.startswith(names.AUTOSCALING_PREFIX)
    }

    def field(key: str) -> str:
        return path(key) if callable(path) else f"{path}[{key}]"

    causes = []
    cls = autoscaling.get(names.CLASS_ANNOTATION, names.KPA_CLASS)
    if cls != names.KPA_CLASS:
        causes.append(
            Cause(
                field(names.CLASS_ANNOTATION),
                f"Unsupported value: {cls!r}: one-machine mode runs the KPA only "
                f"({names.KPA_CLASS})",
            )
        )
    for p in annotation_problems(autoscaling, container_concurrency):
        if p.key == names.CLASS_ANNOTATION:
            continue
        where = cc_field if p.key == CONTAINER_CONCURRENCY_KEY else field(p.key)
        causes.append(Cause(where, f"Invalid value: {p.value!r}: {p.allowed}"))
    return causes


def _cc(spec: dict[str, Any]) -> int:
    cc = spec.get("containerConcurrency") or 0
    return cc if isinstance(cc, int) and not isinstance(cc, bool) else 0


# KServe's InferenceService name rule (IsvcNameFmt) and message.
ISVC_NAME_FMT = "[a-z]([-a-z0-9]*[a-z0-9])?"
_ISVC_NAME = re.compile(f"^{ISVC_NAME_FMT}$")


def inference_service(obj: dict[str, Any]) -> list[Cause]:
    causes = [Cause(e.field, e.message) for e in kserve.validate(obj)]
    meta = obj.get("metadata") or {}
    name = str(meta.get("name") or "")
    if name and not _ISVC_NAME.match(name):
        causes.append(
            Cause(
                "metadata.name",
                f'Invalid value: "{name}": a InferenceService name must consist of lower case '
                "alphanumeric characters or '-', and must start with alphabetical character. "
                f'(e.g. "my-name" or "abc-123", regex used for validation is \'{ISVC_NAME_FMT}\')',
            )
        )
    annotations = meta.get("annotations") or {}
    mode = annotations.get(kserve.DEPLOYMENT_MODE)
    if mode is not None and mode not in kserve.SERVERLESS_MODES:
        causes.append(
            Cause(
                f"metadata.annotations[{kserve.DEPLOYMENT_MODE}]",
                f"Unsupported value: {mode!r}: one-machine mode runs the serverless (Knative) "
                f"deployment mode only",
            )
        )
    pred = (obj.get("spec") or {}).get("predictor") or {}
    pred_annotations = pred.get("annotations") or {}
    if not isinstance(pred_annotations, dict):
        pred_annotations = {}

    def path(key: str) -> str:
        # the predictor's annotations win over the InferenceService's, as on the template
        where = "spec.predictor.annotations" if key in pred_annotations else "metadata.annotations"
        return f"{where}[{key}]"

    return causes + _annotation_causes(
        {**annotations, **pred_annotations},
        _cc(pred),
        path,
        "spec.predictor.containerConcurrency",
    )


def revision(obj: dict[str, Any]) -> list[Cause]:
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    return _annotation_causes(
        annotations,
        _cc(obj.get("spec") or {}),
        "metadata.annotations",
        "spec.containerConcurrency",
    )


def knative_service(obj: dict[str, Any]) -> list[Cause]:
    template = (obj.get("spec") or {}).get("template") or {}
    annotations = (template.get("metadata") or {}).get("annotations") or {}
    causes = _annotation_causes(
        annotations,
        _cc(template.get("spec") or {}),
        "spec.template.metadata.annotations",
        "spec.template.spec.containerConcurrency",
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
