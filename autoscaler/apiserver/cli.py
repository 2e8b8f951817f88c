"""``modelscale server``: run the embedded API server until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir", type=Path, required=True, help="where objects, token and kubeconfig live"
    )
    parser.add_argument(
        "--port", type=int, default=0, help="port to serve on (0: pick a free one and print it)"
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument(
        "--crd", type=Path, action="append", default=[], metavar="PATH",
        help="a CRD file to create or replace at start (repeatable)",
    )  # fmt: skip


def run(args: argparse.Namespace) -> int:
    import asyncio
    import signal
    import sys

    from autoscaler.apiserver.server import APIServer, DataDirInUse

    for path in args.crd:
        if not Path(path).is_file():
            print(f"modelscale server: --crd {path}: no such file", file=sys.stderr)
            return 2

    async def main() -> int:
        server = APIServer(args.data_dir, host=args.host, port=args.port, extra_crds=args.crd)
        try:
            await server.start()
        except (OSError, DataDirInUse) as exc:  # the port in use, another server on the dir
            print(f"modelscale server: {exc}", file=sys.stderr, flush=True)
            return 1
        print(
            f"modelscale API server serving on {server.url} (kubeconfig {server.kubeconfig_path})",
            flush=True,
        )
        done = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, done.set)
        try:
            await done.wait()
        finally:
            await server.stop()
        return 0

    return asyncio.run(main())
