"""Benchmark: the data path ingress -> (activator) -> queue-proxy -> replica, beside the replica.

One iris replica (the KServe model server) serves both runs. The runtime (ingress, activator,
queue-proxy) runs in its own process, as it does in one-machine mode; the load generator is this
process: a closed loop of ``--concurrency`` clients for ``--seconds`` each run, V1 predict.

- direct: POST straight to the replica's port (the baseline);
- ours, activator in path: ingress -> activator -> queue-proxy -> replica;
- ours, activator out of path: ingress -> queue-proxy -> replica.

Prints throughput and p50/p99 latency for each, and the ratios to direct (aim: >= 80 % of the
direct throughput, <= 1 ms added p50). Only 200 responses count: req/s, the latencies and the
ratios are of the requests answered 200; any other answer (or a failed connection) is an error,
shown in the errors column and named after the table, and the run exits 1.

Run: ``.venv/bin/python bench/datapath.py [--seconds 5] [--concurrency 8]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

HOST = "iris.default.example.com"
BODY = json.dumps({"instances": [[6.8, 2.8, 4.8, 1.4]]}).encode()


async def serve(models: Path) -> None:
    """The runtime process: one iris revision at one replica; prints its addresses."""
    from autoscaler.runtime.dataplane import DataPlane
    from autoscaler.runtime.spec import PredictorKind, ReplicaSpec, RevisionKey

    key = RevisionKey("default", "iris-00001")
    spec = ReplicaSpec("default", key.name, "iris", PredictorKind.SKLEARN, storage_uri=str(models))
    async with DataPlane() as dp:
        dp.ensure_revision(key, spec, 0)
        dp.set_route(HOST, [(key, 100, None)])
        dp.set_desired(key, 1)
        while dp.status(key).ready < 1:
            await asyncio.sleep(0.01)
        replica = dp.pool(key).replicas[0]
        assert replica.process is not None
        print(json.dumps({"ingress": dp.ingress_url, "replica": replica.process.port}), flush=True)
        loop = asyncio.get_running_loop()
        while True:  # commands on stdin: "activator on|off", EOF ends
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line:
                return
            dp.set_activator_in_path(key, line.split()[-1] == "on")
            print("ok", flush=True)


async def run_load(
    url: str, headers: dict[str, str], seconds: float, concurrency: int
) -> dict[str, float]:
    """A closed loop of ``concurrency`` clients for ``seconds``. Only requests answered 200 are
    counted and timed (``ok``, ``rps``, the percentiles); any other status or a failed
    connection is an ``error``. The percentiles are NaN when none was answered 200."""
    latencies: list[float] = []  # of the 200s only
    errors = 0
    stop_at = time.perf_counter() + seconds
    conn = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=conn) as session:

        async def client() -> None:
            nonlocal errors
            h = {"Content-Type": "application/json", **headers}
            while time.perf_counter() < stop_at:
                t0 = time.perf_counter()
                try:
                    async with session.post(url, data=BODY, headers=h) as resp:
                        await resp.read()
                        ok = resp.status == 200
                except aiohttp.ClientError:
                    ok = False
                if ok:
                    latencies.append(time.perf_counter() - t0)
                else:
                    errors += 1

        # warm-up: open the connections (not counted)
        for _ in range(concurrency):
            with contextlib.suppress(aiohttp.ClientError):
                async with session.post(
                    url, data=BODY, headers={"Content-Type": "application/json", **headers}
                ) as r:
                    await r.read()
        start = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    lat = np.array(latencies) * 1000.0
    return {
        "rps": len(latencies) / elapsed,
        "p50_ms": float(np.percentile(lat, 50)) if len(lat) else float("nan"),
        "p99_ms": float(np.percentile(lat, 99)) if len(lat) else float("nan"),
        "ok": len(latencies),
        "errors": errors,
        "requests": len(latencies) + errors,
    }


async def bench(seconds: float, concurrency: int) -> int:
    from rich.console import Console
    from rich.table import Table

    from autoscaler.examples.build import build_iris

    with tempfile.TemporaryDirectory() as tmp:
        model, _ = build_iris(Path(tmp))
        proc = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(model.parent)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=REPO,
        )
        try:
            assert proc.stdin is not None and proc.stdout is not None
            addrs = json.loads(proc.stdout.readline())

            def activator(on: bool) -> None:
                assert proc.stdin is not None and proc.stdout is not None
                proc.stdin.write(f"activator {'on' if on else 'off'}\n")
                proc.stdin.flush()
                proc.stdout.readline()

            predict = "/v1/models/iris:predict"
            direct_url = f"http://127.0.0.1:{addrs['replica']}{predict}"
            results: dict[str, dict[str, float]] = {}
            results["direct (baseline)"] = await run_load(direct_url, {}, seconds, concurrency)
            activator(True)
            results["ours, activator in path"] = await run_load(
                addrs["ingress"] + predict, {"Host": HOST}, seconds, concurrency
            )
            activator(False)
            results["ours, activator out of path"] = await run_load(
                addrs["ingress"] + predict, {"Host": HOST}, seconds, concurrency
            )
        finally:
            if proc.stdin:
                proc.stdin.close()
            proc.wait(30)

    base = results["direct (baseline)"]
    table = Table(title=f"data path, iris V1 predict, {concurrency} clients, {seconds:g}s each")
    cols = (
        "path",
        "req/s (200s)",
        "p50 ms",
        "p99 ms",
        "errors",
        "throughput ratio",
        "added p50 ms",
    )
    for col in cols:
        table.add_column(col, justify="right" if col != "path" else "left")
    for name, r in results.items():
        table.add_row(
            name,
            f"{r['rps']:.0f}",
            f"{r['p50_ms']:.2f}",
            f"{r['p99_ms']:.2f}",
            str(int(r["errors"])),
            f"{r['rps'] / base['rps']:.2f}" if base["rps"] else "-",
            f"{r['p50_ms'] - base['p50_ms']:+.2f}",
        )
    Console(width=130).print(table)
    print("req/s, latencies and ratios count only the requests answered 200.")
    failed = {name: r for name, r in results.items() if r["errors"]}
    for name, r in failed.items():
        print(
            f"ERRORS in '{name}': {int(r['errors'])} of {int(r['requests'])} requests not "
            "answered 200; its figures are of the 200s alone and the comparison is not valid",
            file=sys.stderr,
        )
    return 1 if failed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        import uvloop  # the runtime's loop; one-machine mode can run on it too

        uvloop.run(serve(args.serve))
    else:
        return asyncio.run(bench(args.seconds, args.concurrency))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
