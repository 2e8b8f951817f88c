"""Table responses (``Accept: application/json;as=Table;v=v1;g=meta.k8s.io``) for ``kubectl get``.

Custom resources print a Name column and their CRD's ``additionalPrinterColumns`` (JSONPath on
the object; ``date`` columns as an age, like
k8s.io/apiextensions-apiserver/pkg/registry/customresource/tableconvertor); without columns they
print Name and Age. Built-in kinds print the columns of k8s.io/kubernetes/pkg/printers/internalversion
that matter here: Namespace STATUS, ConfigMap DATA, Secret TYPE/DATA, Lease HOLDER, Event LAST SEEN/TYPE/REASON/
OBJECT/MESSAGE, CustomResourceDefinition CREATED AT, Pod READY/STATUS/RESTARTS (and with ``-o wide``
IP/NODE/NOMINATED NODE/READINESS GATES), Deployment READY/UP-TO-DATE/AVAILABLE (and CONTAINERS/
IMAGES/SELECTOR).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from autoscaler.apiserver.jsonpath import JSONPathError, find
from autoscaler.apiserver.registry import ResourceType

Column = dict[str, Any]


def human_duration(seconds: float) -> str:
    """An age as kubectl prints it (k8s.io/apimachinery/pkg/util/duration.HumanDuration)."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        return f"{minutes}m" if s % 60 == 0 else f"{minutes}m{s % 60}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        return f"{hours}h" if minutes % 60 == 0 else f"{hours}h{minutes % 60}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{hours // 24}d" if hours % 24 == 0 else f"{hours // 24}d{hours % 24}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if days == 0 else f"{hours // 24 // 365}y{days}d"
    return f"{hours // 24 // 365}y"


def parse_time(text: str) -> float | None:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except (ValueError, AttributeError):
        return None


def age(timestamp: Any, now: float) -> str:
    if not isinstance(timestamp, str) or not timestamp:
        return "<unknown>"
    t = parse_time(timestamp)
    return "<invalid>" if t is None else human_duration(now - t)


def _col(name: str, typ: str = "string", description: str = "", priority: int = 0) -> Column:
    fmt = "name" if name == "Name" else ""
    return {
        "name": name,
        "type": typ,
        "format": fmt,
        "description": description,
        "priority": priority,
    }


def _meta(obj: dict[str, Any]) -> dict[str, Any]:
    return obj.get("metadata") or {}


def _event_object(obj: dict[str, Any]) -> str:
    ref = obj.get("involvedObject") or obj.get("regarding") or {}
    kind = str(ref.get("kind", "")).lower()
    return f"{kind}/{ref.get('name', '')}" if kind else str(ref.get("name", ""))


def _event_last_seen(obj: dict[str, Any], now: float) -> str:
    for key in ("lastTimestamp", "deprecatedLastTimestamp", "eventTime"):
        if obj.get(key):
            return age(obj[key], now)
    series = obj.get("series") or {}
    if series.get("lastObservedTime"):
        return age(series["lastObservedTime"], now)
    return age(_meta(obj).get("creationTimestamp"), now)


Printer = Callable[[dict[str, Any], float], list[Any]]

_POD_COLUMNS = [
    _col("Name", description="Name must be unique within a namespace."),
    _col("Ready", description="The aggregate readiness state of this pod for accepting traffic."),
    _col("Status", description="The aggregate status of the containers in this pod."),
    _col("Restarts", description="The number of times the containers in this pod have been "
         "restarted and when the last container in this pod has restarted."),
    _col("Age"),
    _col("IP", priority=1, description="IP address assigned to the pod"),
    _col("Node", priority=1, description="Name of the node the pod is assigned to"),
    _col("Nominated Node", priority=1, description="Name of the node the pod is nominated to"),
    _col("Readiness Gates", priority=1, description="The readiness gates of the pod"),
]  # fmt: skip


def _terminated_reason(term: dict[str, Any]) -> str:
    if term.get("reason"):
        return str(term["reason"])
    if term.get("signal"):
        return f"Signal:{term['signal']}"
    return f"ExitCode:{term.get('exitCode', 0)}"


def pod_status_text(pod: dict[str, Any]) -> tuple[str, int, int, int, float | None]:
    """STATUS, ready containers, containers, restarts and the last restart's time, as
    kubectl's pod printer (k8s.io/kubernetes/pkg/printers/internalversion printPod) works them
    out: the phase, overridden by the first init container not done, else by a waiting or
    terminated container's reason; ``Terminating`` once the pod is being deleted."""
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    total = len(spec.get("containers") or [])
    reason = str(status.get("reason") or status.get("phase") or "")
    ready = restarts = 0
    last_restart: float | None = None

    def note_restart(c: dict[str, Any]) -> None:
        nonlocal restarts, last_restart
        restarts += int(c.get("restartCount") or 0)
        finished = ((c.get("lastState") or {}).get("terminated") or {}).get("finishedAt")
        t = parse_time(finished) if isinstance(finished, str) else None
        if t is not None and (last_restart is None or t > last_restart):
            last_restart = t

    initializing = False
    inits = status.get("initContainerStatuses") or []
    for i, c in enumerate(inits):
        note_restart(c)
        state = c.get("state") or {}
        term, waiting = state.get("terminated"), state.get("waiting")
        if term is not None and int(term.get("exitCode", 0) or 0) == 0:
            continue
        if term is not None:
            reason = "Init:" + _terminated_reason(term)
        elif waiting and waiting.get("reason") and waiting["reason"] != "PodInitializing":
            reason = "Init:" + str(waiting["reason"])
        else:
            reason = f"Init:{i}/{len(spec.get('initContainers') or [])}"
        initializing = True
        break
    if not initializing:
        restarts, last_restart = 0, None
        has_running = False
        for c in reversed(status.get("containerStatuses") or []):
            note_restart(c)
            state = c.get("state") or {}
            waiting, term = state.get("waiting"), state.get("terminated")
            if waiting and waiting.get("reason"):
                reason = str(waiting["reason"])
            elif term is not None:
                reason = _terminated_reason(term)
            elif c.get("ready") and state.get("running") is not None:
                has_running = True
                ready += 1
        if reason == "Completed" and has_running:
            pod_ready = any(
                c.get("type") == "Ready" and c.get("status") == "True"
                for c in status.get("conditions") or []
            )
            reason = "Running" if pod_ready else "NotReady"
    if _meta(pod).get("deletionTimestamp"):
        reason = "Unknown" if status.get("reason") == "NodeLost" else "Terminating"
    return reason, ready, total, restarts, last_restart


def _pod_row(o: dict[str, Any], now: float) -> list[Any]:
    reason, ready, total, restarts, last_restart = pod_status_text(o)
    spec, status = o.get("spec") or {}, o.get("status") or {}
    restart_text = str(restarts)
    if restarts and last_restart is not None:  # a first run that ended is no restart yet
        restart_text += f" ({human_duration(now - last_restart)} ago)"
    gates = spec.get("readinessGates") or []
    gates_text = "<none>"
    if gates:
        conds = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
        passed = sum(1 for g in gates if conds.get(g.get("conditionType")) == "True")
        gates_text = f"{passed}/{len(gates)}"
    return [
        _meta(o).get("name"),
        f"{ready}/{total}",
        reason,
        restart_text,
        age(_meta(o).get("creationTimestamp"), now),
        status.get("podIP") or "<none>",
        spec.get("nodeName") or "<none>",
        status.get("nominatedNodeName") or "<none>",
        gates_text,
    ]


def selector_text(selector: dict[str, Any] | None) -> str:
    """A label selector as kubectl prints one (``metav1.LabelSelectorAsSelector``)."""
    parts = [f"{k}={v}" for k, v in sorted(((selector or {}).get("matchLabels") or {}).items())]
    for e in (selector or {}).get("matchExpressions") or []:
        key, op, values = e.get("key", ""), e.get("operator", ""), e.get("values") or []
        if op == "Exists":
            parts.append(str(key))
        elif op == "DoesNotExist":
            parts.append(f"!{key}")
        else:
            parts.append(f"{key} {op.lower()} ({','.join(sorted(values))})")
    return ",".join(sorted(parts))


def _deployment_row(o: dict[str, Any], now: float) -> list[Any]:
    spec, status = o.get("spec") or {}, o.get("status") or {}
    containers = ((spec.get("template") or {}).get("spec") or {}).get("containers") or []
    replicas = spec.get("replicas", 1)
    return [
        _meta(o).get("name"),
        f"{int(status.get('readyReplicas', 0) or 0)}/{int(replicas or 0)}",
        int(status.get("updatedReplicas", 0) or 0),
        int(status.get("availableReplicas", 0) or 0),
        age(_meta(o).get("creationTimestamp"), now),
        ",".join(str(c.get("name", "")) for c in containers),
        ",".join(str(c.get("image", "")) for c in containers),
        selector_text(spec.get("selector")),
    ]


_BUILTIN: dict[tuple[str, str], tuple[list[Column], Printer]] = {
    ("", "namespaces"): (
        [_col("Name"), _col("Status"), _col("Age")],
        lambda o, now: [
            _meta(o).get("name"),
            (o.get("status") or {}).get("phase", "Active"),
            age(_meta(o).get("creationTimestamp"), now),
        ],
    ),
    ("", "configmaps"): (
        [_col("Name"), _col("Data", "integer"), _col("Age")],
        lambda o, now: [
            _meta(o).get("name"),
            len(o.get("data") or {}) + len(o.get("binaryData") or {}),
            age(_meta(o).get("creationTimestamp"), now),
        ],
    ),
    ("", "secrets"): (
        [_col("Name"), _col("Type"), _col("Data", "integer"), _col("Age")],
        lambda o, now: [
            _meta(o).get("name"),
            o.get("type", ""),
            len(o.get("data") or {}),
            age(_meta(o).get("creationTimestamp"), now),
        ],
    ),
    ("coordination.k8s.io", "leases"): (
        [_col("Name"), _col("Holder"), _col("Age")],
        lambda o, now: [
            _meta(o).get("name"),
            (o.get("spec") or {}).get("holderIdentity", ""),
            age(_meta(o).get("creationTimestamp"), now),
        ],
    ),
    ("", "pods"): (_POD_COLUMNS, _pod_row),
    ("apps", "deployments"): (
        [
            _col("Name", description="Name must be unique within a namespace."),
            _col("Ready", description="Number of the pod with ready state"),
            _col(
                "Up-to-date",
                "integer",
                "Total number of non-terminated pods targeted by "
                "this deployment that have the desired template spec.",
            ),
            _col(
                "Available",
                "integer",
                "Total number of available pods (ready for at least "
                "minReadySeconds) targeted by this deployment.",
            ),
            _col("Age"),
            _col("Containers", priority=1, description="Names of each container in the template."),
            _col(
                "Images",
                priority=1,
                description="Images referenced by each container in the template.",
            ),
            _col("Selector", priority=1, description="Label selector for pods."),
        ],
        _deployment_row,
    ),
    ("apiextensions.k8s.io", "customresourcedefinitions"): (
        [_col("Name"), _col("Created At", "date")],
        lambda o, now: [_meta(o).get("name"), _meta(o).get("creationTimestamp", "")],
    ),
}
_EVENT: tuple[list[Column], Printer] = (
    [
        _col("Last Seen"),
        _col("Type"),
        _col("Reason"),
        _col("Object"),
        _col("Message"),
        _col("Name", priority=1),
    ],
    lambda o, now: [
        _event_last_seen(o, now),
        o.get("type", ""),
        o.get("reason", ""),
        _event_object(o),
        o.get("message", o.get("note", "")),
        _meta(o).get("name"),
    ],
)
_BUILTIN[("", "events")] = _EVENT
_BUILTIN[("events.k8s.io", "events")] = _EVENT


def columns(rt: ResourceType) -> list[Column]:
    """The column definitions ``kubectl get`` shows for ``rt``."""
    if (rt.group, rt.plural) in _BUILTIN:
        return _BUILTIN[(rt.group, rt.plural)][0]
    out = [_col("Name", description="Name must be unique within a namespace.")]
    if not rt.printer_columns:
        return [*out, _col("Age", "date")]
    for c in rt.printer_columns:
        out.append(
            {
                "name": c.get("name", ""),
                "type": c.get("type", "string"),
                "format": c.get("format", ""),
                "description": c.get("description", ""),
                "priority": int(c.get("priority", 0)),
            }
        )
    return out


def _cell(typ: str, value: Any, now: float) -> Any:
    if typ == "date":
        return age(value, now)
    if typ == "integer":
        return (
            int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
        )
    if typ == "number":
        return value if isinstance(value, int | float) and not isinstance(value, bool) else None
    if typ == "boolean":
        return value if isinstance(value, bool) else None
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"))


def cells(rt: ResourceType, obj: dict[str, Any], now: float) -> list[Any]:
    """One row's cells for ``obj`` (``None`` prints as ``<none>``)."""
    if (rt.group, rt.plural) in _BUILTIN:
        return _BUILTIN[(rt.group, rt.plural)][1](obj, now)
    row: list[Any] = [_meta(obj).get("name")]
    if not rt.printer_columns:
        return [*row, age(_meta(obj).get("creationTimestamp"), now)]
    for c in rt.printer_columns:
        try:
            found = find(str(c.get("jsonPath", "")), obj)
        except JSONPathError:
            found = []
        row.append(_cell(c.get("type", "string"), found[0], now) if found else None)
    return row


def row_object(obj: dict[str, Any], include: str) -> dict[str, Any] | None:
    if include == "None":
        return None
    if include == "Object":
        return obj
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata") or {},
    }


def table(
    rt: ResourceType,
    objs: Iterable[dict[str, Any]],
    *,
    now: float,
    resource_version: str,
    include: str = "Metadata",
    headers: bool = True,
    continue_token: str = "",
    remaining: int | None = None,
) -> dict[str, Any]:
    """A ``meta.k8s.io/v1`` Table of ``objs``."""
    rows = []
    for o in objs:
        row: dict[str, Any] = {"cells": cells(rt, o, now)}
        ro = row_object(o, include)
        if ro is not None:
            row["object"] = ro
        rows.append(row)
    meta: dict[str, Any] = {"resourceVersion": resource_version}
    if continue_token:
        meta["continue"] = continue_token
    if remaining is not None:
        meta["remainingItemCount"] = remaining
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": meta,
        "columnDefinitions": columns(rt) if headers else [],
        "rows": rows,
    }


def utc_now_text(wall: float) -> str:
    """A timestamp as Kubernetes writes one (RFC 3339, seconds, ``Z``)."""
    return datetime.fromtimestamp(wall, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
