"""The loop choice of ``modelscale up``: uvloop when asked or by default, asyncio on request."""

from __future__ import annotations

import asyncio

import pytest

from autoscaler.runtime import eventloop


async def _loop_module() -> str:
    return type(asyncio.get_running_loop()).__module__


def test_auto_runs_on_uvloop_when_installed() -> None:
    pytest.importorskip("uvloop")
    assert eventloop.resolve("auto") == "uvloop"
    assert eventloop.run(_loop_module(), "auto").startswith("uvloop")


def test_asyncio_choice_runs_the_standard_loop() -> None:
    assert eventloop.resolve("asyncio") == "asyncio"
    assert eventloop.run(_loop_module(), "asyncio").startswith("asyncio")


def test_result_of_main_is_returned() -> None:
    async def main() -> int:
        await asyncio.sleep(0)
        return 42

    assert eventloop.run(main(), "uvloop") == 42


def test_up_accepts_the_loop_flag() -> None:
    from autoscaler.cli import build_parser

    args = build_parser().parse_args(["up", "--loop", "asyncio"])
    assert args.loop == "asyncio"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["up", "--loop", "trio"])
