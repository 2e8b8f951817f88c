"""Benchmark: memory of the runtime process and of each replica, beside the bare model server.

Starts a DataPlane in this process with ``--replicas`` iris replicas forked by the zygote, sends
some traffic through the ingress, then reads (psutil):

- the runtime process: peak RSS (``ru_maxrss``) and current RSS;
- the zygote and each replica: RSS, USS (pages only that process holds) and PSS (shared pages
  split between sharers); forked replicas share the zygote's imported modules copy-on-write, so
  their USS is the honest per-replica cost;
- the bare model server (a fresh interpreter serving the same model), the baseline.

Run: ``.venv/bin/python bench/memory.py [--replicas 4]``.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

import aiohttp
import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from autoscaler.examples.build import iris_model_path  # noqa: E402
from autoscaler.runtime.dataplane import DataPlane  # noqa: E402
from autoscaler.runtime.launcher import ExecLauncher  # noqa: E402
from autoscaler.runtime.spec import PredictorKind, ReplicaSpec, RevisionKey  # noqa: E402

MB = 1024 * 1024
HOST = "iris.default.example.com"


def mem(pid: int) -> tuple[float, float, float]:
    info = psutil.Process(pid).memory_full_info()
    return info.rss / MB, info.uss / MB, info.pss / MB


async def bench(replicas: int) -> None:
    from rich.console import Console
    from rich.table import Table

    rows: list[tuple[str, float, float, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        # Built in a child process, so scikit-learn's imports do not count against the runtime.
        subprocess.run(
            [sys.executable, "-m", "autoscaler.examples.build", "--out", tmp],
            check=True,
            capture_output=True,
            cwd=REPO,
        )
        models = iris_model_path(Path(tmp)).parent
        key = RevisionKey("default", "iris-00001")
        spec = ReplicaSpec(
            "default", key.name, "iris", PredictorKind.SKLEARN, storage_uri=str(models)
        )

        launcher = ExecLauncher()
        proc = await launcher.launch(spec)
        async with aiohttp.ClientSession() as session:
            for _ in range(200):
                try:
                    async with session.post(
                        f"http://127.0.0.1:{proc.port}/v1/models/iris:predict",
                        json={"instances": [[6.8, 2.8, 4.8, 1.4]]},
                    ) as r:
                        await r.read()
                except aiohttp.ClientError:
                    await asyncio.sleep(0.01)
        rows.append(("bare model server (baseline)", *mem(proc.pid)))
        await launcher.close()

        async with DataPlane() as dp:
            dp.ensure_revision(key, spec)
            dp.set_route(HOST, [(key, 100, None)])
            dp.set_desired(key, replicas)
            while dp.status(key).ready < replicas:
                await asyncio.sleep(0.01)
            async with aiohttp.ClientSession() as session:
                for _ in range(200 * replicas):
                    async with session.post(
                        f"{dp.ingress_url}/v1/models/iris:predict",
                        json={"instances": [[6.8, 2.8, 4.8, 1.4]]},
                        headers={"Host": HOST},
                    ) as r:
                        await r.read()
            zygote_pid = dp.launcher._proc.pid  # type: ignore[attr-defined]
            rows.append(("zygote (shared by all replicas)", *mem(zygote_pid)))
            for i, r in enumerate(dp.pool(key).replicas):
                assert r.process is not None
                rows.append((f"replica {i + 1} (forked)", *mem(r.process.pid)))
            rss, uss, pss = mem(psutil.Process().pid)
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            rows.append((f"runtime process (peak RSS {peak:.0f} MB)", rss, uss, pss))

    base_uss = rows[0][2]
    table = Table(title=f"memory, iris, {replicas} replicas")
    for col in ("process", "RSS MB", "USS MB", "PSS MB", "USS vs bare"):
        table.add_column(col, justify="left" if col == "process" else "right")
    for name, rss, uss, pss in rows:
        table.add_row(name, f"{rss:.0f}", f"{uss:.0f}", f"{pss:.0f}", f"{uss / base_uss:.2f}")
    Console().print(table)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicas", type=int, default=4)
    args = parser.parse_args()
    asyncio.run(bench(args.replicas))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
