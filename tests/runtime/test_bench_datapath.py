"""bench/datapath.py counts only the requests answered 200: a server that answers 503 at once
has no throughput (its errors are counted, not its fast failures)."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path
from types import ModuleType

from aiohttp import web

REPO = Path(__file__).resolve().parents[2]


def load_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_datapath", REPO / "bench" / "datapath.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)
    spec.loader.exec_module(module)
    return module


async def serving(status: int) -> tuple[web.AppRunner, str]:
    async def predict(_: web.Request) -> web.Response:
        return web.json_response({"predictions": [1]} if status == 200 else {}, status=status)

    app = web.Application()
    app.router.add_post("/v1/models/iris:predict", predict)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}/v1/models/iris:predict"


async def test_a_server_answering_503_has_no_throughput() -> None:
    bench = load_bench()
    runner, url = await serving(503)
    try:
        r = await bench.run_load(url, {}, 0.3, 2)
    finally:
        await runner.cleanup()
    assert r["errors"] > 0
    assert r["rps"] == 0.0
    assert math.isnan(r["p50_ms"]) and math.isnan(r["p99_ms"])


async def test_a_server_answering_200_counts_every_request() -> None:
    bench = load_bench()
    runner, url = await serving(200)
    try:
        r = await bench.run_load(url, {}, 0.3, 2)
    finally:
        await runner.cleanup()
    assert r["errors"] == 0
    assert r["rps"] > 0 and r["ok"] == r["requests"] > 0
    assert r["p50_ms"] <= r["p99_ms"]
