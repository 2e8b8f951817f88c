"""What the controller reads of one model: its InferenceService's serving revisions and the
autoscaling values in force on each. Pure functions over the objects as the API returns them.

Which revisions serve follows KServe's InferenceService status (upstream
``pkg/controller/v1beta1/inferenceservice/components/predictor.go`` copies the Knative Service's
``traffic`` and ``latestReadyRevisionName`` into ``status.components.predictor``); when that status
is not there yet, the newest ready Revision labelled ``serving.kserve.io/inferenceservice=<name>``
stands in. The values in force are the Revision's own ``autoscaling.knative.dev/*`` annotations
(its PodAutoscaler's are derived from them, knative/serving ``pkg/reconciler/revision/resources``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kubernetes.utils import parse_quantity

from autoscaler.runtime.reconcile import names
from autoscaler.tuner.observation import (
    KNATIVE_DEFAULT_TARGET,
    KNATIVE_DEFAULT_UTILIZATION_PERCENTAGE,
)
from autoscaler.tuner.policy import ANNOTATION_WINDOW

PAUSED_ANNOTATION = "modelscale.dev/paused"
# On ``apply: revision``: the stable window the tuner wrote there, written in the same patch as
# the window, so a revision shows both or neither (``autoscaler.kube.model.user_window_on``).
WINDOW_MARK_ANNOTATION = "modelscale.dev/window-written"
UTILIZATION_ANNOTATION = names.AUTOSCALING_PREFIX + "target-utilization-percentage"
RETENTION_ANNOTATION = names.AUTOSCALING_PREFIX + "scale-to-zero-pod-retention-period"
WINDOW_ANNOTATION = ANNOTATION_WINDOW

_DURATION = re.compile(r"^(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m(?!s))?(?:(\d+(?:\.\d+)?)s)?$")


@dataclass(frozen=True, slots=True)
class ServingRevision:
    """One revision that takes traffic, as the controller needs it for one tick."""

    namespace: str
    name: str
    generation: int  # serving.knative.dev/configurationGeneration (0 when unknown)
    percent: int | None  # traffic share, None when the status does not say
    annotations: Mapping[str, str] = field(default_factory=dict)
    container_concurrency: int = 0
    ready_replicas: int = 0
    desired_replicas: int = 0
    configuration: str = ""
    service: str = ""
    window_mark: str | None = None  # WINDOW_MARK_ANNOTATION's value (not in force: a record)
    uid: str = ""  # metadata.uid: another object under the same name has another
    memory_mb: float | None = None  # one replica's memory (``replica_memory_mb``)

    @property
    def target(self) -> float | None:
        """The ``target`` annotation in force (None: unset or not a positive number)."""
        return _positive(self.annotations.get(names.TARGET))

    @property
    def utilization_percentage(self) -> float:
        value = _positive(self.annotations.get(UTILIZATION_ANNOTATION))
        if value is None or value > 100:
            return KNATIVE_DEFAULT_UTILIZATION_PERCENTAGE
        return value

    @property
    def effective_target(self) -> float:
        """What Knative's KPA uses as the per-pod total: the annotation capped by
        containerConcurrency, or containerConcurrency, or 100 (pkg/autoscaler/scaling)."""
        cc = self.container_concurrency
        if self.target is not None:
            return min(self.target, cc) if cc > 0 else self.target
        return float(cc) if cc > 0 else KNATIVE_DEFAULT_TARGET

    @property
    def retention_s(self) -> float:
        return parse_duration_s(self.annotations.get(RETENTION_ANNOTATION)) or 0.0

    @property
    def window_s(self) -> float | None:
        """The stable window in force (None: unset or unreadable, Knative's default)."""
        return _positive(parse_duration_s(self.annotations.get(WINDOW_ANNOTATION)))

    @property
    def window_mark_s(self) -> float | None:
        """The window the tuner last wrote on this revision, as its mark says (None: no mark)."""
        return _positive(parse_duration_s(self.window_mark))

    @property
    def min_scale(self) -> int | None:
        raw = self.annotations.get(names.MIN_SCALE)
        try:
            return int(raw) if raw is not None else None
        except ValueError:
            return None


def _positive(raw: object) -> float | None:
    if type(raw) is str:  # an annotation: the same few values on every revision, every tick
        return _read_once(_read_strings, raw, _positive_of)
    if raw is None:  # an annotation not set (float("None") raises)
        return None
    if type(raw) is float:  # float(str(x)) is x for a float
        return raw if raw > 0 and raw != float("inf") else None
    return _positive_of(raw)


def _positive_of(raw: object) -> float | None:
    try:
        value = float(str(raw))
    except ValueError:
        return None
    return value if value > 0 and value != float("inf") else None


def parse_duration_s(raw: str | None) -> float | None:
    """A Go-style duration as Knative's annotations carry it (``90s``, ``5m``, ``1h2m3s``); a
    bare number counts as seconds. None when absent or unreadable."""
    if type(raw) is str:
        return _read_once(_durations, raw, _duration_of)
    return _duration_of(raw)


# Annotation values read before, and what they read as (both pure functions of the text): a
# few per model (its target, its durations); at most READ_KEPT of each, then all forgotten.
READ_KEPT = 32_768
_read_strings: dict[str, float | None] = {}
_durations: dict[str, float | None] = {}


def _read_once(
    kept: dict[str, float | None], raw: str, read: Callable[[str], float | None]
) -> float | None:
    """``read(raw)``, kept in ``kept`` (emptied once it holds ``READ_KEPT``)."""
    try:
        return kept[raw]
    except KeyError:
        value = read(raw)
        if len(kept) >= READ_KEPT:
            kept.clear()
        kept[raw] = value
        return value


def _duration_of(raw: str | None) -> float | None:
    if raw is None:
        return None
    text = str(raw).strip()
    try:
        return float(text)
    except ValueError:
        pass
    m = _DURATION.match(text)
    if not m or not text:
        return None
    h, mi, s = (float(g) if g else 0.0 for g in m.groups())
    return h * 3600 + mi * 60 + s


MIB = 2**20


def replica_memory_mb(rev: Mapping[str, Any]) -> float | None:
    """One replica's memory in MB (2^20 bytes) as the Revision declares it: the sum over its
    containers of each one's memory request, else its limit (Kubernetes takes the limit as the
    request when only the limit is set). None when no container declares a valid one (a
    quantity Kubernetes would not parse is not counted)."""
    total = 0.0
    known = False
    for c in (rev.get("spec") or {}).get("containers") or []:
        if not isinstance(c, Mapping):
            continue
        resources = c.get("resources") or {}
        for kind in ("requests", "limits"):
            raw = (
                (resources.get(kind) or {}).get("memory")
                if isinstance(resources, Mapping)
                else None
            )
            if raw is None:
                continue
            try:
                value = float(parse_quantity(raw))
            except (ValueError, TypeError, ArithmeticError):
                continue
            if value > 0:
                total += value / MIB
                known = True
                break
    return total if known else None


def is_paused(isvc: Mapping[str, Any]) -> bool:
    value = ((isvc.get("metadata") or {}).get("annotations") or {}).get(PAUSED_ANNOTATION)
    return str(value).strip().lower() == "true"


def _predictor_status(isvc: Mapping[str, Any]) -> Mapping[str, Any]:
    return ((isvc.get("status") or {}).get("components") or {}).get("predictor") or {}


def _generation(rev: Mapping[str, Any]) -> int:
    labels = (rev.get("metadata") or {}).get("labels") or {}
    raw = labels.get(names.CONFIGURATION_GENERATION_LABEL)
    if raw is None:  # Knative names revisions <configuration>-<generation, 5 digits>
        raw = str((rev.get("metadata") or {}).get("name", "")).rsplit("-", 1)[-1]
    try:
        return int(raw)
    except ValueError:
        return 0


def _serving_names(isvc: Mapping[str, Any]) -> dict[str, int | None]:
    """Revision name -> traffic percent from the InferenceService status (empty: not known)."""
    comp = _predictor_status(isvc)
    latest = comp.get("latestReadyRevision")
    out: dict[str, int | None] = {}
    for entry in comp.get("traffic") or []:
        name = entry.get("revisionName") or (latest if entry.get("latestRevision") else None)
        percent = entry.get("percent")
        if name and (percent is None or int(percent) > 0):
            out[name] = (out.get(name) or 0) + int(percent) if percent is not None else None
    if not out and latest:
        out[latest] = None
    return out


def serving_revisions(
    isvc: Mapping[str, Any], revisions: Iterable[Mapping[str, Any]]
) -> list[ServingRevision]:
    """The revisions of ``isvc`` that take traffic, oldest first (the live one is last).

    ``revisions`` are the Revision objects labelled with this InferenceService's name.
    """
    meta = isvc.get("metadata") or {}
    ns = meta.get("namespace") or "default"
    by_name = {
        (r.get("metadata") or {}).get("name"): r
        for r in revisions
        if ((r.get("metadata") or {}).get("namespace") or "default") == ns
    }
    wanted = _serving_names(isvc)
    if not wanted:
        ready = [r for r in by_name.values() if names.is_ready(r)]
        if ready:
            # a tie in generation (not one Configuration's) goes to the name, not to order
            newest = max(ready, key=lambda r: (_generation(r), str(r["metadata"].get("name"))))
            wanted = {str(newest["metadata"]["name"]): None}
    out = []
    for name, percent in wanted.items():
        rev = by_name.get(name)
        if rev is not None:
            out.append(_to_serving(ns, rev, percent))
    return sorted(out, key=lambda r: (r.generation, r.name))


def _to_serving(ns: str, rev: Mapping[str, Any], percent: int | None) -> ServingRevision:
    meta = rev.get("metadata") or {}
    labels = meta.get("labels") or {}
    status = rev.get("status") or {}
    annotations = {
        str(k): str(v)
        for k, v in (meta.get("annotations") or {}).items()
        if str(k).startswith(names.AUTOSCALING_PREFIX)
    }
    return ServingRevision(
        namespace=ns,
        name=str(meta.get("name")),
        generation=_generation(rev),
        percent=percent,
        annotations=annotations,
        window_mark=(meta.get("annotations") or {}).get(WINDOW_MARK_ANNOTATION),
        container_concurrency=int((rev.get("spec") or {}).get("containerConcurrency") or 0),
        ready_replicas=int(status.get("actualReplicas") or 0),
        desired_replicas=int(status.get("desiredReplicas") or 0),
        configuration=str(labels.get(names.CONFIGURATION_LABEL, "")),
        service=str(labels.get(names.SERVICE_LABEL, "")),
        uid=str(meta.get("uid") or ""),
        memory_mb=replica_memory_mb(rev),
    )
