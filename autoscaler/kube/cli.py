"""``modelscale controller``: run the tuner controller against a Kubernetes API.

In a cluster it uses the pod's service account; elsewhere a kubeconfig (``--kubeconfig``,
``$KUBECONFIG``, ``.data/kubeconfig``, ``~/.kube/config``). Several replicas may run: the Lease
``modelscale-tuner`` in ``--namespace`` picks the one that acts. Logs are JSON lines on stderr;
``/metrics``, ``/healthz`` and ``/readyz`` are served on ``--metrics-bind``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from autoscaler.metrics import MetricsConfig

    from .settings import ControllerSettings


# The same as settings.DEFAULT_CONFIG_MAP and DEFAULT_METRICS_BIND; repeated so that
# `modelscale --help` does not import the Kubernetes client.
DEFAULT_CONFIG_MAP = "modelscale-tuner"
DEFAULT_METRICS_BIND = "127.0.0.1:9095"
# The keys of autoscaler.metrics.names.PRESETS (a test keeps them equal).
METRIC_NAME_PRESETS = ("knative-opencensus", "knative-opentelemetry")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--kubeconfig",
        help="kubeconfig file (default: $KUBECONFIG, .data/kubeconfig, ~/.kube/config, in-cluster)",
    )
    parser.add_argument(
        "--namespace", help="the controller's namespace: its Lease and ConfigMap (default: own)"
    )
    parser.add_argument(
        "--watch-namespace", help="tune ModelScalers of this namespace only (default: all)"
    )
    parser.add_argument(
        "--metrics-source", choices=("direct", "prometheus"), default="direct",
        help="where observations come from (default: direct scrape of the replicas)",
    )  # fmt: skip
    parser.add_argument(
        "--prometheus-url", help="Prometheus HTTP API, for --metrics-source prometheus"
    )
    parser.add_argument(
        "--concurrency-sample-period",
        help="direct scrape: seconds between samples of each replica's concurrency gauge between "
        "ticks, for a time-weighted concurrency (default 2; 0: off, concurrency from completions)",
    )
    parser.add_argument(
        "--metric-names", choices=METRIC_NAME_PRESETS, default=METRIC_NAME_PRESETS[0],
        help="Knative's metric names: <= 1.18 (opencensus, the default) or >= 1.19 (opentelemetry)",
    )  # fmt: skip
    parser.add_argument(
        "--config-map",
        default=DEFAULT_CONFIG_MAP,
        help="the tuner ConfigMap (default: %(default)s)",
    )
    parser.add_argument("--sink", help="CloudEvents sink URL for modelscale.scaling.changed")
    parser.add_argument(
        "--metrics-bind", default=DEFAULT_METRICS_BIND,
        help="HOST:PORT of /metrics, /healthz, /readyz (default: %(default)s)",
    )  # fmt: skip
    parser.add_argument("--identity", help="leader-election identity (default: host name and pid)")
    parser.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING"))


def run(args: argparse.Namespace) -> int:
    import asyncio
    import logging

    from autoscaler.metrics import MetricsSettingsError, parse_metrics_config

    from . import jsonlog
    from .kubeconfig import NoKubeconfig, api_client, own_namespace
    from .settings import ControllerSettings, ControllerSettingsError, parse_bind, parse_sink

    jsonlog.configure(getattr(logging, args.log_level))
    raw_metrics = {"source": args.metrics_source, "metric_names": args.metric_names}
    if args.prometheus_url:
        raw_metrics["prometheus_url"] = args.prometheus_url
    if args.concurrency_sample_period is not None:
        raw_metrics["concurrency_sample_period_s"] = args.concurrency_sample_period
    try:
        metrics_config = parse_metrics_config(raw_metrics)
        host, port = parse_bind(args.metrics_bind)
        settings = ControllerSettings(
            namespace=args.namespace or own_namespace(),
            watch_namespace=args.watch_namespace,
            config_map=args.config_map,
            identity=args.identity or f"{socket.gethostname()}-{os.getpid()}",
            sink_url=parse_sink(args.sink),
            metrics_host=host,
            metrics_port=port,
            resolve_pods=metrics_config.source == "direct",
        )
        client = api_client(args.kubeconfig)
    except (MetricsSettingsError, ControllerSettingsError, NoKubeconfig) as exc:
        print(f"modelscale controller: {exc}", file=sys.stderr)
        return 2
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(client, settings, metrics_config))
    return 0


async def _serve(client: Any, settings: ControllerSettings, metrics_config: MetricsConfig) -> None:
    import asyncio
    import logging
    import signal

    from autoscaler.clock import SystemClock
    from autoscaler.dashboard import ControllerSource, mount_dashboard
    from autoscaler.metrics import make_source

    from .controller import Controller
    from .endpoints import PodEndpoints
    from .leader import ElectionConfig, LeaderElector
    from .telemetry import start_http

    log = logging.getLogger("autoscaler.kube.cli")
    clock = SystemClock()
    source = make_source(metrics_config)
    election = ElectionConfig(settings.namespace, settings.lease_name, settings.identity)
    elector = LeaderElector(client, election, clock)
    endpoints = (
        PodEndpoints(client, namespace=settings.watch_namespace) if settings.resolve_pods else None
    )
    ctl = Controller(client, source, settings, clock, elector=elector, endpoints=endpoints)
    dashboard = ControllerSource(ctl, clock=clock)
    runner, port = await start_http(
        ctl.metrics,
        ctl.ready,
        settings.metrics_host,
        settings.metrics_port,
        mount=lambda app: mount_dashboard(app, dashboard, clock=clock),
    )
    log.info(
        "controller started",
        extra={"fields": {"metrics": f"{settings.metrics_host}:{port}",
                          "identity": settings.identity, "namespace": settings.namespace}},
    )  # fmt: skip
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    task = loop.create_task(ctl.run())
    try:
        await stop.wait()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await ctl.stop(release=True)
        await source.close()
        await runner.cleanup()
        log.info("controller stopped")
