"""Benchmark: first response from zero through the ingress, beside the bare model server's start.

- baseline: the bare KServe model server (``python -m autoscaler.runtime.replica_main``, a fresh
  interpreter: kserve.ModelServer serving the iris model) from process start to
  ``/v2/health/ready`` answering 200;
- ours: a revision at zero replicas; one V1 predict to the ingress; the activator buffers it and
  pokes, the poke sets one desired replica (as the scaling loop does), the zygote forks a replica,
  and the request is answered. Timed from sending to the answer; then back to zero, repeated.
- ours without the zygote (a fresh interpreter per replica), to show what the zygote buys.

Prints medians and the added time (ours minus baseline; aim <= 300 ms).

Run: ``.venv/bin/python bench/coldstart.py [--runs 5]``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

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


async def bench(runs: int) -> None:
    from rich.console import Console
    from rich.table import Table

    with tempfile.TemporaryDirectory() as tmp:
        models = build_iris(Path(tmp))[0].parent
        bare = [await bare_start_to_ready(models) for _ in range(runs)]
        zygote = await ours_from_zero(models, runs, None)
        exec_ = await ours_from_zero(models, max(2, runs // 2), ExecLauncher())
    base = statistics.median(bare) * 1000
    table = Table(title=f"cold start, iris, median of {runs} runs")
    for col in ("what", "median ms", "min ms", "max ms", "added vs bare ms", "ratio"):
        table.add_column(col, justify="left" if col == "what" else "right")
    for name, xs in (
        ("bare model server start-to-ready (baseline)", bare),
        ("ours: first response from zero via ingress (zygote)", zygote),
        ("ours: same, fresh interpreter per replica", exec_),
    ):
        med = statistics.median(xs) * 1000
        table.add_row(
            name,
            f"{med:.0f}",
            f"{min(xs) * 1000:.0f}",
            f"{max(xs) * 1000:.0f}",
            f"{med - base:+.0f}",
            f"{med / base:.2f}",
        )
    Console().print(table)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(bench(args.runs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
