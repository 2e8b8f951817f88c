"""``modelscale demo``: one-machine mode, the example models and a ModelScaler applied with
kubectl, the first request at zero, then a steady load the tuner learns from: it lowers the
target Knative aims for on the live revision (no new revision) until the model meets its latency
objective, and the replicas go 0 -> N -> 0, in a live table.

It writes the manifests it applies to ``<data-dir>/demo/`` so they can be read and reused. It
shortens Knative's windows with Knative's own annotations (window 6 s, grace 6 s) and the
tuner's with its ConfigMap (``TUNER_CONFIG``: a tick every 2 s), so the whole demo takes about
two minutes.
"""

from __future__ import annotations

import argparse
from pathlib import Path

GPU_CLASS = "autoscaler.examples.capacity:CapacityLimitedModel"
# The gpu model: 4 parallel slots of 200 ms each; past 4 in flight, every request slows in
# proportion. Its objective, p95 400 ms, holds up to 8 in flight on one replica.
GPU_CAPACITY = 4
GPU_BASE_MS = 200
OBJECTIVE_MS = 400
# The tuner's settings for a demo of minutes, not days (the tuner ConfigMap's keys): a tick every
# 2 s and changes that take effect within Knative's 6 s window; no learned keep-alive (it learns
# from idle periods, which a demo of minutes does not have: Knative's own scale-to-zero stands)
# and the 6 s window left as the InferenceService sets it. Knative's window and grace period as
# the demo sets them, so the tuner's floor for keep-alive is theirs.
TUNER_CONFIG = {
    "stable_window_s": "6",
    "scale_to_zero_grace_period_s": "6",
    "tick_period_s": "2",
    "stale_after_s": "10",
    "min_apply_interval_s": "4",
    "settle_s": "8",
    "min_requests": "20",
    "min_bin_requests": "20",
    "fallback_keep_alive_s": "0",
    "busy_window_s": "0",
}


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
        "--concurrency",
        type=int,
        default=16,
        help="closed-loop clients of the gpu model while the tuner learns (default 16)",
    )
    parser.add_argument(
        "--load-seconds",
        type=float,
        default=60.0,
        help="how long the load lasts (default 60)",
    )
    parser.add_argument("--max-replicas", type=int, default=None, help="machine-wide replica cap")


def manifests(iris_dir: Path) -> str:
    window = {
        "autoscaling.knative.dev/window": "6s",
    }
    return f"""\
# The demo's models: an sklearn iris classifier and a capacity-limited model (4 parallel slots,
# 200 ms per request), both scaling to zero, and the gpu model's ModelScaler (p95 within 400 ms).
# Applied with kubectl against one-machine mode.
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
# No target: Knative's default (100 at 70 %) puts every request on one replica; the tuner finds
# how many in flight one replica serves within the objective and writes that on the revision.
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: gpu
  namespace: default
  annotations: {{"autoscaling.knative.dev/window": "6s", "autoscaling.knative.dev/target-burst-capacity": "0"}}
spec:
  predictor:
    minReplicas: 0
    maxReplicas: 6
    containers:
      - name: kserve-container
        env:
          - {{name: MODEL_CLASS, value: "{GPU_CLASS}"}}
          - {{name: MODEL_CAPACITY, value: "{GPU_CAPACITY}"}}
          - {{name: MODEL_BASE_LATENCY_MS, value: "{GPU_BASE_MS}"}}
---
apiVersion: modelscale.dev/v1alpha1
kind: ModelScaler
metadata:
  name: gpu
  namespace: default
spec:
  targetRef: {{name: gpu}}
  objective: {{percentile: 95, latencyMs: {OBJECTIVE_MS}}}
  updateMode: Auto
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
        tuner_config=dict(TUNER_CONFIG),
    )
    machine = OneMachine(settings)
    await machine.start()
    gpu = RevisionKey("default", "gpu-predictor-00001")
    load = _Load()
    phase = ["starting"]
    started = time.monotonic()

    def tuned() -> tuple[float | None, float | None]:
        """The gpu revision's target as the tuner last wrote it (None: not yet) and the p95 it
        judged on its last tick."""
        report = machine.tuner.last_report if machine.tuner is not None else None
        model = report.models.get(("default", "gpu")) if report is not None else None
        rec = model.recommendations.get(gpu.name) if model is not None else None
        if rec is None:
            return load.target, None
        if model is not None and any(w.new for w in model.written):
            load.target = rec.target
        return load.target, rec.latency_ms

    def table() -> Table:
        t = Table(title=f"modelscale demo: {phase[0]}  ({time.monotonic() - started:4.0f} s)")
        for col in (
            "revision",
            "desired",
            "ready",
            "queued",
            "target",
            "p95 (tuner)",
            "p95 (clients, 5 s)",
        ):
            t.add_column(col)
        now = time.monotonic()
        for key in machine.dataplane.revisions():
            st = machine.dataplane.status(key)
            target, judged = tuned() if key == gpu else (None, None)
            client_p95 = load.p95(now - 5.0, now) if key == gpu else None
            if key == gpu:
                load.max_replicas = max(load.max_replicas, st.ready)
            t.add_row(
                key.name,
                str(st.desired),
                "█" * st.ready + f" {st.ready}",
                str(st.queued),
                (f"{target:.3g}" if target is not None else "100 (Knative)") if key == gpu else "",
                f"{judged:.0f} ms" if judged is not None else "",
                f"{client_p95:.0f} ms" if client_p95 is not None else "",
            )
        t.caption = (
            f"requests ok {load.ok}  failed {load.failed}  first response from zero "
            f"{load.first_ms:.0f} ms  objective p95 {OBJECTIVE_MS} ms"
        )
        return t

    def ready(key: RevisionKey) -> int:
        return machine.dataplane.status(key).ready if key in machine.dataplane.revisions() else -1

    async def until(cond: object, live: Live, timeout_s: float, what: str) -> None:
        t0 = time.monotonic()
        deadline = t0 + timeout_s
        while not cond() and time.monotonic() < deadline:  # type: ignore[operator]
            live.update(table())
            await asyncio.sleep(0.25)
        load.phases.append(f"{what} {time.monotonic() - t0:.0f} s")

    try:
        console.print(
            f"kubeconfig {machine.kubeconfig_path}\ningress    {machine.ingress_url}\nmanifests  {manifest}"
        )
        if await apply(machine.kubeconfig_path, manifest) != 0:
            return 1
        async with aiohttp.ClientSession() as session:

            async def predict() -> None:
                t0 = time.monotonic()
                try:
                    async with session.post(
                        f"{machine.ingress_url}/v1/models/gpu:predict",
                        json={"instances": [[1.0]]},
                        headers={"Host": "gpu.default.example.com"},
                        timeout=aiohttp.ClientTimeout(total=60),
                    ) as resp:
                        await resp.read()
                        ok = resp.status == 200
                except aiohttp.ClientError:
                    ok = False
                load.record(time.monotonic(), (time.monotonic() - t0) * 1000, ok)

            with Live(table(), console=console, refresh_per_second=4) as live:
                phase[0] = "deploying (each revision starts with one replica, then scales to zero)"
                await until(lambda: ready(gpu) >= 1, live, 60, "deployed")
                await until(lambda: ready(gpu) == 0, live, 90, "scaled to zero")
                phase[0] = (
                    "first request at zero: buffered in the activator until a replica is ready"
                )
                t0 = time.monotonic()
                await predict()
                load.first_ms = (time.monotonic() - t0) * 1000
                phase[0] = (
                    f"load: {args.concurrency} clients; the tuner lowers the target on the live "
                    "revision until the p95 meets the objective"
                )

                async def client(stop_at: float) -> None:
                    while time.monotonic() < stop_at:
                        await predict()

                load.started = time.monotonic()
                stop_at = load.started + args.load_seconds
                clients = asyncio.gather(*(client(stop_at) for _ in range(args.concurrency)))
                while not clients.done():
                    live.update(table())
                    await asyncio.sleep(0.25)
                await clients
                load.stopped = time.monotonic()
                phase[0] = "idle: back to zero after the stable window and grace period"
                load.phases.append(f"load {load.stopped - load.started:.0f} s")
                await until(lambda: ready(gpu) == 0, live, 120, "back to zero")
                live.update(table())
        console.print(load.summary(gpu.name, ready(gpu)))
        return 0 if load.failed == 0 else 1
    finally:
        await machine.stop()


class _Load:
    """The demo's requests: counts, client-side latencies and what the tuner wrote."""

    def __init__(self) -> None:
        self.ok = 0
        self.failed = 0
        self.first_ms = 0.0
        self.max_replicas = 0
        self.target: float | None = None  # the gpu revision's target as the tuner wrote it
        self.started = self.stopped = 0.0
        self.samples: list[tuple[float, float]] = []  # (monotonic when answered, ms)
        self.phases: list[str] = []  # how long each phase took

    def record(self, t_s: float, ms: float, ok: bool) -> None:
        if ok:
            self.ok += 1
            self.samples.append((t_s, ms))
        else:
            self.failed += 1

    def p95(self, start_s: float, end_s: float) -> float | None:
        import numpy as np

        values = [ms for t, ms in self.samples if start_s <= t < end_s]
        return float(np.percentile(values, 95)) if values else None

    def summary(self, revision: str, replicas_now: int) -> str:
        first = self.p95(self.started, self.started + 10.0)
        last = self.p95(self.stopped - 10.0, self.stopped)
        target = f"{self.target:.3g}" if self.target is not None else "100 (not changed)"

        def ms(v: float | None) -> str:
            return f"{v:.0f} ms" if v is not None else "-"

        return (
            f"done: {self.ok} requests answered, {self.failed} failed; first response from zero "
            f"{self.first_ms:.0f} ms\n"
            f"{revision} (the same revision throughout): target 100 (Knative's default) -> "
            f"{target} (the tuner's); replicas 0 -> {self.max_replicas} -> {replicas_now}\n"
            f"client p95: first 10 s of load {ms(first)}, last 10 s {ms(last)} "
            f"(objective {OBJECTIVE_MS} ms)\nphases: {', '.join(self.phases)}"
        )
