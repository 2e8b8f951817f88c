"""``modelscale status``: every model at a glance, as a table.

One row per InferenceService (and per ModelScaler whose InferenceService is missing), computed by
the dashboard's overview (``autoscaler.dashboard.view``), so the terminal and the web page agree.
Read from the API, the table shows what the objects say: the live revision, replicas ready /
desired, the target and keep-alive in force, the update mode and when the tuner last changed
something. With ``--url`` it reads a running dashboard's ``/api/v1/overview`` instead and adds
what only a running controller knows: request rate, the latency percentile against the objective
(green, amber, red) and cold starts in the last hour (scale-ups from zero where the dashboard
cannot see requests wait: its column says which). A URL copied from the browser works too: its
``#/...`` fragment is dropped.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from typing import Any, cast

from autoscaler.dashboard import view


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--kubeconfig",
        help="kubeconfig file (default: $KUBECONFIG, .data/kubeconfig, ~/.kube/config)",
    )
    parser.add_argument("-n", "--namespace", help="one namespace only (default: all)")
    parser.add_argument(
        "--url",
        help="a running dashboard (e.g. http://127.0.0.1:PORT/dashboard/, or a page's URL from "
        "the browser): read its overview API, with request rates, latency and cold starts",
    )


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
LIVE_COLUMNS = (
    "NAMESPACE",
    "MODEL",
    "REVISION",
    "REPLICAS",
    "REQ/S",
    "LATENCY",
    "COLD STARTS 1H",
    "TARGET",
    "KEEP-ALIVE",
    "MODE",
)
LIGHT_STYLE = {"green": "green", "amber": "yellow", "red": "red", "unknown": "dim"}


def _num(x: object, fmt: str = "g") -> str:
    return format(x, fmt) if isinstance(x, int | float) and not isinstance(x, bool) else "-"


def _mode(row: Mapping[str, Any]) -> str:
    mode = str(row.get("mode") or "-")
    return mode if row.get("hasInferenceService", True) else mode + " (no InferenceService)"


def _replicas(row: Mapping[str, Any]) -> str:
    if not row.get("revision"):
        return "-"
    return f"{row.get('replicasActual', 0)}/{row.get('replicasDesired', 0)}"


def format_row(row: Mapping[str, Any]) -> tuple[str, ...]:
    """An overview row (``view.overview_row``) as the API-read table's cells."""
    return (
        str(row["namespace"]), str(row["model"]), str(row.get("revision") or "-"), _replicas(row),
        _num(row.get("target")), str(row.get("keepAlive") or "-"), _mode(row),
        str(row.get("lastChange") or "-"),
    )  # fmt: skip


def format_live_row(row: Mapping[str, Any]) -> tuple[str, ...]:
    """An overview row as the ``--url`` table's cells (latency cell with rich markup)."""
    latency = (
        f"{_num(row.get('latencyMs'), '.0f')}/{_num(row.get('objectiveMs'), '.0f')} ms "
        f"p{_num(row.get('latencyPercentile'), 'g')}"
    )
    style = LIGHT_STYLE.get(str(row.get("latencyState")), "dim")
    return (
        str(row["namespace"]), str(row["model"]), str(row.get("revision") or "-"), _replicas(row),
        _num(row.get("requestRatePerS"), ".2f"), f"[{style}]●[/{style}] {latency}",
        str(row.get("coldStartsLastHour", 0)), _num(row.get("target")),
        str(row.get("keepAlive") or "-"), _mode(row),
    )  # fmt: skip


def rows(
    isvcs: list[dict[str, Any]], scalers: list[dict[str, Any]], revisions: list[dict[str, Any]]
) -> list[tuple[str, ...]]:
    """The API-read table's rows, sorted by namespace and model."""
    world = view.World(0.0, isvcs, scalers, revisions)
    return [format_row(r) for r in view.overview(world)["models"]]


def fetch_overview(url: str, timeout_s: float = 10.0) -> list[dict[str, Any]]:
    """The models of a running dashboard's overview API (``url`` is the dashboard's page)."""
    page = urllib.parse.urldefrag(url).url  # a browser URL's "#/models/..." is the page's own
    api = page.split("?", 1)[0].rstrip("/") + "/api/v1/overview"
    with urllib.request.urlopen(api, timeout=timeout_s) as resp:
        body = resp.read()
    try:
        models = json.loads(body)["models"]
    except (ValueError, KeyError, TypeError):
        raise ValueError(f"{api} is not a dashboard's overview API") from None
    if not isinstance(models, list):
        raise ValueError(f"{api} is not a dashboard's overview API")
    return models


def print_table(columns: Sequence[str], found: Sequence[tuple[str, ...]], markup: bool) -> None:
    from rich.console import Console
    from rich.table import Table

    out = sys.stdout
    console = Console(file=out, width=None if out.isatty() else 200)
    if not found:
        console.print("no models (no InferenceService and no ModelScaler)")
        return
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in columns:
        table.add_column(column, no_wrap=True)
    for row in found:
        table.add_row(*row)
    console.print(table, markup=markup)


def run(args: argparse.Namespace) -> int:
    if args.url:
        try:
            models = fetch_overview(args.url)
        except (urllib.error.URLError, OSError, ValueError, KeyError) as exc:
            print(f"modelscale status: reading {args.url}: {exc}", file=sys.stderr)
            return 1
        if args.namespace:
            models = [m for m in models if m.get("namespace") == args.namespace]
        columns: tuple[str, ...] = LIVE_COLUMNS
        if any(m.get("coldStartsCount", "waited") != "waited" for m in models):
            columns = tuple("FROM ZERO 1H" if c == "COLD STARTS 1H" else c for c in LIVE_COLUMNS)
        print_table(columns, [format_live_row(m) for m in models], markup=True)
        return 0

    from kubernetes import client
    from kubernetes.client.rest import ApiException

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
    print_table(COLUMNS, rows(isvcs, scalers, revisions), markup=False)
    return 0
