"""Benchmark: the embedded API server's write throughput and watch delivery latency.

Starts ``modelscale server`` as its own process (so client and server do not share a GIL),
then from this process over HTTPS with keep-alive:

1. creates then updates ConfigMaps from a few concurrent client tasks (writes/s);
2. the same with 10 watchers attached;
3. paced writes while 10 watchers stream the namespace: delivery latency p50/p99, measured
   from just before the write is sent to the event arriving at each watcher.

Beside it, the baseline: the same writes done directly on SQLite (same schema and pragmas,
one transaction per write storing the object, the change and the counter). Prints a table,
the ratio ours/baseline, and one JSON line with the figures.

    .venv/bin/python bench/apiserver.py [--writes 3000] [--clients 8]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import signal
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
from rich.console import Console
from rich.table import Table

from autoscaler.apiserver.store import connect

NS = "bench"


def start_server(data: Path) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "autoscaler.cli", "server", "--data-dir", str(data), "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    match = re.search(r"(https://\S+:\d+)", proc.stdout.readline())
    if not match:
        proc.kill()
        raise SystemExit("the server did not print its URL")
    return proc, match.group(1)


def configmap(name: str, i: int) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": {"bench": "yes"}},
        "data": {"i": str(i), "payload": "x" * 200},
    }


async def writes(
    session: aiohttp.ClientSession, url: str, n: int, clients: int, prefix: str
) -> float:
    """n writes (half creates, half updates by merge patch) from ``clients`` tasks; writes/s."""
    base = f"{url}/api/v1/namespaces/{NS}/configmaps"
    per = n // clients // 2

    async def worker(w: int) -> None:
        for i in range(per):
            async with session.post(base, json=configmap(f"{prefix}-{w}-{i}", i)) as r:
                assert r.status == 201, await r.text()
                await r.read()
        for i in range(per):
            patch = json.dumps({"data": {"i": str(i + 1)}})
            headers = {"Content-Type": "application/merge-patch+json"}
            async with session.patch(f"{base}/{prefix}-{w}-{i}", data=patch, headers=headers) as r:
                assert r.status == 200, await r.text()
                await r.read()

    start = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(clients)))
    return per * 2 * clients / (time.perf_counter() - start)


async def watcher(
    session: aiohttp.ClientSession,
    url: str,
    rv: str,
    sent: dict[str, float],
    latencies: list[float],
    ready: asyncio.Event,
    stop: asyncio.Event,
) -> None:
    q = f"{url}/api/v1/namespaces/{NS}/configmaps?watch=true&resourceVersion={rv}&timeoutSeconds=120"
    async with session.get(q, timeout=aiohttp.ClientTimeout(total=None)) as r:
        ready.set()
        async for line in r.content:
            if not line.strip():
                continue
            got = time.perf_counter()
            ev = json.loads(line)
            name = ev["object"]["metadata"]["name"]
            if name in sent:
                latencies.append(got - sent[name])
            if stop.is_set() and name == "stop":
                return


async def run(args: argparse.Namespace, data: Path) -> dict[str, Any]:
    proc, url = start_server(data)
    try:
        token = (data / "token").read_text().strip()
        ctx = ssl.create_default_context(cafile=str(data / "tls.crt"))
        conn = aiohttp.TCPConnector(ssl=ctx, limit=0)
        headers = {"Authorization": f"Bearer {token}"}
        async with aiohttp.ClientSession(connector=conn, headers=headers) as s:
            async with s.post(f"{url}/api/v1/namespaces", json={"metadata": {"name": NS}}) as r:
                assert r.status == 201
            await writes(s, url, 200, args.clients, "warm")
            plain = await writes(s, url, args.writes, args.clients, "a")
            async with s.get(f"{url}/api/v1/namespaces/{NS}/configmaps?limit=1") as r:
                rv = (await r.json())["metadata"]["resourceVersion"]
            sent: dict[str, float] = {}
            latencies: list[float] = []
            stop = asyncio.Event()
            readies = [asyncio.Event() for _ in range(10)]
            tasks = [
                asyncio.create_task(watcher(s, url, rv, sent, latencies, readies[i], stop))
                for i in range(10)
            ]
            await asyncio.gather(*(e.wait() for e in readies))
            watched = await writes(s, url, args.writes, args.clients, "b")
            latencies.clear()
            # paced writes for latency: one at a time, every 5 ms
            base = f"{url}/api/v1/namespaces/{NS}/configmaps"
            for i in range(args.paced):
                name = f"lat-{i}"
                sent[name] = time.perf_counter()
                async with s.post(base, json=configmap(name, i)) as r:
                    assert r.status == 201
                    await r.read()
                await asyncio.sleep(0.005)
            stop.set()
            sent["stop"] = time.perf_counter()
            async with s.post(base, json=configmap("stop", 0)) as r:
                await r.read()
            await asyncio.wait_for(asyncio.gather(*tasks), 30)
        lat_ms = np.array([x for x in latencies]) * 1000.0
        return {
            "writes_per_s": plain,
            "writes_per_s_with_10_watchers": watched,
            "watch_p50_ms": float(np.percentile(lat_ms, 50)),
            "watch_p99_ms": float(np.percentile(lat_ms, 99)),
            "watch_events": int(lat_ms.size),
        }
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def sqlite_baseline(path: Path, n: int) -> float:
    """The same writes straight on SQLite: one transaction per write, same tables and pragmas."""
    conn = connect(path)
    rv = 0
    start = time.perf_counter()
    for phase in range(2):
        for i in range(n // 2):
            rv += 1
            obj = configmap(f"c-{i}", i + phase)
            obj["metadata"].update({"namespace": NS, "resourceVersion": str(rv), "uid": f"u{i}"})
            text = json.dumps(obj, separators=(",", ":"))
            conn.execute("BEGIN")
            conn.execute(
                "INSERT OR REPLACE INTO objects (grp, plural, namespace, name, rv, body) VALUES (?, ?, ?, ?, ?, ?)",
                ("", "configmaps", NS, f"c-{i}", rv, text),
            )
            conn.execute(
                "INSERT INTO changes (rv, type, grp, plural, namespace, name, body) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (rv, "ADDED" if phase == 0 else "MODIFIED", "", "configmaps", NS, f"c-{i}", text),
            )
            conn.execute("INSERT OR REPLACE INTO meta (k, v) VALUES ('rv', ?)", (str(rv),))
            conn.execute("COMMIT")
    rate = n / (time.perf_counter() - start)
    conn.close()
    return rate


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writes", type=int, default=3000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument(
        "--paced", type=int, default=400, help="paced writes for the latency figure"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        baseline = sqlite_baseline(Path(tmp) / "baseline.db", args.writes)
        ours = asyncio.run(run(args, Path(tmp) / "server"))
    result = {
        **ours,
        "sqlite_writes_per_s": baseline,
        "ratio": ours["writes_per_s"] / baseline,
        "writes": args.writes,
        "clients": args.clients,
    }
    table = Table(title="modelscale API server vs SQLite directly")
    table.add_column("measure")
    table.add_column("API server", justify="right")
    table.add_column("SQLite directly", justify="right")
    table.add_row("writes/s", f"{ours['writes_per_s']:,.0f}", f"{baseline:,.0f}")
    table.add_row("writes/s, 10 watchers", f"{ours['writes_per_s_with_10_watchers']:,.0f}", "")
    table.add_row("ratio (ours / SQLite)", f"{result['ratio']:.3f}", "1")
    table.add_row("watch delivery p50", f"{ours['watch_p50_ms']:.2f} ms", "")
    table.add_row("watch delivery p99", f"{ours['watch_p99_ms']:.2f} ms", "")
    Console().print(table)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
