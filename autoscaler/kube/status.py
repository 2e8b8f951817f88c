"""``modelscale status``: every model at a glance, as a table.

One row per serving revision of each InferenceService (a canary's two revisions are two rows,
oldest first), and one per ModelScaler whose InferenceService is missing, computed by the
dashboard's overview (``autoscaler.dashboard.view``), so the terminal and the web page agree.
Read from the API, the table shows what the objects say: the revision and its share of the
traffic, its replicas ready / desired (a revision that takes no traffic, one that failed, is
not shown or counted), the target and keep-alive in force on it, the update mode, whether the
model meets its latency objective (the ObjectiveMet condition's reason: Met, Missed,
Unattainable, or why nothing was judged; on the model's first row) and when the tuner last
changed something on it. With ``--url`` it reads a running dashboard's
``/api/v1/overview`` instead and adds what only a running controller knows, per model on its
first row: request rate, the latency percentile against the objective (green, amber, red) and
cold starts in the last hour (scale-ups from zero where the dashboard cannot see requests wait:
its column says which). A URL copied from the browser works too: its
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
    "TRAFFIC",
    "REPLICAS",
    "TARGET",
    "KEEP-ALIVE",
    "MODE",
    "OBJECTIVE",
    "LAST CHANGE",
)
LIVE_COLUMNS = (
    "NAMESPACE",
    "MODEL",
    "REVISION",
    "TRAFFIC",
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


def _traffic(rev: Mapping[str, Any]) -> str:
    percent = rev.get("percent")
    return f"{percent}%" if isinstance(percent, int) and not isinstance(percent, bool) else "-"


def _revisions(row: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The row's serving revisions, each with its own figures; a row without them (no revision
    serves, or a dashboard from before they were given) as one, with the model's figures."""
    revisions = row.get("revisions")
    if isinstance(revisions, list) and revisions:
        return [r for r in revisions if isinstance(r, Mapping)]
    return [{**row, "percent": None}]


def _objective(row: Mapping[str, Any]) -> str:
    """The ObjectiveMet condition's reason (``Met``, ``Missed``, ``Unattainable``, or why
    nothing was judged), "-" while the status has none."""
    cond = row.get("objective")
    return str(cond.get("reason") or "-") if isinstance(cond, Mapping) else "-"


def format_rows(row: Mapping[str, Any]) -> list[tuple[str, ...]]:
    """An overview row (``view.overview_row``) as the API-read table's rows: one per serving
    revision, with its traffic share, replicas, and the target, keep-alive and last change of
    its own; whether the objective is met is the model's (its condition names each revision),
    on the first row."""
    return [
        (
            *_revision_cells(row, rev),
            _num(rev.get("target")),
            str(rev.get("keepAlive") or "-"),
            _mode(row),
            _objective(row) if i == 0 else "",
            str(rev.get("lastChange") or "-"),
        )
        for i, rev in enumerate(_revisions(row))
    ]


def _revision_cells(row: Mapping[str, Any], rev: Mapping[str, Any]) -> tuple[str, ...]:
    """The first cells of a revision's row: namespace, model, revision, traffic, replicas."""
    return (
        str(row["namespace"]),
        str(row["model"]),
        str(rev.get("revision") or "-"),
        _traffic(rev),
        _replicas(rev),
    )


def format_live_rows(row: Mapping[str, Any]) -> list[tuple[str, ...]]:
    """An overview row as the ``--url`` table's rows (latency cell with rich markup): one per
    serving revision; the model's request rate, latency and cold starts on the first only."""
    latency = (
        f"{_num(row.get('latencyMs'), '.0f')}/{_num(row.get('objectiveMs'), '.0f')} ms "
        f"p{_num(row.get('latencyPercentile'), 'g')}"
    )
    style = LIGHT_STYLE.get(str(row.get("latencyState")), "dim")
    model_wide = (
        _num(row.get("requestRatePerS"), ".2f"),
        f"[{style}]●[/{style}] {latency}",
        str(row.get("coldStartsLastHour", 0)),
    )
    return [
        (
            *_revision_cells(row, rev),
            *(model_wide if i == 0 else ("", "", "")),
            _num(rev.get("target")),
            str(rev.get("keepAlive") or "-"),
            _mode(row),
        )
        for i, rev in enumerate(_revisions(row))
    ]


def rows(
    isvcs: list[dict[str, Any]], scalers: list[dict[str, Any]], revisions: list[dict[str, Any]]
) -> list[tuple[str, ...]]:
    """The API-read table's rows, sorted by namespace and model (a model's serving revisions
    oldest first)."""
    world = view.World(0.0, isvcs, scalers, revisions)
    return [r for m in view.overview(world)["models"] for r in format_rows(m)]


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
        print_table(columns, [r for m in models for r in format_live_rows(m)], markup=True)
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
