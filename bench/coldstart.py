"""Benchmark: first response from zero through the ingress, beside the bare model server's start.

- baseline: the bare KServe model server (``python -m autoscaler.runtime.replica_main``, a fresh
  interpreter: kserve.ModelServer serving the iris model) from process start to
  ``/v2/health/ready`` answering 200;
- ``modelscale up``: what a user of one-machine mode gets. ``modelscale up`` runs as its own
  process (its own data dir and ports, no eventing) with an InferenceService of minReplicas 0 and
  a 6 s window (scale-to-zero grace 6 s); once its revision reports 0 actual replicas (and 1 to
  2 s more, at random, so the requests fall at every phase of the runtime's periodic loops),
  one V1 predict is sent to its ingress and timed from sending to the answer. The
  whole path: activator, poke, the KPA's decision, the data plane's desired scale, the zygote's
  fork, the model loaded and ready, the request forwarded. Repeated ``--runs`` times, each from
  zero again;
- data plane alone: a bare in-process ``DataPlane`` whose poke sets one desired replica directly
  (no KPA, no API server, no reconcilers, the model as a plain path), the same V1 predict. It
  shows the data plane's share of the cold start, not what ``modelscale up`` gives;
- data plane alone without the zygote (a fresh interpreter per replica): what the zygote buys.

Prints medians and the added time (each minus the baseline) and the ratio to the baseline.

Run: ``.venv/bin/python bench/coldstart.py [--runs 5] [--no-up]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from autoscaler.examples.build import build_iris  # noqa: E402
from autoscaler.runtime.dataplane import DataPlane  # noqa: E402
from autoscaler.runtime.launcher import ExecLauncher, Launcher  # noqa: E402
from autoscaler.runtime.spec import PredictorKind, ReplicaSpec, RevisionKey  # noqa: E402

HOST = "iris.default.example.com"
KEY = RevisionKey("default", "iris-00001")


def spec(models: Path) -> ReplicaSpec:
    return ReplicaSpec("default", KEY.name, "iris", PredictorKind.SKLEARN, storage_uri=str(models))


async def bare_start_to_ready(models: Path) -> float:
    """Process start to ready of the bare model server (the launcher's exec path)."""
    launcher = ExecLauncher()
    t0 = time.perf_counter()
    proc = await launcher.launch(spec(models))
    async with aiohttp.ClientSession() as session:
        while True:
            try:
                async with session.get(f"http://127.0.0.1:{proc.port}/v2/health/ready") as r:
                    if r.status == 200:
                        break
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.005)
    elapsed = time.perf_counter() - t0
    await launcher.close()
    return elapsed


async def ours_from_zero(models: Path, runs: int, launcher: Launcher | None) -> list[float]:
    out: list[float] = []
    async with DataPlane(launcher=launcher) as dp:
        dp.ensure_revision(KEY, spec(models))
        dp.set_route(HOST, [(KEY, 100, None)])
        dp.on_poke(lambda k: dp.set_desired(k, 1))
        async with aiohttp.ClientSession() as session:
            for _ in range(runs):
                t0 = time.perf_counter()
                async with session.post(
                    f"{dp.ingress_url}/v1/models/iris:predict",
                    json={"instances": [[6.8, 2.8, 4.8, 1.4]]},
                    headers={"Host": HOST},
                ) as resp:
                    await resp.read()
                    assert resp.status == 200, resp.status
                out.append(time.perf_counter() - t0)
                dp.set_desired(KEY, 0)
                while dp.status(KEY).actual or dp.pool(KEY).replicas:
                    await asyncio.sleep(0.01)
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def isvc_manifest(models: Path) -> str:
    """The iris model at minReplicas 0, with a short window so it goes back to zero soon."""
    return json.dumps(
        {
            "apiVersion": "serving.kserve.io/v1beta1",
            "kind": "InferenceService",
            "metadata": {
                "name": "iris",
                "namespace": "default",
                "annotations": {"autoscaling.knative.dev/window": "6s"},
            },
            "spec": {
                "predictor": {"minReplicas": 0, "sklearn": {"storageUri": f"file://{models}"}}
            },
        }
    )


def get(api: Any, group: str, plural: str, name: str) -> dict[str, Any]:
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    try:
        obj = client.CustomObjectsApi(api).get_namespaced_custom_object(
            group, "v1" if group == "serving.knative.dev" else "v1beta1", "default", plural, name
        )
    except ApiException:
        return {}
    return obj if isinstance(obj, dict) else {}


def isvc_ready(api: Any) -> bool:
    conditions = get(api, "serving.kserve.io", "inferenceservices", "iris").get("status", {})
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in conditions.get("conditions", [])
    )


def actual_replicas(api: Any) -> int | None:
    """The iris revision's ``status.actualReplicas`` as the API server has it (None: not yet)."""
    rev = get(api, "serving.knative.dev", "revisions", "iris-predictor-00001")
    value = (rev.get("status") or {}).get("actualReplicas")
    return None if value is None else int(value)


async def up_from_zero(models: Path, runs: int, work: Path) -> list[float]:
    """``modelscale up`` in its own process: time the first predict from zero, ``runs`` times."""
    from kubernetes import config

    manifest = work / "iris.json"
    manifest.write_text(isvc_manifest(models))
    ingress_port = free_port()
    log = (work / "up.log").open("w")
    argv = [
        sys.executable, "-m", "autoscaler.cli", "up", "--data-dir", str(work / "data"),
        "--ingress-port", str(ingress_port), "--no-eventing",
        "--autoscaler-config", "scale-to-zero-grace-period=6s", "-f", str(manifest),
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=log, text=True, cwd=work, env=env)
    out: list[float] = []
    jitter = random.Random(0)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("Ctrl-C stops everything"):
                break
        else:
            raise SystemExit(f"modelscale up exited with {proc.wait()}")
        api = config.new_client_from_config(config_file=str(work / "data" / "kubeconfig"))
        url = f"http://127.0.0.1:{ingress_port}/v1/models/iris:predict"
        deadline = time.monotonic() + 120
        while not await asyncio.to_thread(isvc_ready, api):  # routed, its first replica up
            if time.monotonic() > deadline:
                raise SystemExit("modelscale up: the InferenceService never became ready")
            await asyncio.sleep(0.2)
        async with aiohttp.ClientSession() as session:
            for _ in range(runs):
                deadline = time.monotonic() + 120
                while await asyncio.to_thread(actual_replicas, api) != 0:
                    if time.monotonic() > deadline:
                        raise SystemExit("modelscale up: the revision never reached 0 replicas")
                    await asyncio.sleep(0.5)
                # the replica's process gone, not only counted out; then a random part of a
                # second, so requests do not all land at one phase of the activator's
                # per-second report (the scale-up waits for it: see the README)
                await asyncio.sleep(1.0 + jitter.random())
                t0 = time.perf_counter()
                async with session.post(
                    url, json={"instances": [[6.8, 2.8, 4.8, 1.4]]}, headers={"Host": HOST}
                ) as resp:
                    await resp.read()
                    if resp.status != 200:
                        raise SystemExit(f"modelscale up answered {resp.status}")
                out.append(time.perf_counter() - t0)
                # counted up before waiting for zero again (the status follows the data plane)
                while await asyncio.to_thread(actual_replicas, api) == 0:
                    await asyncio.sleep(0.2)
    except BaseException:
        log.flush()
        tail = (work / "up.log").read_text().splitlines()[-30:]
        print("modelscale up's log, last lines:", *tail, sep="\n", file=sys.stderr)
        raise
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
    return out


async def bench(runs: int, up: bool) -> None:
    from rich.console import Console
    from rich.table import Table

    with tempfile.TemporaryDirectory() as tmp:
        models = build_iris(Path(tmp))[0].parent
        bare = [await bare_start_to_ready(models) for _ in range(runs)]
        rows: list[tuple[str, list[float]]] = [
            ("bare model server start-to-ready (baseline)", bare)
        ]
        if up:
            rows.append(
                (
                    "modelscale up: first response from zero via ingress",
                    await up_from_zero(models, runs, Path(tmp)),
                )
            )
        rows.append(
            (
                "data plane alone (poke sets desired; no KPA, API, reconcilers), zygote",
                await ours_from_zero(models, runs, None),
            )
        )
        rows.append(
            (
                "data plane alone, fresh interpreter per replica",
                await ours_from_zero(models, max(2, runs // 2), ExecLauncher()),
            )
        )
    base = statistics.median(bare) * 1000
    table = Table(title=f"cold start, iris, median of {runs} runs (fresh interpreter: fewer)")
    for col in ("what", "runs", "median ms", "min ms", "max ms", "added vs bare ms", "ratio"):
        table.add_column(col, justify="left" if col == "what" else "right")
    for name, xs in rows:
        med = statistics.median(xs) * 1000
        table.add_row(
            name,
            str(len(xs)),
            f"{med:.0f}",
            f"{min(xs) * 1000:.0f}",
            f"{max(xs) * 1000:.0f}",
            f"{med - base:+.0f}",
            f"{med / base:.2f}",
        )
    Console(width=130).print(table)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--no-up", action="store_true", help="skip the run through `modelscale up`")
    args = parser.parse_args()
    asyncio.run(bench(args.runs, not args.no_up))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
