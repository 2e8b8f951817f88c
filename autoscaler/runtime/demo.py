"""``modelscale demo``: one-machine mode, the example models deployed with kubectl, a burst of
traffic, and a live table of replicas going 0 -> N -> 0.

It writes the manifests it applies to ``<data-dir>/demo/`` so they can be read and reused, and
shortens Knative's windows with Knative's own annotations (window 6 s, grace 6 s) so the whole
demo takes about a minute and a half.
"""

from __future__ import annotations

import argparse
from pathlib import Path

GPU_CLASS = "autoscaler.examples.capacity:CapacityLimitedModel"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path(".data"),
        help="objects, models, kubeconfig and logs (default .data)",
    )
    parser.add_argument(
        "--ingress-port",
        type=int,
        default=0,
        help="ingress port on 127.0.0.1 (default: a free one)",
    )
    parser.add_argument(
        "--concurrency", type=int, default=8, help="concurrent clients in the burst (default 8)"
    )
    parser.add_argument(
        "--burst-seconds", type=float, default=20.0, help="how long the burst lasts (default 20)"
    )
    parser.add_argument("--max-replicas", type=int, default=None, help="machine-wide replica cap")


def manifests(iris_dir: Path) -> str:
    window = {
        "autoscaling.knative.dev/window": "6s",
    }
    return f"""\
# The demo's models: an sklearn iris classifier and a capacity-limited model (4 parallel slots,
# 200 ms per request), both scaling to zero. Applied with kubectl against one-machine mode.
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: iris
  namespace: default
  annotations: {window}
spec:
  predictor:
    minReplicas: 0
    sklearn:
      storageUri: file://{iris_dir}
---
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: gpu
  namespace: default
  annotations: {{"autoscaling.knative.dev/window": "6s", "autoscaling.knative.dev/target": "4"}}
spec:
  predictor:
    minReplicas: 0
    maxReplicas: 6
    containers:
      - name: kserve-container
        env:
          - {{name: MODEL_CLASS, value: "{GPU_CLASS}"}}
          - {{name: MODEL_CAPACITY, value: "4"}}
          - {{name: MODEL_BASE_LATENCY_MS, value: "200"}}
"""


def run(args: argparse.Namespace) -> int:
    import logging

    logging.basicConfig(level=logging.ERROR)
    from autoscaler.runtime import eventloop

    return eventloop.run(_demo(args))


async def _demo(args: argparse.Namespace) -> int:
    import asyncio
    import time

    import aiohttp
    from rich.console import Console
    from rich.live import Live
    from rich.table import Table

    from autoscaler.examples.build import build_iris
    from autoscaler.runtime.cli import apply
    from autoscaler.runtime.onemachine import OneMachine, OneMachineSettings
    from autoscaler.runtime.spec import RevisionKey

    console = Console()
    data_dir = args.data_dir.resolve()
    iris_path, _ = build_iris(data_dir / "models")
    demo_dir = data_dir / "demo"
    demo_dir.mkdir(parents=True, exist_ok=True)
    manifest = demo_dir / "models.yaml"
    manifest.write_text(manifests(iris_path.parent))

    settings = OneMachineSettings(
        data_dir=data_dir / "state",
        ingress_port=args.ingress_port,
        max_replicas=args.max_replicas,
        autoscaler_config={"scale-to-zero-grace-period": "6s"},
    )
    machine = OneMachine(settings)
    await machine.start()
    stats = {"ok": 0, "failed": 0, "first_ms": 0.0, "max_replicas": 0}
    phase = ["starting"]
    started = time.monotonic()

    def table() -> Table:
        t = Table(title=f"modelscale demo: {phase[0]}  ({time.monotonic() - started:4.0f} s)")
        for col in ("revision", "desired", "ready", "queued in activator", "restarts"):
            t.add_column(col)
        for key in machine.dataplane.revisions():
            st = machine.dataplane.status(key)
            if key.name.startswith("gpu"):
                stats["max_replicas"] = max(stats["max_replicas"], st.ready)
            t.add_row(
                key.name,
                str(st.desired),
                "█" * st.ready + f" {st.ready}",
                str(st.queued),
                str(st.restarts),
            )
        t.caption = f"requests ok {stats['ok']}  failed {stats['failed']}  first response from zero {stats['first_ms']:.0f} ms"
        return t

    gpu = RevisionKey("default", "gpu-predictor-00001")

    def ready(key: RevisionKey) -> int:
        return machine.dataplane.status(key).ready if key in machine.dataplane.revisions() else -1

    async def until(cond: object, live: Live, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while not cond() and time.monotonic() < deadline:  # type: ignore[operator]
            live.update(table())
            await asyncio.sleep(0.25)

    try:
        console.print(
            f"kubeconfig {machine.kubeconfig_path}\ningress    {machine.ingress_url}\nmanifests  {manifest}"
        )
        if await apply(machine.kubeconfig_path, manifest) != 0:
            return 1
        async with aiohttp.ClientSession() as session:

            async def predict() -> None:
                try:
                    async with session.post(
                        f"{machine.ingress_url}/v1/models/gpu:predict",
                        json={"instances": [[1.0]]},
                        headers={"Host": "gpu.default.example.com"},
                        timeout=aiohttp.ClientTimeout(total=60),
                    ) as resp:
                        await resp.read()
                        stats["ok" if resp.status == 200 else "failed"] += 1
                except aiohttp.ClientError:
                    stats["failed"] += 1

            with Live(table(), console=console, refresh_per_second=4) as live:
                phase[0] = "deploying (each revision starts with one replica, then scales to zero)"
                await until(lambda: ready(gpu) >= 1, live, 60)
                await until(lambda: ready(gpu) == 0, live, 90)
                phase[0] = (
                    "first request at zero: buffered in the activator until a replica is ready"
                )
                t0 = time.monotonic()
                await predict()
                stats["first_ms"] = (time.monotonic() - t0) * 1000
                phase[0] = (
                    f"burst: {args.concurrency} concurrent clients for {args.burst_seconds:.0f} s"
                )

                async def client(stop_at: float) -> None:
                    while time.monotonic() < stop_at:
                        await predict()

                stop_at = time.monotonic() + args.burst_seconds
                burst = asyncio.gather(*(client(stop_at) for _ in range(args.concurrency)))
                while not burst.done():
                    live.update(table())
                    await asyncio.sleep(0.25)
                await burst
                phase[0] = "idle: back to zero after the stable window and grace period"
                await until(lambda: ready(gpu) == 0, live, 120)
                live.update(table())
        console.print(
            f"done: {stats['ok']} requests answered, {stats['failed']} failed, gpu replicas 0 -> "
            f"{stats['max_replicas']} -> {ready(gpu)}, first response from zero {stats['first_ms']:.0f} ms"
        )
        return 0 if stats["failed"] == 0 else 1
    finally:
        await machine.stop()
