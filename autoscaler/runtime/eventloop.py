"""The event loop one-machine mode runs on.

The data plane is an asyncio program whose cost per request is mostly the loop's own work
(sockets, callbacks, timers). uvloop, which KServe's model server already runs on (it comes with
KServe's HTTP stack), does that work in C; ``modelscale up`` and the demo use it when it is
importable and fall back to the standard loop otherwise, or when asked to with ``--loop asyncio``.
"""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Coroutine
from typing import Any, Literal, TypeVar

T = TypeVar("T")
LoopChoice = Literal["auto", "uvloop", "asyncio"]
CHOICES: tuple[LoopChoice, ...] = ("auto", "uvloop", "asyncio")


def resolve(choice: LoopChoice) -> Literal["uvloop", "asyncio"]:
    """Which loop ``choice`` means on this machine; asking for uvloop without it is an error."""
    available = importlib.util.find_spec("uvloop") is not None
    if choice == "uvloop" and not available:
        raise RuntimeError("--loop uvloop: the uvloop package is not installed")
    if choice == "asyncio" or not available:
        return "asyncio"
    return "uvloop"


def run(main: Coroutine[Any, Any, T], choice: LoopChoice = "auto") -> T:
    """Run ``main`` to completion on the chosen loop."""
    if resolve(choice) == "uvloop":
        import uvloop

        return uvloop.run(main)
    return asyncio.run(main)
