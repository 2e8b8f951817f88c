"""``modelscale explain <model>``: why a model's target, keep-alive and pre-warm are what they are.

Reads the ModelScaler that governs the InferenceService ``<model>`` and prints its status:
whether the latency objective is met (the ObjectiveMet condition), the values in force, the
recommendation and the reason behind each stage of the decision, what was last applied and
when, and the conditions. While several revisions serve (a canary), each
revision the tuner tunes gets its own block: traffic share, ready replicas, values in force,
recommendation and reasons, and what was last applied to it. Plain lines, no markup, so the
output pipes well.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from typing import Any, cast

from autoscaler.runtime.reconcile import names


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="the InferenceService's name")
    parser.add_argument("-n", "--namespace", default="default", help="(default: %(default)s)")
    parser.add_argument(
        "--kubeconfig",
        help="kubeconfig file (default: $KUBECONFIG, .data/kubeconfig, ~/.kube/config)",
    )


def find_scaler(scalers: list[dict[str, Any]], model: str) -> dict[str, Any] | None:
    """The ModelScaler whose targetRef names ``model`` (one named ``model`` first)."""
    governing = [
        s for s in scalers if ((s.get("spec") or {}).get("targetRef") or {}).get("name") == model
    ]
    governing.sort(key=lambda s: (s["metadata"]["name"] != model, s["metadata"]["name"]))
    return governing[0] if governing else None


def render(
    model: str, namespace: str, scaler: Mapping[str, Any], isvc: Mapping[str, Any] | None
) -> list[str]:
    """The explanation as lines, from a ModelScaler with a status.

    With one revision serving: the values in force, the recommendation and why, what was last
    applied. With several (a canary, a rollout), the same for each revision the tuner tunes,
    from ``status.revisions``, each with its traffic share and ready replicas."""
    status = scaler.get("status") or {}
    name = scaler["metadata"]["name"]
    lines = [f"model {namespace}/{model} (ModelScaler {name}, mode {status.get('mode', '?')})"]
    if isvc is None:
        lines.append(f"  the InferenceService {namespace}/{model} does not exist")
    lines += _objective(scaler)
    tuned = [
        r
        for r in status.get("revisions") or []
        if isinstance(r, Mapping) and r.get("recommendation")
    ]
    if len(tuned) > 1:
        lines += _per_revision(status, tuned)
    else:
        lines += _one_revision(status)
    conditions = status.get("conditions") or []
    if conditions:
        lines.append("  conditions:")
        for c in conditions:
            message = f": {c['message']}" if c.get("message") else ""
            lines.append(f"    {c['type']}={c['status']} {c.get('reason', '')}{message}")
    return lines


_VERDICT = {"True": "met", "False": "NOT MET", "Unknown": "not judged"}


def _objective(scaler: Mapping[str, Any]) -> list[str]:
    """One line: the objective, and whether the serving revisions meet it (ObjectiveMet)."""
    cond = names.get_condition(scaler, "ObjectiveMet")
    if cond is None:
        return []
    objective = (scaler.get("spec") or {}).get("objective") or {}
    percentile, latency = objective.get("percentile"), objective.get("latencyMs")
    if not isinstance(percentile, int | float):
        percentile = 95  # the CRD's default
    wanted = f"p{percentile:g} {latency:g} ms" if isinstance(latency, int | float) else "?"
    verdict = _VERDICT.get(str(cond.get("status")), str(cond.get("status")))
    message = f": {cond['message']}" if cond.get("message") else ""
    return [f"  objective   {wanted} {verdict} ({cond.get('reason', '')}){message}"]


def _one_revision(status: Mapping[str, Any]) -> list[str]:
    lines = []
    rec = status.get("recommendation") or {}
    if "target" in status:
        lines.append(
            f"  in force    target {status['target']:g}, keep-alive {status.get('keepAlive', '?')}"
            f", ready replicas {status.get('replicas', '?')}"
        )
    if rec:
        lines.append(
            f"  recommended on revision {rec.get('revision')} ({rec.get('time', 'no time')}):"
        )
        lines += _recommendation(rec, "  ")
    else:
        lines.append("  no recommendation (see the conditions)")
    applied = status.get("applied")
    if applied:
        lines.append(
            f"  last applied to {applied.get('revision')} at {applied.get('time')}: "
            + _annotations(applied)
        )
    else:
        lines.append("  nothing applied yet")
    return lines


def _per_revision(status: Mapping[str, Any], tuned: list[Mapping[str, Any]]) -> list[str]:
    """One block per tuned revision, oldest first (the live one, the latest, last)."""
    shares = ", ".join(f"{r.get('name')} {_percent(r)}" for r in tuned)
    lines = [f"  {len(tuned)} revisions serve ({shares}), each tuned on its own"]
    time = (status.get("recommendation") or {}).get("time", "no time")
    for i, entry in enumerate(tuned):
        latest = " (latest)" if i == len(tuned) - 1 else ""
        rec = entry.get("recommendation") or {}
        lines.append(f"  revision {entry.get('name')}{latest}: {_percent(entry)} of the traffic")
        if "target" in entry:
            lines.append(
                f"    in force    target {entry['target']:g}, keep-alive "
                f"{entry.get('keepAlive', '?')}, ready replicas {entry.get('readyReplicas', '?')}"
            )
        lines.append(f"    recommended ({time}):")
        lines += _recommendation(rec, "    ")
        applied = entry.get("applied")
        if applied:
            lines.append(f"    last applied at {applied.get('time')}: {_annotations(applied)}")
        else:
            lines.append("    nothing applied to it yet")
    last = status.get("applied")
    if last:
        lines.append(f"  last write: {last.get('revision')} at {last.get('time')}")
    return lines


def _percent(entry: Mapping[str, Any]) -> str:
    percent = entry.get("percent")
    return f"{percent}%" if isinstance(percent, int) else "?%"


def _annotations(applied: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted((applied.get("annotations") or {}).items()))


def _recommendation(rec: Mapping[str, Any], indent: str) -> list[str]:
    """A recommendation's values and reasons, indented under its heading."""
    prewarm = f", pre-warm at {rec['prewarmAt']}" if rec.get("prewarmAt") else ""
    lines = [
        f"{indent}  target      {rec.get('target')}  (the KPA aims at target x utilization per replica)",
        f"{indent}  keep-alive  {rec.get('keepAliveSeconds')} s after the last request "
        f"(scale-to-zero-pod-retention-period {rec.get('retentionSeconds')}s"
        + (
            f", stable window {rec['stableWindowSeconds']}s"
            if rec.get("stableWindowSeconds") is not None
            else ""
        )
        + ")",
        f"{indent}  pre-warm    min-scale {rec.get('minScale')}{prewarm}"
        + (f" (idle-time policy: {rec['windowKind']})" if rec.get("windowKind") else ""),
        f"{indent}  confidence  {float(rec.get('confidence', 0)):.0%}"
        + ("  - FAIL-STATIC: holding the last applied values" if rec.get("failStatic") else ""),
        f"{indent}why:",
    ]
    lines += [f"{indent}  - {r}" for r in rec.get("reasons") or []]
    return lines


def run(args: argparse.Namespace) -> int:
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    from .kubeconfig import NoKubeconfig, api_client

    try:
        api = client.CustomObjectsApi(api_client(args.kubeconfig))
    except NoKubeconfig as exc:
        print(f"modelscale explain: {exc}", file=sys.stderr)
        return 2
    ns, model = args.namespace, args.model
    try:
        listing = api.list_namespaced_custom_object(
            "modelscale.dev", "v1alpha1", ns, "modelscalers"
        )
        scalers = cast(dict[str, Any], listing)["items"]
        isvc: dict[str, Any] | None
        try:
            isvc = cast(
                dict[str, Any],
                api.get_namespaced_custom_object(
                    "serving.kserve.io", "v1beta1", ns, "inferenceservices", model
                ),
            )
        except ApiException as exc:
            if exc.status != 404:
                raise
            isvc = None
    except ApiException as exc:
        print(f"modelscale explain: the API answered {exc.status} {exc.reason}", file=sys.stderr)
        return 1
    scaler = find_scaler(scalers, model)
    if scaler is None and isvc is None:
        print(
            f"no InferenceService or ModelScaler for model {model!r} in namespace {ns!r}",
            file=sys.stderr,
        )
        return 1
    if scaler is None:
        print(
            f"InferenceService {ns}/{model} has no ModelScaler: Knative's defaults apply "
            f"(create a ModelScaler with spec.targetRef.name: {model} to tune it)",
            file=sys.stderr,
        )
        return 1
    if not scaler.get("status"):
        print(
            f"ModelScaler {ns}/{scaler['metadata']['name']} has no status yet: "
            "is the controller (modelscale controller, or modelscale up) running?",
            file=sys.stderr,
        )
        return 1
    print("\n".join(render(model, ns, scaler, isvc)))
    return 0
