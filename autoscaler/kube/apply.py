"""Writing a recommendation onto Kubernetes: the three ways a ModelScaler's ``apply`` allows.

- ``revision`` (default): merge-patch the live Revision's ``metadata.annotations``. Knative since
  v1.21 (serving PR #16186) propagates a Revision's own autoscaling annotations to its
  PodAutoscaler, so the KPA takes them without a new revision.
- ``podautoscaler``: merge-patch the PodAutoscaler (``autoscaling.internal.knative.dev/v1alpha1``,
  same name as the revision); before v1.21 annotations put there stay and the KPA reads them.
- ``inferenceservice``: write ``spec.predictor.scaleTarget`` and ``spec.predictor.minReplicas``
  (and the retention annotation, which KServe copies onto the revision template); every such
  write rolls out a new revision, for teams that accept that.

Each write is one read-modify-write with the object's ``resourceVersion`` as precondition: a 409
re-reads and tries again with backoff (``retry.call_with_retry``). The leader check sits right
before the write, inside the retried function, so a deposed leader never writes.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, cast

from kubernetes import client

from autoscaler.runtime.reconcile import names
from autoscaler.tuner.spec import MAX_RETENTION_S, MIN_TARGET

from .informer import Resource
from .retry import Backoff, call_with_retry
from .world import (
    RETENTION_ANNOTATION,
    WINDOW_ANNOTATION,
    WINDOW_MARK_ANNOTATION,
    parse_duration_s,
)

# The manager the tuner's writes carry (metadata.managedFields): a field another manager owns was
# written by someone else (a user's manifest, an edit).
FIELD_MANAGER = "modelscale-tuner"


class NotLeader(RuntimeError):
    """This replica lost leadership between deciding and writing; nothing was written."""


@dataclass(frozen=True, slots=True)
class Written:
    """One write (or a write found unnecessary): which object, values before and after."""

    method: str
    kind: str
    name: str
    old: Mapping[str, str | None]  # annotation -> value before (None: unset)
    new: Mapping[str, str]  # annotation -> value written (empty: nothing needed writing)


REVISIONS = Resource(names.KNATIVE_SERVING_GROUP, "v1", "revisions", "Revision")
PODAUTOSCALERS = Resource(names.AUTOSCALING_GROUP, "v1alpha1", "podautoscalers", "PodAutoscaler")
INFERENCESERVICES = Resource(names.KSERVE_GROUP, "v1beta1", "inferenceservices", "InferenceService")


def within_knative_ranges(values: Mapping[str, str]) -> dict[str, str]:
    """The values clamped into what Knative's webhook accepts (pkg/apis/autoscaling):
    target >= 0.01, retention period in [0, 1 h], min-scale >= 0."""
    out = dict(values)
    if names.TARGET in out:
        target = float(out[names.TARGET])
        if not math.isfinite(target) or target < MIN_TARGET:
            out[names.TARGET] = f"{MIN_TARGET:g}"
    if RETENTION_ANNOTATION in out:
        seconds = parse_duration_s(out[RETENTION_ANNOTATION]) or 0.0
        out[RETENTION_ANNOTATION] = f"{round(min(max(seconds, 0.0), MAX_RETENTION_S))}s"
    if names.MIN_SCALE in out:
        out[names.MIN_SCALE] = str(max(0, int(out[names.MIN_SCALE])))
    return out


def annotation_patch(obj: Mapping[str, Any], values: Mapping[str, str]) -> tuple[dict, dict]:
    """(old values, the annotations that differ) for an object's metadata.annotations."""
    current = (obj.get("metadata") or {}).get("annotations") or {}
    old = {k: current.get(k) for k in values}
    changed = {k: v for k, v in values.items() if current.get(k) != v}
    return old, changed


def isvc_patch(isvc: Mapping[str, Any], values: Mapping[str, str]) -> tuple[dict, dict, dict]:
    """(old values, new values, merge patch) for the InferenceService.

    KServe's ``scaleTarget`` is an integer: the target is rounded, at least 1.
    """
    pred = (isvc.get("spec") or {}).get("predictor") or {}
    annotations = (isvc.get("metadata") or {}).get("annotations") or {}
    old: dict[str, str | None] = {}
    new: dict[str, str] = {}
    spec_patch: dict[str, Any] = {}
    meta_patch: dict[str, Any] = {}
    if names.TARGET in values:
        target = max(1, round(float(values[names.TARGET])))
        current = pred.get("scaleTarget")
        old[names.TARGET] = None if current is None else str(current)
        if current != target:
            spec_patch["scaleTarget"] = target
            new[names.TARGET] = str(target)
    if names.MIN_SCALE in values:
        replicas = int(values[names.MIN_SCALE])
        current = pred.get("minReplicas")
        old[names.MIN_SCALE] = None if current is None else str(current)
        if current != replicas:
            spec_patch["minReplicas"] = replicas
            new[names.MIN_SCALE] = str(replicas)
    if RETENTION_ANNOTATION in values:
        old[RETENTION_ANNOTATION] = annotations.get(RETENTION_ANNOTATION)
        if annotations.get(RETENTION_ANNOTATION) != values[RETENTION_ANNOTATION]:
            meta_patch["annotations"] = {RETENTION_ANNOTATION: values[RETENTION_ANNOTATION]}
            new[RETENTION_ANNOTATION] = values[RETENTION_ANNOTATION]
    patch: dict[str, Any] = {}
    if spec_patch:
        patch["spec"] = {"predictor": spec_patch}
    if meta_patch:
        patch["metadata"] = meta_patch
    return old, new, patch


class Writer:
    """Writes values onto one revision's object with retries; never when not the leader."""

    def __init__(
        self,
        api_client: client.ApiClient,
        is_leader: Callable[[], bool],
        *,
        backoff: Backoff | None = None,
        request_timeout_s: float = 10.0,
        field_manager: str = FIELD_MANAGER,
    ) -> None:
        self._api = client.CustomObjectsApi(api_client)
        self._is_leader = is_leader
        self._backoff = backoff or Backoff()
        self._timeout = request_timeout_s
        self._manager = field_manager

    def write(
        self, method: str, namespace: str, isvc: str, revision: str, values: Mapping[str, str]
    ) -> Written:
        """Write ``values`` (annotation -> value) the way ``method`` says; blocking I/O.

        Raises ``NotLeader`` (nothing written), or the API error once retries are spent.
        """
        values = within_knative_ranges(values)
        if method == "inferenceservice":
            return call_with_retry(
                lambda: self._write_isvc(namespace, isvc, values), backoff=self._backoff
            )
        res = PODAUTOSCALERS if method == "podautoscaler" else REVISIONS
        return call_with_retry(
            lambda: self._write_annotations(res, method, namespace, revision, values),
            backoff=self._backoff,
        )

    def read_annotations(self, method: str, namespace: str, revision: str) -> dict[str, str]:
        """The autoscaling annotations on the revision's PodAutoscaler (``method``
        ``podautoscaler``) or on the revision itself, read fresh (blocking I/O)."""
        res = PODAUTOSCALERS if method == "podautoscaler" else REVISIONS
        obj = self._get(res, namespace, revision)
        current = (obj.get("metadata") or {}).get("annotations") or {}
        return {
            str(k): str(v)
            for k, v in current.items()
            if str(k).startswith(names.AUTOSCALING_PREFIX)
        }

    def _get(self, res: Resource, namespace: str, name: str) -> dict[str, Any]:
        obj = self._api.get_namespaced_custom_object(
            res.group, res.version, namespace, res.plural, name, _request_timeout=self._timeout
        )
        return cast(dict[str, Any], obj)

    def _patch(self, res: Resource, namespace: str, name: str, body: dict[str, Any]) -> None:
        if not self._is_leader():
            raise NotLeader(f"not the leader: {res.kind} {namespace}/{name} left as it is")
        self._api.patch_namespaced_custom_object(
            res.group,
            res.version,
            namespace,
            res.plural,
            name,
            body,
            field_manager=self._manager,
            _request_timeout=self._timeout,
        )

    def _write_annotations(
        self, res: Resource, method: str, namespace: str, name: str, values: Mapping[str, str]
    ) -> Written:
        obj = self._get(res, namespace, name)
        old, changed = annotation_patch(obj, values)
        if changed:
            rv = obj["metadata"].get("resourceVersion")
            annotations = copy.deepcopy(changed)
            if method == "revision" and WINDOW_ANNOTATION in changed:
                # the window's mark in the same patch: the tuner's own window is told from a
                # user's edit of it (or its removal) with no checkpoint and no informer lag
                annotations[WINDOW_MARK_ANNOTATION] = changed[WINDOW_ANNOTATION]
            body = {"metadata": {"resourceVersion": rv, "annotations": annotations}}
            self._patch(res, namespace, name, body)
        return Written(method, res.kind, name, old, changed)

    def _write_isvc(self, namespace: str, name: str, values: Mapping[str, str]) -> Written:
        res = INFERENCESERVICES
        obj = self._get(res, namespace, name)
        old, new, patch = isvc_patch(obj, values)
        if patch:
            patch.setdefault("metadata", {})["resourceVersion"] = obj["metadata"].get(
                "resourceVersion"
            )
            self._patch(res, namespace, name, patch)
        return Written("inferenceservice", res.kind, name, old, new)
