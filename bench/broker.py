"""Benchmark: events per second through the broker to a no-op subscriber, beside direct POSTs.

Both runs send the same binary-mode CloudEvents with the same client concurrency to the same
no-op subscriber (a separate process, so it does not share the event loop with the broker):

- direct: POST to the subscriber;
- broker: POST to the broker ingress (202 after the SQLite commit), timed until the subscriber
  has received every event (ingress + durable store + delivery loop + delivery POST).

The broker (its ingress and its delivery loop) runs in this process, on the same event loop as
the load generator's ``--concurrency`` clients, so in the broker run they share one loop and
one core; in the direct run the clients have the loop to themselves. This counts against the
broker (the subscriber has a process of its own, the broker has not).

Run: ``.venv/bin/python bench/broker.py [--events 2000] [--concurrency 32]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from cloudevents.conversion import to_binary
from cloudevents.http import CloudEvent

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from autoscaler.eventing import BrokerCore  # noqa: E402

SUBSCRIBER = r"""
import json, sys
from aiohttp import web
count = 0
async def event(request):
    global count
    await request.read()
    count += 1
    return web.Response(status=200)
async def stats(request):
    return web.json_response({"count": count})
async def main():
    app = web.Application()
    app.router.add_post("/", event)
    app.router.add_get("/count", stats)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    print(json.dumps({"port": runner.addresses[0][1]}), flush=True)
    import asyncio
    await asyncio.Event().wait()
import asyncio
asyncio.run(main())
"""


async def post_all(url: str, events: int, concurrency: int, expect: int) -> None:
    queue: asyncio.Queue[int] = asyncio.Queue()
    for n in range(events):
        queue.put_nowait(n)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:

        async def worker() -> None:
            while not queue.empty():
                n = queue.get_nowait()
                headers, body = to_binary(
                    CloudEvent({"type": "bench", "source": "/bench", "id": str(n)}, {"n": n})
                )
                async with session.post(url, headers=headers, data=body) as response:
                    await response.read()
                    if response.status != expect:
                        raise RuntimeError(f"{url}: {response.status}")

        await asyncio.gather(*(worker() for _ in range(concurrency)))


async def received(base: str) -> int:
    async with aiohttp.ClientSession() as session, session.get(f"{base}/count") as response:
        return int((await response.json())["count"])


async def wait_count(base: str, target: int, timeout_s: float = 300.0) -> None:
    deadline = time.monotonic() + timeout_s
    while await received(base) < target:
        if time.monotonic() > deadline:
            raise RuntimeError("the broker did not deliver every event in time")
        await asyncio.sleep(0.01)


async def run(events: int, concurrency: int) -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", SUBSCRIBER], stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        base = f"http://127.0.0.1:{json.loads(process.stdout.readline())['port']}"
        await post_all(base + "/", 50, 8, 200)  # warm-up
        start = time.perf_counter()
        await post_all(base + "/", events, concurrency, 200)
        direct_s = time.perf_counter() - start

        with tempfile.TemporaryDirectory() as tmp:
            core = BrokerCore(Path(tmp) / "bench.db", lambda ref, ns: None)
            core.apply_broker({"metadata": {"name": "default", "namespace": "bench"}})
            core.apply_trigger(
                {
                    "metadata": {"name": "noop", "namespace": "bench"},
                    "spec": {"broker": "default", "subscriber": {"uri": base + "/"}},
                }
            )
            await core.start()
            try:
                before = await received(base)
                start = time.perf_counter()
                await post_all(core.broker_url("bench", "default"), events, concurrency, 202)
                accepted_s = time.perf_counter() - start
                await wait_count(base, before + events)
                broker_s = time.perf_counter() - start
            finally:
                await core.stop()
    finally:
        process.terminate()
        process.wait()

    direct_eps, broker_eps = events / direct_s, events / broker_s
    print(f"events: {events}, client concurrency: {concurrency}")
    print(f"direct POST to subscriber : {direct_eps:8.0f} events/s")
    print(
        f"broker -> subscriber      : {broker_eps:8.0f} events/s  (ingress 202s alone: {events / accepted_s:.0f}/s)"
    )
    print(f"ratio broker / direct     : {broker_eps / direct_eps:8.2f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    asyncio.run(run(args.events, args.concurrency))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
