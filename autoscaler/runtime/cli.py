"""``modelscale up``: one-machine mode in the foreground until Ctrl-C."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from autoscaler.runtime import eventloop


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path(".data"),
        help="objects, kubeconfig and logs (default .data)",
    )
    parser.add_argument(
        "--api-port", type=int, default=0, help="API server port on 127.0.0.1 (default: a free one)"
    )
    parser.add_argument(
        "--ingress-port", type=int, default=8080, help="ingress port on 127.0.0.1 (default 8080)"
    )
    parser.add_argument(
        "--admin-port",
        type=int,
        default=0,
        help="port of /metrics, /sd/replicas and the dashboard (/dashboard/) (default: a free one)",
    )
    parser.add_argument(
        "--max-replicas",
        type=int,
        default=None,
        help="machine-wide replica cap (default: from free memory)",
    )
    parser.add_argument(
        "-f",
        "--filename",
        action="append",
        default=[],
        type=Path,
        help="manifests to apply once up (repeatable)",
    )
    parser.add_argument(
        "--broker-port",
        type=int,
        default=0,
        help="CloudEvents broker ingress port on 127.0.0.1 (default: a free one)",
    )
    parser.add_argument(
        "--no-eventing",
        action="store_true",
        help="run without the Broker/Trigger reconciler and the broker ingress",
    )
    parser.add_argument(
        "--sink",
        help="where the tuner sends modelscale.scaling.changed CloudEvents (default: nowhere)",
    )
    parser.add_argument(
        "--autoscaler-config",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a Knative config-autoscaler setting for every revision, e.g. "
        "scale-to-zero-grace-period=6s or stable-window=30s (repeatable)",
    )
    parser.add_argument(
        "--loop",
        choices=eventloop.CHOICES,
        default="auto",
        help="event loop: uvloop when installed (auto, the default) or the standard asyncio loop",
    )
    parser.add_argument("--verbose", "-v", action="store_true", help="log every decision")


def parse_autoscaler_config(items: list[str]) -> dict[str, str]:
    """``KEY=VALUE`` settings as ``config-autoscaler`` data, checked as Knative checks the
    ConfigMap: a key the runtime does not model or a bad value raises ``ValueError`` naming it."""
    from autoscaler.kpa.settings import CONFIG_KEYS, AutoscalerConfig, InvalidConfig

    data: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key:
            raise ValueError(f"--autoscaler-config {item!r}: not KEY=VALUE")
        if key not in CONFIG_KEYS:
            raise ValueError(
                f"--autoscaler-config {key}: not a config-autoscaler key this runtime supports "
                f"(supported: {', '.join(CONFIG_KEYS)})"
            )
        data[key] = value
    try:
        AutoscalerConfig.from_configmap(data)
    except InvalidConfig as exc:
        raise ValueError(f"--autoscaler-config {exc}") from None
    return data


def run(args: argparse.Namespace) -> int:
    import asyncio
    import logging
    import signal

    from autoscaler.apiserver.server import DataDirInUse
    from autoscaler.runtime.onemachine import OneMachine, OneMachineSettings

    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for path in args.filename:
        if not path.exists():
            print(f"modelscale up: {path}: no such file")
            return 2
    try:
        autoscaler_config = parse_autoscaler_config(args.autoscaler_config)
    except ValueError as exc:
        print(f"modelscale up: {exc}", file=sys.stderr)
        return 2

    async def main() -> int:
        settings = OneMachineSettings(
            data_dir=args.data_dir.resolve(),
            api_port=args.api_port,
            ingress_port=args.ingress_port,
            admin_port=args.admin_port,
            max_replicas=args.max_replicas,
            eventing=not args.no_eventing,
            broker_port=args.broker_port,
            tuner_sink_url=args.sink,
            autoscaler_config=autoscaler_config,
        )
        machine = OneMachine(settings)
        try:
            await machine.start()
        except (OSError, DataDirInUse) as exc:  # a port in use, another instance on the dir
            print(f"modelscale up: {start_error(exc, args)}", file=sys.stderr, flush=True)
            return 1
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        on_signal = StopOnSignal(stop)  # a second Ctrl-C exits at once
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, on_signal, sig)
        try:
            for path in args.filename:
                rc = await apply(machine.kubeconfig_path, path)
                if rc != 0:
                    return rc
            print(f"API server   {machine.apiserver.url}")
            print(
                f"kubeconfig   {machine.kubeconfig_path}   (export KUBECONFIG={machine.kubeconfig_path})"
            )
            print(
                f"ingress      {machine.ingress_url}   (curl -H 'Host: <host of status.url>' {machine.ingress_url}/v1/models/<model>:predict)"
            )
            print(
                f"metrics      {machine.admin_url}/metrics   replicas: {machine.admin_url}/sd/replicas"
            )
            if machine.eventing is not None:
                print(
                    f"broker       {machine.eventing.url}/<namespace>/<broker>   (CloudEvents, binary or structured)"
                )
            dashboard = getattr(machine, "dashboard_url", "")
            if dashboard:
                print(f"dashboard    {dashboard}")
            print("Ctrl-C stops everything.", flush=True)
            await stop.wait()
            return 0
        finally:
            print("stopping...", flush=True)
            await machine.stop()

    return eventloop.run(main(), args.loop)


class StopOnSignal:
    """The first SIGINT or SIGTERM stops everything in order; a second one exits at once, the
    child processes killed first, with the shell's code for the signal (130 for SIGINT)."""

    def __init__(
        self,
        stop: Any,
        kill: Callable[[], None] | None = None,
        exit: Callable[[int], object] = os._exit,
    ) -> None:
        self.stop = stop  # an asyncio.Event
        self.kill = kill or kill_children
        self.exit = exit

    def __call__(self, sig: int) -> None:
        if not self.stop.is_set():
            self.stop.set()
            return
        print("modelscale up: second signal, exiting now", file=sys.stderr, flush=True)
        self.kill()
        self.exit(128 + sig)


def kill_children() -> None:
    """SIGKILL every process this one started (the zygote, replicas, local functions)."""
    import psutil

    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            child.kill()


def start_error(exc: Exception, args: argparse.Namespace) -> str:
    """One line for a failed start: a port in use is named with the option that chose it."""
    import errno
    import re

    match = re.search(r"(\d+)\)?: address already in use", str(exc), re.IGNORECASE)
    if not isinstance(exc, OSError) or exc.errno != errno.EADDRINUSE or match is None:
        return str(exc)
    port = int(match[1])
    options = [
        ("--api-port", args.api_port),
        ("--ingress-port", args.ingress_port),
        ("--admin-port", args.admin_port),
        ("--broker-port", args.broker_port),
    ]
    named = [option for option, value in options if value == port]
    return f"port {port} on 127.0.0.1 is in use" + (f" ({named[0]})" if named else "")


async def apply(kubeconfig: Path, path: Path) -> int:
    """``kubectl apply -f`` with the one-machine kubeconfig; kubectl prints what it did."""
    import asyncio

    proc = await asyncio.create_subprocess_exec(
        "kubectl", "--kubeconfig", str(kubeconfig), "apply", "-f", str(path)
    )
    return await proc.wait()
