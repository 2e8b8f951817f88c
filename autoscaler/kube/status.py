"""``modelscale status``: every model at a glance, as a table.

One row per InferenceService (and per ModelScaler whose InferenceService is missing): the live
revision, replicas ready/desired, the target and keep-alive in force, the update mode and when
the tuner last changed something.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from typing import Any, cast


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--kubeconfig",
        help="kubeconfig file (default: $KUBECONFIG, .data/kubeconfig, ~/.kube/config)",
    )
    parser.add_argument("-n", "--namespace", help="one namespace only (default: all)")


COLUMNS = (
    "NAMESPACE",
    "MODEL",
    "REVISION",
    "REPLICAS",
    "TARGET",
    "KEEP-ALIVE",
    "MODE",
    "LAST CHANGE",
)


def _key(obj: Mapping[str, Any]) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return (meta.get("namespace") or "default", meta.get("name") or "")


def rows(
    isvcs: list[dict[str, Any]], scalers: list[dict[str, Any]], revisions: list[dict[str, Any]]
) -> list[tuple[str, ...]]:
    """The table's rows, sorted by namespace and model."""
    by_model: dict[tuple[str, str], dict[str, Any]] = {}
    for s in scalers:
        target = ((s.get("spec") or {}).get("targetRef") or {}).get("name") or ""
        by_model.setdefault((_key(s)[0], target), s)
    revs = {_key(r): r for r in revisions}
    models = sorted({_key(i) for i in isvcs} | set(by_model))
    isvc_by_key = {_key(i): i for i in isvcs}
    out: list[tuple[str, ...]] = []
    for ns, model in models:
        isvc = isvc_by_key.get((ns, model))
        scaler = by_model.get((ns, model))
        status = (scaler or {}).get("status") or {}
        pred = (((isvc or {}).get("status") or {}).get("components") or {}).get("predictor") or {}
        revision = (
            pred.get("latestReadyRevision")
            or (status.get("recommendation") or {}).get("revision")
            or "-"
        )
        rev_status = (revs.get((ns, revision)) or {}).get("status") or {}
        if rev_status:
            replicas = (
                f"{rev_status.get('actualReplicas', 0)}/{rev_status.get('desiredReplicas', 0)}"
            )
        else:
            replicas = "-"
        target = status.get("target")
        mode = status.get("mode") or ("untuned" if scaler is None else "pending")
        if isvc is None:
            mode += " (no InferenceService)"
        out.append((
            ns, model, revision, replicas,
            f"{target:g}" if isinstance(target, int | float) else "-",
            status.get("keepAlive") or "-", mode,
            (status.get("applied") or {}).get("time") or "-",
        ))  # fmt: skip
    return out


def run(args: argparse.Namespace) -> int:
    from kubernetes import client
    from kubernetes.client.rest import ApiException
    from rich.console import Console
    from rich.table import Table

    from .kubeconfig import NoKubeconfig, api_client

    try:
        api = client.CustomObjectsApi(api_client(args.kubeconfig))
    except NoKubeconfig as exc:
        print(f"modelscale status: {exc}", file=sys.stderr)
        return 2

    def items(group: str, version: str, plural: str) -> list[dict[str, Any]]:
        if args.namespace:
            listing = api.list_namespaced_custom_object(group, version, args.namespace, plural)
        else:
            listing = api.list_cluster_custom_object(group, version, plural)
        return list(cast(dict[str, Any], listing)["items"])

    try:
        isvcs = items("serving.kserve.io", "v1beta1", "inferenceservices")
        scalers = items("modelscale.dev", "v1alpha1", "modelscalers")
        revisions = items("serving.knative.dev", "v1", "revisions")
    except ApiException as exc:
        print(f"modelscale status: the API answered {exc.status} {exc.reason}", file=sys.stderr)
        return 1
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in COLUMNS:
        table.add_column(column, no_wrap=True)
    found = rows(isvcs, scalers, revisions)
    for row in found:
        table.add_row(*row)
    out = sys.stdout
    console = Console(file=out, width=None if out.isatty() else 200)
    if not found:
        console.print("no models (no InferenceService and no ModelScaler)")
        return 0
    console.print(table)
    return 0
